"""docs/cluster.md's two-node walkthrough, run as written (every ```bash block, in order,
one shell) against a PostgreSQL schema of its own, so the document stays true."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.support.net import free_port
from tests.support.server import CERTGATE
from tests.support.walkthrough import bash_blocks, run_walkthrough

DOC = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"


def test_the_two_node_walkthrough_runs(tmp_path: Path, postgresql_url: str) -> None:
    assert shutil.which("jq"), "docs/cluster.md needs jq: scripts/setup --test installs it"
    assert "\n".join(bash_blocks(DOC)).count("certgate ") >= 8
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CERTGATE_")}
    environment |= {
        "PATH": f"{Path(CERTGATE).parent}{os.pathsep}{environment.get('PATH', '')}",
        "CERTGATE_DATABASE_URL": postgresql_url,
        "CERTGATE_HEARTBEAT_INTERVAL": "0.5",  # lost after 1.5 s rather than 15 s
        "PORT_A": str(free_port()),
        "PORT_B": str(free_port()),
    }
    done = run_walkthrough(DOC, tmp_path, environment)
    logs = "".join(path.read_text() for path in sorted(tmp_path.glob("node-*.log")))
    assert done.returncode == 0, done.stderr[-4000:] + logs[-4000:]
    assert "node-lost" in done.stdout
    assert "Traceback" not in done.stderr + logs
