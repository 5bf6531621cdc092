"""docs/backup.md's walkthrough, run as written (every ```bash block, in order, one shell)
on a copy of an initialised data directory, so the document stays true."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.integration.conftest import CERTGATE, fresh_data_dir

DOC = Path(__file__).resolve().parents[2] / "docs" / "backup.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def test_the_backup_walkthrough_runs(initialised_template: Path, tmp_path: Path) -> None:
    assert shutil.which("jq"), "docs/backup.md needs jq: scripts/setup --test installs it"
    fresh_data_dir(initialised_template, tmp_path / "data")
    script = "\n".join(BLOCK.findall(DOC.read_text()))
    assert script.count("certgate ") >= 6
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CERTGATE_")}
    environment["PATH"] = f"{CERTGATE.parent}{os.pathsep}{environment.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-x", "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "the passphrase does not open this backup" in done.stderr
    assert "is not empty" in done.stderr
    assert "Traceback" not in done.stderr
