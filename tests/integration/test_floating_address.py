"""A floating address is served the moment it arrives (issue 12, point 2), as keepalived
moves a failover pair's shared address: a serve in a network namespace of the test's own
listens on 198.51.100.10 while no interface has it (IP_FREEBIND), a TLS handshake succeeds
as soon as the address is added to the namespace's loopback, with no rebind and nothing done
by certgate, and the node's heartbeat says whether it holds the address (Diagnostic Status:
``address-not-held`` while nobody does)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from certgate.service.nodes import HEARTBEAT_ENV
from tests.support.net import AWAY_IPV4, free_port
from tests.support.netns import NetworkNamespace, network_namespace
from tests.support.openssl import fingerprint, s_client
from tests.support.polling import eventually
from tests.support.server import CERTGATE, run_cli, stop

LOOPBACK = "127.0.0.1"


def _presented(namespace: NetworkNamespace, port: int, tmp_path: Path) -> str | None:
    """The fingerprint a client in the namespace is presented on AWAY_IPV4, or None."""
    done = s_client(AWAY_IPV4, port, inside=namespace.command())
    if done.returncode != 0 or "BEGIN CERTIFICATE" not in done.stdout:
        return None
    leaf = tmp_path / "presented.pem"
    leaf.write_text(done.stdout)
    return fingerprint(leaf)


def _held(data: Path) -> dict[str, bool | None]:
    listed = json.loads(run_cli(data, "node", "list", "--json").stdout)
    return {item["address"]: item["held"] for node in listed for item in node["listeners"]}


def _codes(data: Path) -> list[str]:
    document = json.loads(run_cli(data, "status", "--json").stdout)
    return [finding["code"] for finding in document["diagnostics"]]


def test_a_floating_address_is_served_the_moment_it_arrives(tmp_path: Path) -> None:
    with network_namespace() as namespace:
        data = tmp_path / "data"
        run_cli(data, "init", "--no-address", CERTGATE_ADMIN_PASSWORD="correct horse battery")
        run_cli(data, "ip", "add", LOOPBACK)
        run_cli(data, "ip", "add", AWAY_IPV4)  # floating: every node, none holds it yet
        assigned = {
            a["address"]: a for a in json.loads(run_cli(data, "ip", "list", "--json").stdout)
        }
        port = free_port()
        log_path = data / "serve.log"
        with log_path.open("w") as log:
            serve = subprocess.Popen(
                namespace.command(CERTGATE, "serve", "--https-port", str(port), "--node", "a"),
                env={**os.environ, "CERTGATE_DATA_DIR": str(data), HEARTBEAT_ENV: "0.5"},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            try:
                eventually(
                    lambda: _held(data) == {LOOPBACK: True, AWAY_IPV4: False},
                    timeout=30,
                    what="node a listens on both and says it holds the loopback only",
                )
                assert _codes(data) == ["address-not-held"]
                assert _presented(namespace, port, tmp_path) is None  # nobody has it
                binds = log_path.read_text().count("listening on")

                # keepalived adds the address: the next client is served, with nothing done.
                namespace.run("ip", "addr", "add", f"{AWAY_IPV4}/32", "dev", "lo")
                expected = assigned[AWAY_IPV4]["certificate_fingerprint"]
                assert _presented(namespace, port, tmp_path) == expected
                assert log_path.read_text().count("listening on") == binds  # no rebind
                eventually(lambda: _held(data)[AWAY_IPV4] is True, what="node a holds it")
                [node] = json.loads(run_cli(data, "node", "list", "--json").stdout)
                assert node["holds"] == [LOOPBACK, AWAY_IPV4]
                assert _codes(data) == []

                # It moves to the other node of the pair: this one stands by again.
                namespace.run("ip", "addr", "del", f"{AWAY_IPV4}/32", "dev", "lo")
                eventually(lambda: _held(data)[AWAY_IPV4] is False, what="node a lets it go")
                assert _codes(data) == ["address-not-held"]
            finally:
                stop(serve)
        assert "Traceback" not in log_path.read_text()
