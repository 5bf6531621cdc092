"""Running a document's walkthrough as written: every ```bash block, in order, one shell
(``bash -euo pipefail -x``), so a document that stops being true fails its test."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def bash_blocks(doc: Path) -> list[str]:
    return BLOCK.findall(doc.read_text())


def run_walkthrough(
    doc: Path,
    cwd: Path,
    environment: Mapping[str, str],
    replacements: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The script of ``doc``'s bash blocks, run in ``cwd``; its output is captured (the
    commands traced on stderr). ``replacements``: text of the document -> the test's (a
    public CA's directory, an example address)."""
    script = "\n".join(bash_blocks(doc))
    for written, used in (replacements or {}).items():
        script = script.replace(written, used)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-x", "-c", script],
        cwd=cwd,
        env=dict(environment),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
