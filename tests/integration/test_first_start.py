"""Issue 15, point 1: the first start reaches /appliance. ``certgate init`` configures
127.0.0.1 when no address is configured, ``certgate serve`` without an address says what to
run, and the last address is removed only when the administrator confirms the lockout."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.request
from pathlib import Path

from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.served import handshake_succeeds
from tests.support.server import CERTGATE, run_cli, running_appliance


def _get(url: str) -> tuple[int, str]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the factory certificate is self-signed
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        return response.status, response.read().decode()


def test_after_init_the_first_serve_answers_at_the_appliance_pages(tmp_path: Path) -> None:
    with running_appliance(tmp_path / "data", address="127.0.0.1", first_start=True) as running:
        status, body = _get(f"https://127.0.0.1:{running.port}/appliance/login")
    assert status == 200
    assert "Log in to the appliance" in body


def test_init_configures_the_loopback_address_only_when_there_is_none(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = run_cli(data_dir, "init")
    assert (
        "configured the address 127.0.0.1 (there was none): after 'certgate serve', log in at "
        "https://127.0.0.1:8443/appliance" in first.stdout
    )
    again = run_cli(data_dir, "init", "--json")
    assert json.loads(again.stdout)["address_added"] is None
    listed = json.loads(run_cli(data_dir, "ip", "list", "--json").stdout)
    assert [entry["address"] for entry in listed] == ["127.0.0.1"]

    other = tmp_path / "other"
    run_cli(other, "init", "--no-address")
    assert json.loads(run_cli(other, "ip", "list", "--json").stdout) == []


def test_a_refused_first_address_does_not_cost_the_generated_admin_password(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    refused = run_cli(data_dir, "init", "--address", "0.0.0.0", check=False)
    assert refused.returncode != 0 and "0.0.0.0" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (data_dir / "certgate.db").exists()  # nothing made, so nothing half-made
    done = run_cli(data_dir, "init", "--json")
    assert json.loads(done.stdout)["admin_password"]  # the password is still shown once


def test_the_last_address_is_removed_only_when_the_lockout_is_confirmed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run_cli(data_dir, "init")

    refused = run_cli(data_dir, "ip", "remove", "127.0.0.1", check=False)
    assert refused.returncode == 1
    assert "127.0.0.1 is the last IP address" in refused.stderr
    assert "locks the administrator out of the /appliance pages" in refused.stderr
    assert "--confirm" in refused.stderr
    assert "Traceback" not in refused.stderr
    listed = json.loads(run_cli(data_dir, "ip", "list", "--json").stdout)
    assert [entry["address"] for entry in listed] == ["127.0.0.1"]  # nothing changed

    run_cli(data_dir, "ip", "add", "127.0.0.42")
    run_cli(data_dir, "ip", "remove", "127.0.0.42")  # not the last one: no confirmation
    run_cli(data_dir, "ip", "remove", "127.0.0.1", "--confirm")
    assert json.loads(run_cli(data_dir, "ip", "list", "--json").stdout) == []

    # The way back in from the console: init configures the loopback address again.
    assert "configured the address 127.0.0.1" in run_cli(data_dir, "init").stdout


def test_serve_without_an_address_says_what_to_run_and_listens_once_it_is_done(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    run_cli(data_dir, "init", "--no-address")
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [CERTGATE, "serve", "--https-port", str(port)],
            env={**os.environ, "CERTGATE_DATA_DIR": str(data_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            said = (
                "no IP address is configured, so certgate serve listens nowhere and /appliance "
                "cannot be reached: run 'certgate ip add 127.0.0.1'"
            )
            eventually(lambda: said in log_path.read_text(), timeout=30)
            run_cli(data_dir, "ip", "add", "127.0.0.43")  # what it said, on a test address
            eventually(lambda: handshake_succeeds("127.0.0.43", port, timeout=2), timeout=30)
            assert process.poll() is None
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert "Traceback" not in log_path.read_text()
