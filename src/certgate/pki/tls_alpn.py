"""The TLS-ALPN-01 challenge certificate (RFC 8737): what the appliance presents to an ACME
CA that connects with ALPN ``acme-tls/1`` to validate a DNS name.

Self-signed, its only subject alternative name the DNS name validated, and the critical
``id-pe-acmeIdentifier`` extension holding the SHA-256 of the challenge's key authorization
(as a DER OCTET STRING). The key is made for it and lives no longer than the certificate is
presented: no store keeps it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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


def challenge_certificate(
    name: str, key_authorization: str, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The certificate answering the challenge of ``name`` (an A-label DNS name), and its
    key (P-256). The subject is empty, so the subject alternative name is critical
    (RFC 5280, 4.2.1.6)."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER, acme_identifier(key_authorization)),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def answers(chain: Sequence[bytes], name: str, key_authorization: str) -> bool:
    """Whether the leaf of ``chain`` (DER, as a server sent it) answers the challenge of
    ``name``, as a CA checks it: ``name`` its only subject alternative name, the critical
    acmeIdentifier extension holding the key authorization's digest."""
    if not chain:
        return False
    try:
        certificate = x509.load_der_x509_certificate(chain[0])
        identifier = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return False
    value = identifier.value
    return (
        identifier.critical
        and isinstance(value, x509.UnrecognizedExtension)
        and value.value == acme_identifier(key_authorization)
        and list(names.value) == [x509.DNSName(name)]
    )
