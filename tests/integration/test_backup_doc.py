"""docs/backup.md's walkthrough, run as written (every ```bash block, in order, one shell)
on a copy of an initialised data directory, so the document stays true."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.integration.conftest import CERTGATE, fresh_data_dir
from tests.support.walkthrough import bash_blocks, run_walkthrough

DOC = Path(__file__).resolve().parents[2] / "docs" / "backup.md"


def test_the_backup_walkthrough_runs(initialised_template: Path, tmp_path: Path) -> None:
    assert shutil.which("jq"), "docs/backup.md needs jq: scripts/setup --test installs it"
    fresh_data_dir(initialised_template, tmp_path / "data")
    assert "\n".join(bash_blocks(DOC)).count("certgate ") >= 6
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CERTGATE_")}
    environment["PATH"] = f"{CERTGATE.parent}{os.pathsep}{environment.get('PATH', '')}"
    done = run_walkthrough(DOC, tmp_path, environment)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "the passphrase does not open this backup" in done.stderr
    assert "is not empty" in done.stderr
    assert "Traceback" not in done.stderr
