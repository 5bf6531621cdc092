"""``certgate ip test``: a real TLS client against a real ``certgate serve`` says what a browser
will make of what each address serves: chain, trust (certgate's store or the system's),
hostname coverage, days left, protocol and cipher; nothing listening is a result too."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from certgate.service import addresstest, networking
from certgate.service.appliance import Appliance
from tests.support.net import free_port
from tests.support.pki import fingerprint, make_chain, pem
from tests.support.served import wait_until_served
from tests.support.server import RunningAppliance, import_with_key, run_cli, running_appliance


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[RunningAppliance]:
    with running_appliance(tmp_path / "data", address="127.0.0.2") as running:
        yield running


def ip_test(appliance: RunningAppliance, *args: str, **env: str) -> dict[str, Any]:
    done = run_cli(appliance.data_dir, "ip", "test", *args, "--json", **appliance.env, **env)
    return dict(json.loads(done.stdout))


def test_a_chain_to_a_root_in_the_store_is_trusted_and_covers_its_name(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    chain = make_chain("shop.example.test", key_usage=True)
    site = import_with_key(appliance, tmp_path, chain)
    cas = tmp_path / "ca.pem"
    cas.write_bytes(pem(chain.intermediate, chain.root))
    run_cli(appliance.data_dir, "cert", "import", str(cas))
    run_cli(appliance.data_dir, "ip", "assign", "127.0.0.2", "--cert", str(site))
    wait_until_served("127.0.0.2", appliance.port, fingerprint(chain.leaf))

    report = ip_test(appliance, "127.0.0.2")
    assert report["port"] == appliance.port  # the port the running server listens on
    assert report["certificate_id"] == site
    [result] = report["results"]
    assert result["server_name"] == "shop.example.test"  # the certificate's DNS name as SNI
    assert result["connected"] and result["browser_accepts"], result
    assert result["trusted_by"] == "certgate store"
    assert result["name_covered"] is True
    assert result["presents_assigned"] is True
    assert result["protocol"].startswith("TLSv1.")
    assert result["cipher"]
    assert 360 <= result["days_left"] <= 365
    assert [c["fingerprint_sha256"] for c in result["chain"]] == [
        fingerprint(chain.leaf),
        fingerprint(chain.intermediate),
    ]
    assert all(c["in_store"] for c in result["chain"])

    # A name the certificate does not cover is reported as such, trust still shown.
    other = ip_test(appliance, "127.0.0.2", "--hostname", "www.elsewhere.test")["results"][0]
    assert other["server_name"] == "www.elsewhere.test"
    assert other["name_covered"] is False
    assert other["trusted_by"] == "certgate store"
    assert other["browser_accepts"] is False
    assert "does not cover www.elsewhere.test" in other["verdict"]

    text = run_cli(appliance.data_dir, "ip", "test", "127.0.0.2", **appliance.env).stdout
    assert "accepts it" in text and "CN=shop.example.test" in text


def test_a_root_only_in_the_system_trust_store_is_trusted_by_it(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    """The root is not imported; the system trust store (OpenSSL's CA file, here named by
    SSL_CERT_FILE as OpenSSL reads it) holds it beside another CA."""
    chain = make_chain("public.example.test", key_usage=True)
    site = import_with_key(appliance, tmp_path, chain)
    intermediate = tmp_path / "intermediate.pem"
    intermediate.write_bytes(pem(chain.intermediate))
    run_cli(appliance.data_dir, "cert", "import", str(intermediate))
    # the root is not in the store: the chain is incomplete there, which needs confirming
    run_cli(appliance.data_dir, "ip", "assign", "127.0.0.2", "--cert", str(site), "--confirm")
    wait_until_served("127.0.0.2", appliance.port, fingerprint(chain.leaf))
    system = tmp_path / "system-ca.pem"
    system.write_bytes(pem(make_chain("other.test").root, chain.root))

    untrusted = ip_test(appliance, "127.0.0.2", SSL_CERT_FILE=str(tmp_path / "none.pem"))
    assert untrusted["results"][0]["trusted_by"] is None
    [result] = ip_test(appliance, "127.0.0.2", SSL_CERT_FILE=str(system))["results"]
    assert result["trusted_by"] == "system trust store"
    assert result["browser_accepts"] is True
    assert [c["in_store"] for c in result["chain"]] == [True, True]


def test_the_self_signed_factory_certificate_is_not_trusted(appliance: RunningAppliance) -> None:
    results = ip_test(appliance, "127.0.0.2")["results"]
    assert "localhost" in [result["server_name"] for result in results]  # each of its names
    for result in results:
        assert result["connected"] is True
        assert result["name_covered"] is True
        assert result["trusted_by"] is None
        assert "self-signed" in result["trust_error"]
        assert result["browser_accepts"] is False
        assert "not trusted" in result["verdict"]
        assert len(result["chain"]) == 1 and result["chain"][0]["in_store"]


def test_nothing_listening_is_a_clear_result(appliance: RunningAppliance) -> None:
    port = free_port()
    report = ip_test(appliance, "127.0.0.2", "--port", str(port), "--hostname", "a.example.test")
    [result] = report["results"]
    assert result["connected"] is False
    assert result["error"] == f"nothing is listening on 127.0.0.2 port {port} (connection refused)"
    assert result["browser_accepts"] is False


def test_a_listener_that_does_not_speak_tls_is_a_clear_result(
    appliance: RunningAppliance,
) -> None:
    """Another program on the port, answering in plain HTTP: the handshake fails, said so."""
    with socket.create_server(("127.0.0.2", 0)) as plain:
        port = plain.getsockname()[1]

        def answer() -> None:
            connection, _ = plain.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        server = threading.Thread(target=answer, daemon=True)
        server.start()
        report = ip_test(appliance, "127.0.0.2", "--port", str(port), "--hostname", "localhost")
        server.join(timeout=10)
    [result] = report["results"]
    assert result["connected"] is False
    assert result["error"].startswith(f"127.0.0.2 port {port} refused the TLS handshake"), result
    assert "does not speak TLS" in result["error"]
    assert result["verdict"].startswith("A browser cannot connect")


def test_only_the_appliances_own_addresses_are_tested(appliance: RunningAppliance) -> None:
    done = run_cli(appliance.data_dir, "ip", "test", "127.0.0.9", check=False, **appliance.env)
    assert done.returncode != 0
    assert "127.0.0.9 is not configured" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_hostname_is_refused_clearly(appliance: RunningAppliance) -> None:
    done = run_cli(
        appliance.data_dir,
        "ip",
        "test",
        "127.0.0.2",
        "--hostname",
        "*.example.test",
        check=False,
        **appliance.env,
    )
    assert done.returncode != 0
    assert "wildcard" in done.stderr and "Traceback" not in done.stderr


def test_a_stalled_listener_costs_one_deadline_not_one_timeout_per_hostname(
    new_appliance: Callable[[], Appliance],
) -> None:
    """Twenty hostnames on a port that accepts and never answers: the test ends at its
    deadline, the names it did not reach said to be untested."""
    app = new_appliance()
    networking.add_address(app, "127.0.0.2")
    names = [f"n{number}.example.test" for number in range(20)]
    networking.set_hostnames(app, "127.0.0.2", names)
    with socket.create_server(("127.0.0.2", 0)) as silent:  # accepts (backlog), never speaks
        report = addresstest.probe_address(
            app, "127.0.0.2", port=silent.getsockname()[1], timeout=0.5, deadline=1.2
        )
    errors = [result.error or "" for result in report.results]
    assert [result.server_name for result in report.results] == names
    assert all("TLS handshake timed out" in error for error in errors[:2]), errors
    assert errors[-1] == "not tested: the test stops after 1.2 s in all"
