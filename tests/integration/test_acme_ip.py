"""IP identifiers (RFC 8738) against a real CA (Debian's Pebble, which validates an IP
address by connecting to it, no DNS): an address ordered by http-01 (Pebble fetches
``http://127.0.0.71/.well-known/acme-challenge/...`` from serve's plain HTTP listener) and by
tls-alpn-01 (Pebble's SNI is the address's reverse-mapping name, and the challenge
certificate must carry the address as its one iPAddress name), each ending with the issued
certificate (an iPAddress SAN) presented on that address and verified by openssl against
Pebble's root as a client connecting by the address does."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from tests.support.ca_proxy import running_ca_proxy
from tests.support.net import free_port
from tests.support.openssl import s_client
from tests.support.pebble import Pebble, order, orders, register, running_pebble
from tests.support.served import handshake, wait_until_served
from tests.support.server import RunningAppliance, run_cli, running_appliance

ADDRESS = "127.0.0.71"
tls_alpn = ("--challenge", "tls-alpn-01")


def verified_by_address(
    tmp_path: Path, pebble: Pebble, appliance: RunningAppliance, issued: dict[str, object]
) -> None:
    """The issued certificate presented on the address, and openssl, connecting by the
    address, verifying it against Pebble's root with the address checked against the
    certificate's iPAddress names."""
    wait_until_served(ADDRESS, appliance.port, str(issued["certificate_fingerprint"]))
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(pebble.root_pem())
    verified = s_client(
        ADDRESS, appliance.port, "-CAfile", root, "-verify_return_error", "-verify_ip", ADDRESS
    )
    assert "Verify return code: 0 (ok)" in verified.stdout, verified.stdout
    wrong = s_client(
        ADDRESS, appliance.port, "-CAfile", root, "-verify_return_error", "-verify_ip", "127.0.0.99"
    )
    assert "IP address mismatch" in wrong.stdout, wrong.stdout


def ip_names(appliance: RunningAppliance) -> list[object]:
    leaf = x509.load_der_x509_certificate(handshake(ADDRESS, appliance.port).der)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(value) for value in names.get_values_for_type(x509.IPAddress)]


def test_an_address_and_a_name_ordered_by_http01(tmp_path: Path) -> None:
    http_port = free_port()
    with (
        running_appliance(
            tmp_path / "data", ADDRESS, serve_options=("--http-port", str(http_port))
        ) as appliance,
        running_pebble(tmp_path / "pebble", ADDRESS, http_port) as pebble,
    ):
        register(appliance.data_dir, pebble)
        issued = order(
            appliance.data_dir,
            *("by-address", ADDRESS, ADDRESS),
            options=("--domain", "ip.example.test", "--key", "p256"),
        )
        assert issued["state"] == "valid", pebble.log_text()
        assert issued["domains"] == [ADDRESS, "ip.example.test"]
        # The address is fetched as itself, not looked up.
        assert f"http://{ADDRESS}:{http_port}/.well-known/acme-challenge/" in pebble.log_text()
        verified_by_address(tmp_path, pebble, appliance, issued)
        assert ip_names(appliance) == [ADDRESS]
        root = tmp_path / "pebble-root.pem"
        by_name = s_client(
            *(ADDRESS, appliance.port, "-CAfile", root, "-verify_return_error"),
            *("-verify_hostname", "ip.example.test"),
        )
        assert "Verify return code: 0 (ok)" in by_name.stdout, by_name.stdout


def test_an_address_ordered_by_tls_alpn01(tmp_path: Path) -> None:
    """Pebble's DNS points at an address where nothing listens: the address ordered is
    reached as itself."""
    with running_appliance(tmp_path / "data", ADDRESS) as appliance:
        with running_pebble(
            tmp_path / "pebble", "127.0.0.72", free_port(), tls_port=appliance.port
        ) as pebble:
            register(appliance.data_dir, pebble)
            issued = order(
                appliance.data_dir,
                *("alpn-address", ADDRESS, ADDRESS),
                options=("--challenge", "tls-alpn-01"),
            )
            assert issued["state"] == "valid", pebble.log_text()
            verified_by_address(tmp_path, pebble, appliance, issued)
            assert ip_names(appliance) == [ADDRESS]
        reverse = ".".join(reversed(ADDRESS.split("."))) + ".in-addr.arpa"
        assert f"answering the TLS-ALPN-01 challenge of {reverse}" in appliance.log_text()


def test_a_ca_that_refuses_addresses_is_quoted(tmp_path: Path) -> None:
    """A CA that issues for DNS names only answers the order with its problem document:
    shown verbatim, with what it means, and the order listed as invalid."""
    with (
        running_appliance(tmp_path / "data", ADDRESS) as appliance,
        running_pebble(
            tmp_path / "pebble", ADDRESS, free_port(), tls_port=appliance.port
        ) as pebble,
        running_ca_proxy(tmp_path / "proxy", pebble) as proxy,
    ):
        proxy.refuse_ip = True
        register(appliance.data_dir, proxy)
        refused = run_cli(
            appliance.data_dir,
            *("acme", "order", "--name", "refused", "--domain", "ip.example.test"),
            *("--domain", ADDRESS, "--challenge", "tls-alpn-01"),
            check=False,
        )
        assert refused.returncode == 1
        document = (
            '{"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "Cannot issue '
            'for 127.0.0.71: IP addresses are not supported by this CA", "status": 400}'
        )
        assert refused.stderr.splitlines() == [
            f"the CA's problem document: {document}",
            "error: ACME order 1 failed: the ACME CA refused: Cannot issue for 127.0.0.71: IP "
            "addresses are not supported by this CA "
            "(urn:ietf:params:acme:error:rejectedIdentifier); this CA may not issue "
            "certificates for IP addresses (RFC 8738) such as 127.0.0.71: order DNS names "
            "from it",
        ]
        [identifiers] = [entry["identifiers"] for entry in proxy.new_orders]
        assert identifiers == [
            {"type": "dns", "value": "ip.example.test"},
            {"type": "ip", "value": ADDRESS},
        ]
        [listed] = orders(appliance.data_dir)
        assert listed["state"] == "invalid"
        assert listed["error_document"] == document  # as the CA sent it
        # The same CA issues for the DNS name alone.
        issued = order(appliance.data_dir, "named", "ip.example.test", options=tls_alpn)
        assert issued["state"] == "valid", proxy.log_text()
