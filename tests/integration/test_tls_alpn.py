"""TLS-ALPN-01 (RFC 8737) as an ACME CA's validator meets the front end: a client offering
ALPN ``acme-tls/1`` with the name of a pending challenge as SNI gets the challenge certificate
(its only name that one, the critical acmeIdentifier extension holding SHA-256 of the key
authorization), acme-tls/1 selected, and the connection closed after the handshake; one
offering it for any other name is refused; everyone else is served as before."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
from collections.abc import Iterator

import pytest
from cryptography import x509

from certgate.pki import tls_alpn
from certgate.pki.tls_alpn import ACME_IDENTIFIER, server_name
from certgate.tls import ServedCertificate
from tests.integration._tls_helpers import Pki, ServerThread, make_pki, plan, served_challenge
from tests.support.net import free_port
from tests.support.openssl import s_client
from tests.support.served import alpn_handshake, client_context

A = "127.0.0.2"
NAME = "shop.example.test"
KEY_AUTHORIZATION = (
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), {"gateway.test": "p256"})


class Server:
    def __init__(self, pki: Pki) -> None:
        self.running = ServerThread(ticket_secret=b"s" * 32)
        self.port = free_port()
        self.pki = pki

    def apply(self, challenges: dict[str, ServedCertificate]) -> None:
        served = {A: self.pki["gateway.test"].served}
        [status] = self.running.apply(plan(self.port, served, challenges=challenges))
        assert status.state == "listening"


@pytest.fixture
def server(pki: Pki) -> Iterator[Server]:
    made = Server(pki)
    made.apply({NAME: served_challenge(NAME, KEY_AUTHORIZATION)})
    yield made
    made.running.close()


def test_a_validator_gets_the_challenge_certificate_and_the_connection_ends(
    server: Server,
) -> None:
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        answer = alpn_handshake(A, server.port, NAME, version=version)
        assert answer.protocol == "acme-tls/1"
        assert answer.closed is True  # nothing is served over acme-tls/1
        certificate = answer.certificate
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert names.value.get_values_for_type(x509.DNSName) == [NAME]
        assert len(list(names.value)) == 1
        identifier = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER)
        assert identifier.critical
        digest = hashlib.sha256(KEY_AUTHORIZATION.encode()).digest()
        assert isinstance(identifier.value, x509.UnrecognizedExtension)
        assert identifier.value.value == b"\x04\x20" + digest  # DER OCTET STRING
        assert certificate.issuer == certificate.subject  # self-signed
    # SNI is matched as DNS names are: whatever the case.
    assert alpn_handshake(A, server.port, NAME.upper()).protocol == "acme-tls/1"


def test_acme_tls_for_any_other_name_is_refused(server: Server) -> None:
    for name in ("other.example.test", None):
        for offered in (("acme-tls/1",), ("acme-tls/1", "http/1.1"), ("http/1.1", "acme-tls/1")):
            with pytest.raises(ssl.SSLError, match="no application protocol"):
                alpn_handshake(A, server.port, name, offered)
    # openssl's client as an independent peer: refused with the same alert
    refused = s_client(A, server.port, "-servername", "other.example.test", "-alpn", "acme-tls/1")
    assert "no application protocol" in refused.stdout
    answered = s_client(A, server.port, "-servername", NAME, "-alpn", "acme-tls/1")
    assert "ALPN protocol: acme-tls/1" in answered.stdout


def test_everyone_else_gets_the_served_certificate_and_is_served(server: Server, pki: Pki) -> None:
    served = pki["gateway.test"]
    for offered in (("http/1.1",), ("h2", "http/1.1")):
        answer = alpn_handshake(A, server.port, NAME, offered, wait_for_close=False)
        assert answer.protocol == "http/1.1"
        assert hashlib.sha256(answer.der).hexdigest() == served.fingerprint
    # no ALPN at all, with the challenge's name: the served certificate, and the echo answers
    context = client_context(pki.root_pem)
    with (
        socket.create_connection((A, server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        assert hashlib.sha256(tls.getpeercert(True) or b"").hexdigest() == served.fingerprint
        tls.sendall(b"ping")
        assert tls.recv(4) == b"ping"


def test_challenges_follow_the_plan(server: Server) -> None:
    second = "www.shop.example.test"
    server.apply(
        {
            NAME: served_challenge(NAME, KEY_AUTHORIZATION),
            second: served_challenge(second, "other.authorization"),
        }
    )
    answer = alpn_handshake(A, server.port, second)
    identifier = answer.certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER).value
    assert isinstance(identifier, x509.UnrecognizedExtension)
    assert identifier.value[2:] == hashlib.sha256(b"other.authorization").digest()
    server.apply({})  # the order ended: its challenges are withdrawn
    for name in (NAME, second):
        with pytest.raises(ssl.SSLError, match="no application protocol"):
            alpn_handshake(A, server.port, name)


def test_an_ip_identifier_is_answered_by_its_reverse_mapping_name(server: Server) -> None:
    """RFC 8738 6: the validator of an address sends its reverse-mapping name as SNI (the
    IPv6 one 72 characters long) and checks the address is the certificate's one name."""
    addresses = ("127.0.0.5", "2001:db8::1")
    server.apply(
        {
            server_name(address): served_challenge(address, KEY_AUTHORIZATION)
            for address in addresses
        }
    )
    for address in addresses:
        answer = alpn_handshake(A, server.port, server_name(address))
        assert answer.protocol == "acme-tls/1"
        names = answer.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert list(names.value) == [x509.IPAddress(ipaddress.ip_address(address))]
        assert tls_alpn.answers([answer.der], address, KEY_AUTHORIZATION)
    with pytest.raises(ssl.SSLError, match="no application protocol"):
        alpn_handshake(A, server.port, "127.0.0.5")  # the address itself is no SNI
