"""What a DER file is, told from its outer shape alone: the import's "this file is a CRL, not
a certificate", "this PKCS#12 file needs a password", "the file is cut short" (pki/der.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certgate.pki.der import (
    Shape,
    certificate_parts,
    looks_truncated,
    oid,
    outer_end,
    read_tlv,
    sniff,
)
from tests.support.pki import make_chain, name

DER = serialization.Encoding.DER
CHAIN = make_chain("shapes.example.test")
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
NO_PASSWORD = serialization.NoEncryption()


def _request() -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(name("shapes.example.test"))
    return builder.sign(EC_KEY, hashes.SHA256()).public_bytes(DER)


def _crl() -> bytes:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name("Test CA"))
        .last_update(now)
        .next_update(now + dt.timedelta(days=7))
    )
    return builder.sign(EC_KEY, hashes.SHA256()).public_bytes(DER)


def _key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, form: str) -> bytes:
    if form == "pkcs8":
        return key.private_bytes(DER, serialization.PrivateFormat.PKCS8, NO_PASSWORD)
    if form == "encrypted":
        protected = serialization.BestAvailableEncryption(b"passphrase")
        return key.private_bytes(DER, serialization.PrivateFormat.PKCS8, protected)
    return key.private_bytes(DER, serialization.PrivateFormat.TraditionalOpenSSL, NO_PASSWORD)


#: P-256 as `openssl ecparam -name prime256v1 -outform DER` writes it: the curve's OID alone.
P256_PARAMETERS = bytes.fromhex("06082a8648ce3d030107")


#: A sample of each kind of file (made when the test runs) and what it must be told to be.
SAMPLES: list[tuple[Callable[[], bytes], Shape]] = [
    (lambda: CHAIN.leaf.public_bytes(DER), Shape.CERTIFICATE),
    (_request, Shape.REQUEST),
    (_crl, Shape.CRL),
    (lambda: pkcs7.serialize_certificates([CHAIN.leaf, CHAIN.root], DER), Shape.PKCS7),
    (
        lambda: pkcs12.serialize_key_and_certificates(
            b"site", EC_KEY, None, None, serialization.BestAvailableEncryption(b"pw")
        ),
        Shape.PKCS12,
    ),
    (lambda: _key(RSA_KEY, "pkcs8"), Shape.PKCS8),
    (lambda: _key(EC_KEY, "encrypted"), Shape.ENCRYPTED_PKCS8),
    (lambda: _key(RSA_KEY, "traditional"), Shape.RSA_KEY),
    (lambda: _key(EC_KEY, "traditional"), Shape.EC_KEY),
    (
        lambda: EC_KEY.public_key().public_bytes(
            DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        Shape.PUBLIC_KEY,
    ),
    (lambda: P256_PARAMETERS, Shape.EC_PARAMETERS),
    (lambda: b"", Shape.UNKNOWN),
    (lambda: b"hello, this is a text file\n", Shape.UNKNOWN),
    (lambda: bytes(range(256)), Shape.UNKNOWN),
]


@pytest.mark.parametrize(
    ("make", "shape"), SAMPLES, ids=[shape.name.lower() for _, shape in SAMPLES]
)
def test_each_kind_of_file_an_administrator_brings_is_told_apart(
    make: Callable[[], bytes], shape: Shape
) -> None:
    assert sniff(make()) is shape


def test_a_certificate_cut_short_in_transit_is_recognised_as_such() -> None:
    der = CHAIN.leaf.public_bytes(DER)
    assert not looks_truncated(der)
    assert looks_truncated(der[: len(der) // 2])
    assert sniff(der[: len(der) // 2]) is Shape.UNKNOWN
    assert not looks_truncated(b"plain text, not DER at all")


def test_the_end_of_the_first_object_is_found_when_something_follows_it() -> None:
    leaf, root = CHAIN.leaf.public_bytes(DER), CHAIN.root.public_bytes(DER)
    assert outer_end(leaf + root) == len(leaf)
    assert outer_end(leaf[:-1]) is None


def test_the_parts_issuers_are_found_by_are_read_without_parsing_the_certificate() -> None:
    parts = certificate_parts(CHAIN.leaf.public_bytes(DER))
    assert parts is not None
    assert parts.tbs == CHAIN.leaf.tbs_certificate_bytes
    assert parts.issuer == CHAIN.intermediate.subject.public_bytes()
    assert parts.subject == CHAIN.leaf.subject.public_bytes()
    assert certificate_parts(_crl()) is None
    assert certificate_parts(b"\x30\x03\x02\x01") is None


def test_ber_indefinite_lengths_are_followed_and_hostile_nesting_is_bounded() -> None:
    """Old Windows tools write PKCS#7 with BER indefinite lengths (``30 80 ... 00 00``)."""
    element = read_tlv(b"\x30\x80\x02\x01\x05\x00\x00", 0)
    assert element is not None
    assert (element.tag, element.start, element.end, element.after) == (0x30, 2, 5, 7)
    assert read_tlv(b"\x04\x80\x00\x00", 0) is None  # only constructed elements may do this
    deep = b"\x30\x80" * 1000 + b"\x00\x00" * 1000
    assert read_tlv(deep, 0) is None
    assert sniff(deep) is Shape.UNKNOWN


def test_object_identifiers_read_as_their_dotted_form() -> None:
    sha256_with_rsa = bytes.fromhex("06092a864886f70d01010b")
    element = read_tlv(sha256_with_rsa, 0)
    assert element is not None and oid(sha256_with_rsa, element) == "1.2.840.113549.1.1.11"
    integer = b"\x02\x01\x05"
    element = read_tlv(integer, 0)
    assert element is not None and oid(integer, element) == ""
