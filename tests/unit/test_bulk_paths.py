"""The shortcuts a large import takes must give what the general paths give.

A PEM file of nothing but certificates is parsed in one call (else block by block), an issuer
name is read once per encoding, the signed part and the fingerprint come from the DER already
encoded, and names are hashed from per-attribute JSON: each is checked here against the path
it stands in for.
"""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from certgate.pki import dnames, pem, readers
from certgate.pki.certinfo import read_certificate
from certgate.pki.der import certificate_parts
from certgate.pki.loader import LoadedFile, load_file
from tests.support.pki import TestChain, make_chain, negative_serial_pem


@pytest.fixture(scope="module")
def chains() -> list[TestChain]:
    return [make_chain("one.example"), make_chain("two.example", kind="rsa")]


def _bundle(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(certificate.public_bytes(Encoding.PEM) for certificate in certificates)


def _block_by_block(data: bytes, monkeypatch: pytest.MonkeyPatch) -> LoadedFile:
    with monkeypatch.context() as patch:
        patch.setattr(pem, "plain_certificate_count", lambda text: 0)
        return load_file(data)


def test_plain_bundle_loads_as_block_by_block_and_keeps_the_der(
    chains: list[TestChain], monkeypatch: pytest.MonkeyPatch
) -> None:
    certificates = [c.leaf for c in chains] + [c.intermediate for c in chains] + [chains[0].root]
    data = _bundle(certificates)
    loaded = load_file(data)
    assert loaded == _block_by_block(data, monkeypatch)
    assert loaded.certificates == tuple(certificates)
    assert loaded.certificate_ders == tuple(c.public_bytes(Encoding.DER) for c in certificates)


def test_an_odd_certificate_sends_the_whole_bundle_block_by_block(
    chains: list[TestChain], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _bundle([chains[1].leaf]) + negative_serial_pem("odd.example")
    loaded = load_file(data)
    assert loaded.certificate_ders == ()
    assert loaded == _block_by_block(data, monkeypatch)
    assert any("serial number is negative" in note for note in loaded.warnings)


def test_other_blocks_or_labels_take_the_general_path(chains: list[TestChain]) -> None:
    other = chains[0].leaf.public_bytes(Encoding.PEM).replace(b"CERTIFICATE", b"X509 CERTIFICATE")
    assert readers.load_plain_certificates(_bundle([chains[0].leaf]) + other) is None
    assert readers.load_plain_certificates(b"no blocks") is None


def test_certificate_parts_are_what_cryptography_encodes(chains: list[TestChain]) -> None:
    for chain in chains:
        for certificate in (chain.root, chain.intermediate, chain.leaf):
            parts = certificate_parts(certificate.public_bytes(Encoding.DER))
            assert parts == (
                certificate.tbs_certificate_bytes,
                certificate.issuer.public_bytes(),
                certificate.subject.public_bytes(),
            )
    assert certificate_parts(b"") is None
    assert certificate_parts(b"\x30\x03\x02\x01\x01") is None
    assert certificate_parts(chains[0].leaf.public_bytes(Encoding.DER)[:60]) is None


def test_reading_with_the_der_and_no_warnings_reads_the_same(chains: list[TestChain]) -> None:
    for chain in chains:
        for certificate in (chain.root, chain.intermediate, chain.leaf):
            der = certificate.public_bytes(Encoding.DER)
            expected = read_certificate(certificate)
            assert read_certificate(certificate, der, warning_free=True) == expected
            assert expected.fingerprint_sha256 == certificate.fingerprint(hashes.SHA256()).hex()


_NAMES = [
    x509.Name([]),
    x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.COMMON_NAME, 'a,b+c="d" é  \\ / 日本 '),
        ]
    ),
    x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "b"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "a"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "  Big   CA "),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]),
        ]
    ),
    x509.Name(
        [
            x509.NameAttribute(
                NameOID.X500_UNIQUE_IDENTIFIER, b"\x01\x02", _type=_ASN1Type.BitString
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, "#first"),
            x509.NameAttribute(NameOID.COMMON_NAME, "second"),
        ]
    ),
]


@pytest.mark.parametrize("name", _NAMES)
def test_names_read_as_their_definitions_say(name: x509.Name) -> None:
    canonical = [
        sorted(
            [attribute.oid.dotted_string, *dnames._canonical_value(attribute.value)]
            for attribute in rdn
        )
        for rdn in name.rdns
    ]
    expected_hash = hashlib.sha256(json.dumps(canonical).encode()).hexdigest()
    expected_text = ", ".join(rdn.rfc4514_string() for rdn in reversed(name.rdns))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fields = dnames.read_name(name)
    assert fields.hash == dnames.name_hash(name) == expected_hash
    assert fields.text == dnames.format_name(name) == expected_text
    assert fields.common_name == dnames.common_name(name)


def test_a_large_bundle_is_parsed_in_bounded_chunks_with_nothing_lost(
    chains: list[TestChain],
) -> None:
    """One cryptography call holds the GIL while it parses: 25,000 certificates in one call
    stalled every other request for ~0.5 s. The chunks together are the whole text."""
    certificates = [chains[0].leaf, chains[0].intermediate, chains[1].leaf] * 700
    text = _bundle(certificates)
    chunks = pem.certificate_chunks(text, 1000)
    assert [chunk.count(b"BEGIN CERTIFICATE") for chunk in chunks] == [1000, 1000, 100]
    assert b"".join(chunks) == text
    loaded = readers.load_plain_certificates(text)
    assert loaded is not None
    assert [certificate for certificate, _ in loaded] == certificates
