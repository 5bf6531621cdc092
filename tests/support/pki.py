"""A tiny test CA built with cryptography: root -> intermediate -> leaf, in memory."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_key(kind: str = "p256") -> Key:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def issue(
    subject: x509.Name,
    public_key: object,
    issuer: x509.Name,
    issuer_key: Key,
    *,
    ca: bool,
    sans: list[str] | None = None,
    days: int = 365,
    not_before: dt.datetime | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number() if serial is None else serial)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(san) for san in sans]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class TestChain:
    __test__ = False  # a fixture's data, not a test class
    root_key: Key
    root: x509.Certificate
    intermediate_key: Key
    intermediate: x509.Certificate
    leaf_key: Key
    leaf: x509.Certificate


def make_chain(host: str = "www.example.com", kind: str = "p256") -> TestChain:
    root_key = new_key(kind)
    root = issue(name("Test Root"), root_key.public_key(), name("Test Root"), root_key, ca=True)
    intermediate_key = new_key(kind)
    intermediate = issue(
        name("Test Intermediate"), intermediate_key.public_key(), root.subject, root_key, ca=True
    )
    leaf_key = new_key(kind)
    leaf = issue(
        name(host),
        leaf_key.public_key(),
        intermediate.subject,
        intermediate_key,
        ca=False,
        sans=[host],
    )
    return TestChain(root_key, root, intermediate_key, intermediate, leaf_key, leaf)


def negative_serial_pem(host: str) -> bytes:
    """A PEM certificate for ``host`` whose serial number is -1: cryptography reads it with a
    warning (its signature no longer verifies, which does not matter for that)."""
    key = new_key()
    certificate = issue(name(host), key.public_key(), name(host), key, ca=False, serial=1)
    version_and_serial = b"\xa0\x03\x02\x01\x02\x02\x01"  # [0] v3, INTEGER of one octet
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert der.count(version_and_serial + b"\x01") == 1
    der = der.replace(version_and_serial + b"\x01", version_and_serial + b"\xff")
    body = base64.encodebytes(der)
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"
