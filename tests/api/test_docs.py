"""docs/api.md's curl sessions, run as written (every ```bash block, in order, one shell)
against two running appliances, so the document stays true."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.api.conftest import serve
from tests.support.walkthrough import bash_blocks, run_walkthrough

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_document_has_a_session_for_each_workflow() -> None:
    text = DOC.read_text()
    for heading in (
        "Create a self-signed certificate and assign it",
        "A certificate signed by a certificate authority",
        "Copy the certificate to a failover appliance",
        "Renew a certificate",
        "Replace a certificate",
    ):
        assert f"### {heading}" in text
    assert len(bash_blocks(DOC)) >= 10


def test_the_curl_sessions_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    for tool in ("bash", "curl", "jq", "openssl"):
        assert shutil.which(tool), f"docs/api.md needs {tool}: scripts/setup --test installs it"
    work = tmp_path_factory.mktemp("docs-session")
    with (
        serve(tmp_path_factory.mktemp("docs-primary") / "data", "127.0.0.5") as primary,
        serve(tmp_path_factory.mktemp("docs-backup") / "data", "127.0.0.6") as backup,
    ):
        environment = {
            **os.environ,
            "CERTGATE": primary.base_url,
            "TOKEN": primary.admin_token,
            "BACKUP": backup.base_url,
            "BACKUP_TOKEN": backup.admin_token,
        }
        done = run_walkthrough(DOC, work, environment)
    assert done.returncode == 0, (
        f"docs/api.md failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n"
        f"{done.stderr[-4000:]}"
    )
    assert "Verify return code: 0 (ok)" in done.stdout
