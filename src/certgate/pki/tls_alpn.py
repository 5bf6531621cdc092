"""The TLS-ALPN-01 challenge certificate (RFC 8737): what the appliance presents to an ACME
CA that connects with ALPN ``acme-tls/1`` to validate an identifier.

Self-signed, its only subject alternative name the identifier validated (a DNS name, or an
IP address: RFC 8738 6), and the critical ``id-pe-acmeIdentifier`` extension holding the
SHA-256 of the challenge's key authorization (as a DER OCTET STRING). The key is made for it
and lives no longer than the certificate is presented: no store keeps it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

#: id-pe-acmeIdentifier (RFC 8737, 6.1)
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
#: How long a challenge certificate is valid: an order waits for its CA at most minutes.
VALIDITY = dt.timedelta(days=7)
_OCTET_STRING_OF_32 = b"\x04\x20"  # DER: tag OCTET STRING, length 32


def acme_identifier(key_authorization: str) -> bytes:
    """The extension's value: the DER OCTET STRING of SHA-256(key authorization)."""
    return _OCTET_STRING_OF_32 + hashlib.sha256(key_authorization.encode("ascii")).digest()


def _address(identifier: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(identifier)
    except ValueError:
        return None


def subject_name(identifier: str) -> x509.DNSName | x509.IPAddress:
    """The certificate's one subject alternative name for ``identifier``: an iPAddress for
    an IP address (RFC 8738 6), else a dNSName."""
    address = _address(identifier)
    return x509.DNSName(identifier) if address is None else x509.IPAddress(address)


def server_name(identifier: str) -> str:
    """The SNI a validator sends for ``identifier``: the DNS name itself, or for an IP
    address its reverse-mapping name (RFC 8738 6: ``5.0.0.127.in-addr.arpa``; IPv6 in the
    ``ip6.arpa`` nibble form), which is what the front end's challenge table is keyed by."""
    address = _address(identifier)
    return identifier if address is None else address.reverse_pointer


def challenge_certificate(
    identifier: str, key_authorization: str, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The certificate answering the challenge of ``identifier`` (an A-label DNS name or an
    IP address), and its key (P-256). The subject is empty, so the subject alternative name
    is critical (RFC 5280, 4.2.1.6)."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([subject_name(identifier)]), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER, acme_identifier(key_authorization)),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def answers(chain: Sequence[bytes], identifier: str, key_authorization: str) -> bool:
    """Whether the leaf of ``chain`` (DER, as a server sent it) answers the challenge of
    ``identifier``, as a CA checks it: ``identifier`` its only subject alternative name, the
    critical acmeIdentifier extension holding the key authorization's digest."""
    if not chain:
        return False
    try:
        certificate = x509.load_der_x509_certificate(chain[0])
        extension = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return False
    value = extension.value
    return (
        extension.critical
        and isinstance(value, x509.UnrecognizedExtension)
        and value.value == acme_identifier(key_authorization)
        and list(names.value) == [subject_name(identifier)]
    )
