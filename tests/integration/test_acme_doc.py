"""docs/acme.md's walkthrough, run as written (every ```bash block, in order, one shell)
against Pebble: only Let's Encrypt's staging directory and the example address are replaced
by the test's, so the document stays true."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.support.net import free_port
from tests.support.pebble import running_pebble
from tests.support.server import CERTGATE, running_appliance
from tests.support.walkthrough import bash_blocks, run_walkthrough

DOC = Path(__file__).resolve().parents[2] / "docs" / "acme.md"
ADDRESS = "127.0.0.65"


def test_the_acme_walkthrough_runs(tmp_path: Path) -> None:
    http_port = free_port()
    script = "\n".join(bash_blocks(DOC))
    assert script.count("certgate acme ") >= 5 and "letsencrypt-staging" in script
    with (
        running_appliance(
            tmp_path / "data", ADDRESS, serve_options=("--http-port", str(http_port))
        ) as running,
        running_pebble(tmp_path / "pebble", ADDRESS, http_port, tls_port=running.port) as pebble,
    ):
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CERTGATE_")}
        environment.update(
            PATH=f"{Path(CERTGATE).parent}{os.pathsep}{environment.get('PATH', '')}",
            CERTGATE_DATA_DIR=str(running.data_dir),
            REQUESTS_CA_BUNDLE=str(pebble.ca_file),  # Pebble's HTTPS root, as requests reads it
        )
        done = run_walkthrough(
            DOC,
            tmp_path,
            environment,
            {"letsencrypt-staging": pebble.directory_url, "192.0.2.10": ADDRESS},
        )
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-2000:]
    assert "order 1 valid: certificate 2 'shop', assigned to " + ADDRESS in done.stdout
    assert "shop (certificate 2): renewed by order 2" in done.stdout
    assert re.search(r"order 3 valid: certificate \d+ 'mail'", done.stdout)  # tls-alpn-01
    # an IP identifier, validated by tls-alpn-01 at the address itself
    assert re.search(
        rf"order 4 valid: certificate \d+ 'by-address', assigned to {ADDRESS}", done.stdout
    )
    assert "Traceback" not in done.stderr
