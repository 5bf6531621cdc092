"""`certgate serve` follows what the CLI commits in another process: addresses open and close,
assignments, chains and TLS settings apply on the next handshake; a restart serves exactly
the last committed state. The openssl CLI is the client."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from certgate.service.appliance import STATUS_FILE
from tests.support.net import AWAY_IPV4, connection_refused, free_port
from tests.support.openssl import s_client
from tests.support.pki import make_chain, pem
from tests.support.polling import eventually
from tests.support.server import RunningAppliance, import_with_key, run_cli, running_appliance


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[RunningAppliance]:
    with running_appliance(tmp_path / "data", address="127.0.0.2") as running:
        yield running


def leaf_subject(address: str, port: int) -> str:
    output = s_client(address, port).stdout
    for line in output.splitlines():
        if line.strip().startswith("0 s:"):
            return line.strip()[4:]
    return ""


def test_addresses_added_and_removed_by_the_cli_open_and_close(
    appliance: RunningAppliance,
) -> None:
    port = appliance.port
    assert connection_refused("127.0.0.3", port)
    run_cli(appliance.data_dir, "ip", "add", "127.0.0.3")
    eventually(lambda: "certgate Appliance" in leaf_subject("127.0.0.3", port))
    run_cli(appliance.data_dir, "ip", "remove", "127.0.0.3")
    eventually(lambda: connection_refused("127.0.0.3", port))
    assert "certgate Appliance" in leaf_subject("127.0.0.2", port)  # the other one still runs


def test_an_assignment_serves_the_leaf_and_full_chain(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    chain = make_chain("shop.example.test")
    site = import_with_key(appliance, tmp_path, chain)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pem(chain.intermediate, chain.root))
    run_cli(appliance.data_dir, "cert", "import", str(ca))
    run_cli(appliance.data_dir, "ip", "assign", "127.0.0.2", "--cert", str(site))
    eventually(lambda: "shop.example.test" in leaf_subject("127.0.0.2", appliance.port))
    root = tmp_path / "root.pem"
    root.write_bytes(pem(chain.root))
    verified = s_client("127.0.0.2", appliance.port, "-verify_return_error", "-CAfile", str(root))
    assert verified.returncode == 0, verified.stdout
    assert "Verify return code: 0 (ok)" in verified.stdout
    assert "1 s:CN = Test Intermediate" in verified.stdout  # the chain is sent, not just the leaf
    status = json.loads(run_cli(appliance.data_dir, "status", "--json").stdout)
    [listener] = status["listeners"]
    assert status["serve_workers"] == 1
    assert listener["state"] == "listening"
    assert (
        listener["fingerprint"]
        == json.loads(run_cli(appliance.data_dir, "cert", "show", str(site), "--json").stdout)[
            "fingerprint_sha256"
        ]
    )


def test_tls_versions_follow_the_setting(appliance: RunningAppliance) -> None:
    port = appliance.port
    assert s_client("127.0.0.2", port, "-tls1_1").returncode != 0  # refused by default
    assert s_client("127.0.0.2", port, "-tls1_2").returncode == 0
    run_cli(appliance.data_dir, "tls", "set", "--min-version", "1.3")
    eventually(lambda: s_client("127.0.0.2", port, "-tls1_2").returncode != 0)
    assert s_client("127.0.0.2", port, "-tls1_3").returncode == 0


def test_a_restart_serves_the_last_committed_state(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    chain = make_chain("restart.example.test")
    with running_appliance(data_dir, address="127.0.0.2") as first:
        site = import_with_key(first, tmp_path, chain)
        run_cli(data_dir, "ip", "assign", "127.0.0.2", "--cert", str(site), "--confirm")
        eventually(lambda: "restart.example.test" in leaf_subject("127.0.0.2", first.port))
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=10) == 0  # a clean shutdown
    with running_appliance(data_dir, address="127.0.0.2") as second:
        assert "restart.example.test" in leaf_subject("127.0.0.2", second.port)


def test_an_address_whose_port_was_taken_is_listened_on_once_it_is_free(tmp_path: Path) -> None:
    """Another program held the HTTPS port on one address when serve started: once it lets
    go, serve listens there by itself (it waited for the next commit)."""
    held, port = "127.0.0.75", free_port()
    holder = socket.socket()
    holder.bind((held, port))
    holder.listen()
    try:
        with running_appliance(tmp_path / "data", "127.0.0.74", port=port) as running:
            run_cli(running.data_dir, "ip", "add", held)
            eventually(lambda: "127.0.0.75:" in running.log_text(), what="the bind failure")
            where = f"{held}:{port}"
            assert f"cannot listen on {where}: port {port} on {held} is already in use" in (
                running.log_text()
            )
            assert f"{where}: cannot listen on" not in running.log_text()  # said once
            holder.close()
            eventually(
                lambda: leaf_subject(held, port) != "",
                timeout=10,
                what=f"serve listens on {held} once the port is free",
            )
    finally:
        holder.close()


def test_a_floating_address_pinned_to_a_host_that_lacks_it_stops_listening_and_says_why(
    tmp_path: Path,
) -> None:
    """Floating, the address is bound with IP_FREEBIND while no interface has it; pinned to
    this node, it is bound plainly and fails as "not configured on this host" (it went on
    listening there, reported as served, while nothing could reach it)."""
    http_port = free_port()
    with running_appliance(
        tmp_path / "data",
        "127.0.0.76",
        serve_options=("--node", "n1"),
        tls_settings=("--http-port", str(http_port)),
    ) as running:
        run_cli(running.data_dir, "ip", "add", AWAY_IPV4)

        def states() -> dict[tuple[str, str], tuple[str, str]]:
            report = json.loads((running.data_dir / STATUS_FILE).read_text())
            return {
                (kind, str(item["address"])): (str(item["state"]), str(item["error"]))
                for kind in ("listeners", "http_listeners")
                for item in report[kind]
            }

        eventually(
            lambda: (
                {states().get((k, AWAY_IPV4), ("",))[0] for k in ("listeners", "http_listeners")}
                == {"listening"}
            ),
            what="the floating address listened on",
        )
        run_cli(running.data_dir, "ip", "set", AWAY_IPV4, "--node", "n1")
        eventually(
            lambda: (
                {states().get((k, AWAY_IPV4), ("",))[0] for k in ("listeners", "http_listeners")}
                == {"failed"}
            ),
            what="the pinned address that is not on this host fails",
        )
        for kind in ("listeners", "http_listeners"):
            assert "is not configured on this host" in states()[kind, AWAY_IPV4][1]
        assert leaf_subject("127.0.0.76", running.port) != ""  # the others go on
