"""Self-signed certificates and certificate signing requests, from a key and a checked form."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from certgate.limits import DEFAULT_VALIDITY_DAYS
from certgate.pki.keys import PrivateKey


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return hashes.SHA256()
    return None  # Ed25519 / Ed448 sign without a separate hash


def _san_extension(sans: Sequence[x509.GeneralName]) -> x509.SubjectAlternativeName | None:
    return x509.SubjectAlternativeName(list(sans)) if sans else None


def build_self_signed(
    key: PrivateKey,
    subject: x509.Name,
    sans: Sequence[x509.GeneralName],
    *,
    days: int = DEFAULT_VALIDITY_DAYS,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """A server certificate signed by its own key (for testing or a first installation)."""
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    public_key = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    san = _san_extension(sans)
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(key, _signature_hash(key))


def build_request(
    key: PrivateKey, subject: x509.Name, sans: Sequence[x509.GeneralName]
) -> x509.CertificateSigningRequest:
    """A PKCS#10 request, the "Request Data" the administrator submits to a CA."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    san = _san_extension(sans)
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(key, _signature_hash(key))


def _key_usage(key: PrivateKey) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
