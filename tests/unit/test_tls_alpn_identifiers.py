"""The TLS-ALPN-01 challenge certificate of an IP identifier (RFC 8738 6): its one name the
address as an iPAddress, and the SNI a validator sends for it, the address's reverse-mapping
name, by which the front end finds it."""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certgate.pki.tls_alpn import answers, challenge_certificate, server_name

NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def test_the_sni_of_an_address_is_its_reverse_mapping_name() -> None:
    assert server_name("127.0.0.5") == "5.0.0.127.in-addr.arpa"
    assert server_name("2001:db8::1") == (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    )
    assert server_name("shop.example.test") == "shop.example.test"


def test_an_address_is_answered_by_a_certificate_naming_it_as_an_ip_address() -> None:
    for identifier in ("127.0.0.5", "2001:db8::1"):
        certificate, _ = challenge_certificate(identifier, "token.thumbprint", NOW)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert names.critical
        assert list(names.value) == [x509.IPAddress(ipaddress.ip_address(identifier))]
        der = certificate.public_bytes(serialization.Encoding.DER)
        assert answers([der], identifier, "token.thumbprint")
        assert not answers([der], "127.0.0.6", "token.thumbprint")
        assert not answers([der], identifier, "other.thumbprint")
    # A DNS name that reads like the address is not the address.
    named, _ = challenge_certificate("shop.example.test", "token.thumbprint", NOW)
    der = named.public_bytes(serialization.Encoding.DER)
    assert answers([der], "shop.example.test", "token.thumbprint")
    assert not answers([der], "127.0.0.5", "token.thumbprint")
