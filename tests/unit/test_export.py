"""Export: the guide's format rules, round-trips, refusals, and the openssl CLI as a peer."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from certgate.errors import ExportError, KeyMissingError, ValidationError
from certgate.pki.export import ExportFormat, ExportOptions, choose_format, export
from certgate.pki.keys import spki_der
from tests.support.pki import TestChain, make_chain

PASSPHRASE = b"S3cret-passphrase!"
FRIENDLY_NAME = "failover-node"
ROOT_CN = "Test Root"
INTERMEDIATE_CN = "Test Intermediate"
LEAF_CN = "appliance.example.test"

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


# --- a root -> intermediate -> leaf chain -------------------------------------------------


def _build_pki(kind: str) -> TestChain:
    return make_chain(LEAF_CN, kind)


@pytest.fixture(scope="module")
def rsa_pki() -> TestChain:
    return _build_pki("rsa")


@pytest.fixture(scope="module", params=["rsa", "p256"])
def pki(request: pytest.FixtureRequest) -> TestChain:
    """Both key kinds, for the tests where the private key is part of the export."""
    return _build_pki(request.param)


def _export(pki: TestChain, options: ExportOptions) -> bytes:
    """Export the leaf, its key and its chain with the given options; return the bytes."""
    return export(pki.leaf, pki.leaf_key, pki.chain, options, FRIENDLY_NAME).data


def _same_public_key(key: object, certificate: x509.Certificate) -> bool:
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return spki_der(key.public_key()) == spki_der(certificate.public_key())


def _pem_labels(data: bytes) -> list[str]:
    return re.findall(r"-----BEGIN ([A-Z0-9 ]+)-----", data.decode("ascii"))


# --- choose_format: the guide's rules -----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "chain_length", "expected"),
    [
        (ExportOptions(), 2, ExportFormat.DER),
        (ExportOptions(pem=True), 2, ExportFormat.PEM),
        (ExportOptions(include_certificate=False, include_private_key=True), 2, ExportFormat.PKCS8),
        (
            ExportOptions(include_certificate=False, include_private_key=True, pem=True),
            2,
            ExportFormat.PKCS8_PEM,
        ),
        (ExportOptions(include_chain=True), 2, ExportFormat.PKCS7),
        (ExportOptions(include_chain=True, pem=True), 2, ExportFormat.PKCS7_PEM),
        (ExportOptions(include_certificate=False, include_chain=True), 2, ExportFormat.PKCS7),
        # One certificate is not "multiple": the chain of a leaf under a root alone, or a
        # self-signed certificate "with its chain".
        (ExportOptions(include_certificate=False, include_chain=True), 1, ExportFormat.DER),
        (ExportOptions(include_chain=True), 0, ExportFormat.DER),
        (ExportOptions(include_private_key=True), 2, ExportFormat.PKCS12),
        (ExportOptions(include_private_key=True, include_chain=True), 2, ExportFormat.PKCS12),
        (ExportOptions(include_private_key=True, include_chain=True), 0, ExportFormat.PKCS12),
        (
            ExportOptions(include_private_key=True, include_chain=True, pem=True),
            2,
            ExportFormat.PEM_BUNDLE,
        ),
    ],
)
def test_choose_format_follows_the_guide(
    options: ExportOptions, chain_length: int, expected: ExportFormat
) -> None:
    assert choose_format(options, chain_length) is expected


@pytest.mark.parametrize(
    ("options", "chain_length"),
    [
        (ExportOptions(include_certificate=False), 2),
        (ExportOptions(include_certificate=False, include_chain=True), 0),
    ],
)
def test_choose_format_refuses_an_empty_export(options: ExportOptions, chain_length: int) -> None:
    with pytest.raises(ExportError, match="nothing to export"):
        choose_format(options, chain_length)


def test_choose_format_refuses_key_and_chain_without_the_certificate() -> None:
    options = ExportOptions(include_certificate=False, include_private_key=True, include_chain=True)
    with pytest.raises(ExportError, match="only together with the certificate"):
        choose_format(options, 2)


def test_export_uses_the_format_choose_format_announces(rsa_pki: TestChain) -> None:
    options = ExportOptions(include_private_key=True, include_chain=True, passphrase=PASSPHRASE)
    exported = export(rsa_pki.leaf, rsa_pki.leaf_key, rsa_pki.chain, options)
    assert exported.format is choose_format(options, len(rsa_pki.chain))
    assert (exported.media_type, exported.file_extension) == ("application/x-pkcs12", ".p12")


# --- round-trips with cryptography's loaders ----------------------------------------------


def test_certificate_alone_is_der(rsa_pki: TestChain) -> None:
    exported = export(rsa_pki.leaf, rsa_pki.leaf_key, rsa_pki.chain, ExportOptions())
    assert x509.load_der_x509_certificate(exported.data) == rsa_pki.leaf
    assert (exported.media_type, exported.file_extension) == ("application/pkix-cert", ".cer")


def test_certificate_alone_as_pem_holds_only_that_certificate(rsa_pki: TestChain) -> None:
    exported = export(rsa_pki.leaf, rsa_pki.leaf_key, rsa_pki.chain, ExportOptions(pem=True))
    assert x509.load_pem_x509_certificates(exported.data) == [rsa_pki.leaf]
    assert (exported.media_type, exported.file_extension) == ("application/x-pem-file", ".pem")


def test_certificate_without_key_never_carries_the_key(rsa_pki: TestChain) -> None:
    for options in (ExportOptions(), ExportOptions(pem=True), ExportOptions(include_chain=True)):
        data = export(rsa_pki.leaf, rsa_pki.leaf_key, rsa_pki.chain, options).data
        assert b"PRIVATE KEY" not in data
        with pytest.raises(ValueError):
            serialization.load_der_private_key(data, password=None)


def test_certificate_and_chain_is_pkcs7_with_every_certificate(rsa_pki: TestChain) -> None:
    exported = export(rsa_pki.leaf, None, rsa_pki.chain, ExportOptions(include_chain=True))
    certificates = pkcs7.load_der_pkcs7_certificates(exported.data)
    # PKCS#7 stores a DER SET OF, written sorted: the content counts, not the order.
    assert sorted(certificates, key=_subject) == sorted(
        [rsa_pki.leaf, *rsa_pki.chain], key=_subject
    )
    assert len(certificates) == 3
    assert (exported.media_type, exported.file_extension) == (
        "application/x-pkcs7-certificates",
        ".p7b",
    )


def test_chain_alone_is_pkcs7_without_the_leaf(rsa_pki: TestChain) -> None:
    options = ExportOptions(include_certificate=False, include_chain=True)
    data = export(rsa_pki.leaf, None, rsa_pki.chain, options).data
    assert {_subject(c) for c in pkcs7.load_der_pkcs7_certificates(data)} == {
        ROOT_CN,
        INTERMEDIATE_CN,
    }


def test_chain_alone_of_one_certificate_is_der(rsa_pki: TestChain) -> None:
    options = ExportOptions(include_certificate=False, include_chain=True)
    data = export(rsa_pki.intermediate, None, [rsa_pki.root], options).data
    assert x509.load_der_x509_certificate(data) == rsa_pki.root


def test_pkcs7_pem_round_trips(rsa_pki: TestChain) -> None:
    options = ExportOptions(include_chain=True, pem=True)
    data = export(rsa_pki.leaf, None, rsa_pki.chain, options).data
    assert _pem_labels(data) == ["PKCS7"]
    assert {_subject(c) for c in pkcs7.load_pem_pkcs7_certificates(data)} == {
        LEAF_CN,
        INTERMEDIATE_CN,
        ROOT_CN,
    }


def test_key_alone_is_pkcs8_that_opens_only_with_the_passphrase(pki: TestChain) -> None:
    exported = export(
        pki.leaf,
        pki.leaf_key,
        pki.chain,
        ExportOptions(include_certificate=False, include_private_key=True, passphrase=PASSPHRASE),
    )
    assert (exported.media_type, exported.file_extension) == ("application/pkcs8", ".p8")
    key = serialization.load_der_private_key(exported.data, PASSPHRASE)
    assert _same_public_key(key, pki.leaf)
    with pytest.raises(ValueError):
        serialization.load_der_private_key(exported.data, b"wrong passphrase")
    with pytest.raises(TypeError):  # "Password was not given but private key is encrypted"
        serialization.load_der_private_key(exported.data, None)


def test_key_alone_as_pem_is_an_encrypted_private_key(pki: TestChain) -> None:
    data = _export(
        pki,
        ExportOptions(
            include_certificate=False, include_private_key=True, passphrase=PASSPHRASE, pem=True
        ),
    )
    assert _pem_labels(data) == ["ENCRYPTED PRIVATE KEY"]
    assert _same_public_key(serialization.load_pem_private_key(data, PASSPHRASE), pki.leaf)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(data, b"wrong passphrase")


@pytest.mark.parametrize("legacy", [False, True], ids=["aes", "legacy-3des"])
def test_pkcs12_returns_key_certificate_chain_and_friendly_name(
    pki: TestChain, legacy: bool
) -> None:
    data = _export(
        pki,
        ExportOptions(
            include_private_key=True,
            include_chain=True,
            passphrase=PASSPHRASE,
            legacy_pkcs12=legacy,
        ),
    )
    loaded = pkcs12.load_pkcs12(data, PASSPHRASE)
    assert loaded.cert is not None
    assert loaded.cert.certificate == pki.leaf
    assert loaded.cert.friendly_name == FRIENDLY_NAME.encode()
    assert _same_public_key(loaded.key, pki.leaf)
    assert [c.certificate for c in loaded.additional_certs] == pki.chain
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(data, b"wrong passphrase")


def test_pkcs12_without_chain_holds_no_other_certificate(rsa_pki: TestChain) -> None:
    data = _export(rsa_pki, ExportOptions(include_private_key=True, passphrase=PASSPHRASE))
    loaded = pkcs12.load_pkcs12(data, PASSPHRASE)
    assert loaded.cert is not None and loaded.cert.certificate == rsa_pki.leaf
    assert loaded.additional_certs == []


def test_pkcs12_friendly_name_keeps_non_ascii(rsa_pki: TestChain) -> None:
    name = "Übergangsknoten Zürich"
    options = ExportOptions(include_private_key=True, passphrase=PASSPHRASE)
    data = export(rsa_pki.leaf, rsa_pki.leaf_key, [], options, friendly_name=name).data
    loaded = pkcs12.load_pkcs12(data, PASSPHRASE)
    assert loaded.cert is not None and loaded.cert.friendly_name == name.encode()


def test_pem_bundle_is_certificate_chain_then_encrypted_key(pki: TestChain) -> None:
    exported = export(
        pki.leaf,
        pki.leaf_key,
        pki.chain,
        ExportOptions(
            include_private_key=True, include_chain=True, passphrase=PASSPHRASE, pem=True
        ),
    )
    assert exported.format is ExportFormat.PEM_BUNDLE
    assert _pem_labels(exported.data) == [
        "CERTIFICATE",
        "CERTIFICATE",
        "CERTIFICATE",
        "ENCRYPTED PRIVATE KEY",
    ]
    assert x509.load_pem_x509_certificates(exported.data) == [pki.leaf, *pki.chain]
    key = serialization.load_pem_private_key(exported.data, PASSPHRASE)
    assert _same_public_key(key, pki.leaf)


# --- the private key never leaves unencrypted by accident --------------------------------


@pytest.mark.parametrize(
    "options",
    [
        ExportOptions(include_certificate=False, include_private_key=True),
        ExportOptions(include_certificate=False, include_private_key=True, pem=True),
        ExportOptions(include_private_key=True),
        ExportOptions(include_private_key=True, include_chain=True, pem=True),
        ExportOptions(include_private_key=True, passphrase=b""),
    ],
    ids=["pkcs8", "pkcs8-pem", "pkcs12", "pem-bundle", "empty-passphrase"],
)
def test_key_without_passphrase_or_opt_in_is_refused(
    rsa_pki: TestChain, options: ExportOptions
) -> None:
    with pytest.raises(ExportError) as caught:
        export(rsa_pki.leaf, rsa_pki.leaf_key, rsa_pki.chain, options)
    message = str(caught.value)
    assert "give a passphrase" in message
    assert "without encryption" in message


@pytest.mark.parametrize("passphrase", ["short", "seven77", "ééééééé"])
def test_a_passphrase_under_eight_characters_is_refused_by_name(
    pki: TestChain, passphrase: str
) -> None:
    options = ExportOptions(include_private_key=True, passphrase=passphrase.encode())
    with pytest.raises(ValidationError) as caught:
        export(pki.leaf, pki.leaf_key, pki.chain, options)
    assert caught.value.field == "passphrase"
    assert str(caught.value) == (
        "Passphrase: a passphrase needs at least 8 characters, or explicitly choose to "
        "export the private key without encryption"
    )
    eight = ExportOptions(include_private_key=True, passphrase="éééééééé".encode())
    assert export(pki.leaf, pki.leaf_key, pki.chain, eight)  # characters, not bytes


def test_opt_in_exports_pkcs8_without_encryption(pki: TestChain) -> None:
    data = _export(
        pki,
        ExportOptions(
            include_certificate=False, include_private_key=True, unencrypted_private_key=True
        ),
    )
    assert _same_public_key(serialization.load_der_private_key(data, None), pki.leaf)


def test_opt_in_with_empty_passphrase_exports_without_encryption(rsa_pki: TestChain) -> None:
    data = _export(
        rsa_pki,
        ExportOptions(include_private_key=True, passphrase=b"", unencrypted_private_key=True),
    )
    loaded = pkcs12.load_pkcs12(data, None)
    assert _same_public_key(loaded.key, rsa_pki.leaf)


def test_opt_in_pem_bundle_holds_a_plain_private_key(rsa_pki: TestChain) -> None:
    data = _export(
        rsa_pki, ExportOptions(include_private_key=True, pem=True, unencrypted_private_key=True)
    )
    assert _pem_labels(data) == ["CERTIFICATE", "PRIVATE KEY"]
    assert _same_public_key(serialization.load_pem_private_key(data, None), rsa_pki.leaf)


@pytest.mark.parametrize("include_certificate", [False, True], ids=["pkcs8", "pkcs12"])
def test_passphrase_wins_over_the_opt_in(rsa_pki: TestChain, include_certificate: bool) -> None:
    data = _export(
        rsa_pki,
        ExportOptions(
            include_certificate=include_certificate,
            include_private_key=True,
            passphrase=PASSPHRASE,
            unencrypted_private_key=True,
        ),
    )
    if include_certificate:
        with pytest.raises(ValueError):
            pkcs12.load_pkcs12(data, None)
        assert _same_public_key(pkcs12.load_pkcs12(data, PASSPHRASE).key, rsa_pki.leaf)
    else:
        with pytest.raises(TypeError):
            serialization.load_der_private_key(data, None)
        assert _same_public_key(serialization.load_der_private_key(data, PASSPHRASE), rsa_pki.leaf)


@pytest.mark.parametrize("include_certificate", [False, True])
def test_missing_private_key_is_reported(rsa_pki: TestChain, include_certificate: bool) -> None:
    options = ExportOptions(
        include_certificate=include_certificate, include_private_key=True, passphrase=PASSPHRASE
    )
    with pytest.raises(
        KeyMissingError, match="the private key of this certificate is not available"
    ):
        export(rsa_pki.leaf, None, rsa_pki.chain, options)


def test_a_key_of_another_certificate_is_refused(rsa_pki: TestChain) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    options = ExportOptions(include_private_key=True, passphrase=PASSPHRASE)
    with pytest.raises(ExportError, match="does not belong to this certificate") as caught:
        export(rsa_pki.leaf, other_key, rsa_pki.chain, options)
    assert PASSPHRASE.decode() not in str(caught.value)


def test_nothing_included_is_refused(rsa_pki: TestChain) -> None:
    with pytest.raises(ExportError, match="nothing to export"):
        export(
            rsa_pki.leaf, rsa_pki.leaf_key, rsa_pki.chain, ExportOptions(include_certificate=False)
        )


def test_options_repr_does_not_show_the_passphrase() -> None:
    options = ExportOptions(include_private_key=True, passphrase=PASSPHRASE)
    assert PASSPHRASE.decode() not in repr(options)
    assert "include_private_key=True" in repr(options)


# --- interoperability: the openssl CLI as an independent reader ---------------------------


def _subject(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the openssl CLI; stdin is closed so a password prompt can never hang a test."""
    result = subprocess.run(
        [OPENSSL, *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"openssl {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _listed_subjects(openssl_output: str) -> list[str]:
    """The common names of the ``subject=`` lines openssl prints, in its order."""
    return re.findall(r"^subject=.*?CN ?= ?(.+)$", openssl_output, flags=re.MULTILINE)


def _certificate_public_key(tmp_path: Path, certificate: x509.Certificate) -> str:
    path = _write(tmp_path, "leaf.pem", certificate.public_bytes(serialization.Encoding.PEM))
    return _openssl("x509", "-in", path, "-noout", "-pubkey").stdout


def _passin(passphrase: bytes) -> str:
    return "pass:" + passphrase.decode()


@pytest.mark.parametrize("pem", [False, True], ids=["der", "pem"])
def test_openssl_reads_the_certificate_with_the_same_fingerprint(
    rsa_pki: TestChain, tmp_path: Path, pem: bool
) -> None:
    exported = export(rsa_pki.leaf, None, rsa_pki.chain, ExportOptions(pem=pem))
    path = _write(tmp_path, "leaf" + exported.file_extension, exported.data)
    inform = "PEM" if pem else "DER"
    output = _openssl("x509", "-inform", inform, "-in", path, "-noout", "-fingerprint", "-sha256")
    expected = rsa_pki.leaf.fingerprint(hashes.SHA256()).hex(":").upper()
    assert output.stdout.strip() == f"sha256 Fingerprint={expected}"


@pytest.mark.parametrize("pem", [False, True], ids=["der", "pem"])
def test_openssl_lists_every_certificate_of_the_pkcs7(
    rsa_pki: TestChain, tmp_path: Path, pem: bool
) -> None:
    exported = export(rsa_pki.leaf, None, rsa_pki.chain, ExportOptions(include_chain=True, pem=pem))
    path = _write(tmp_path, "chain.p7b", exported.data)
    inform = "PEM" if pem else "DER"
    output = _openssl("pkcs7", "-inform", inform, "-in", path, "-print_certs", "-noout").stdout
    # Sorted by the DER SET OF rule, not in chain order (see export._encode_certificates).
    assert sorted(_listed_subjects(output)) == sorted([LEAF_CN, INTERMEDIATE_CN, ROOT_CN])


@pytest.mark.parametrize(
    ("legacy", "expected_algorithms", "refused_algorithms"),
    [
        (False, ["MAC: sha256", "PBKDF2", "AES-256-CBC"], ["3DES", "TripleDES", "RC2"]),
        (True, ["MAC: sha1", "pbeWithSHA1And3-KeyTripleDES-CBC"], ["AES", "RC2"]),
    ],
    ids=["aes", "legacy-3des"],
)
def test_openssl3_reads_pkcs12_without_legacy_provider(
    rsa_pki: TestChain,
    tmp_path: Path,
    legacy: bool,
    expected_algorithms: list[str],
    refused_algorithms: list[str],
) -> None:
    data = _export(
        rsa_pki,
        ExportOptions(
            include_private_key=True,
            include_chain=True,
            passphrase=PASSPHRASE,
            legacy_pkcs12=legacy,
        ),
    )
    path = _write(tmp_path, "server.p12", data)
    result = _openssl("pkcs12", "-in", path, "-info", "-nokeys", "-passin", _passin(PASSPHRASE))
    assert _listed_subjects(result.stdout) == [LEAF_CN, INTERMEDIATE_CN, ROOT_CN]
    assert f"friendlyName: {FRIENDLY_NAME}" in result.stdout
    for algorithm in expected_algorithms:
        assert algorithm in result.stderr
    for algorithm in refused_algorithms:
        assert algorithm not in result.stderr


@pytest.mark.parametrize("legacy", [False, True], ids=["aes", "legacy-3des"])
def test_openssl_extracts_the_key_that_matches_the_certificate(
    pki: TestChain, tmp_path: Path, legacy: bool
) -> None:
    data = _export(
        pki, ExportOptions(include_private_key=True, passphrase=PASSPHRASE, legacy_pkcs12=legacy)
    )
    p12 = _write(tmp_path, "server.p12", data)
    key_pem = tmp_path / "key.pem"
    _openssl(
        "pkcs12", "-in", p12, "-nodes", "-nocerts", "-passin", _passin(PASSPHRASE), "-out", key_pem
    )
    public_key = _openssl("pkey", "-in", key_pem, "-pubout").stdout
    assert public_key == _certificate_public_key(tmp_path, pki.leaf)


@pytest.mark.parametrize("legacy", [False, True], ids=["aes", "legacy-3des"])
def test_openssl_refuses_pkcs12_with_a_wrong_passphrase(
    rsa_pki: TestChain, tmp_path: Path, legacy: bool
) -> None:
    data = _export(
        rsa_pki,
        ExportOptions(include_private_key=True, passphrase=PASSPHRASE, legacy_pkcs12=legacy),
    )
    p12 = _write(tmp_path, "server.p12", data)
    for wrong in (b"wrong passphrase", b""):
        result = _openssl("pkcs12", "-in", p12, "-nodes", "-passin", _passin(wrong), check=False)
        assert result.returncode != 0
        assert "PRIVATE KEY" not in result.stdout


def test_openssl_reads_unencrypted_pkcs12_after_opt_in(rsa_pki: TestChain, tmp_path: Path) -> None:
    data = _export(rsa_pki, ExportOptions(include_private_key=True, unencrypted_private_key=True))
    p12 = _write(tmp_path, "server.p12", data)
    output = _openssl("pkcs12", "-in", p12, "-nodes", "-nocerts", "-passin", "pass:").stdout
    key_pem = _write(tmp_path, "key.pem", output.encode())
    public_key = _openssl("pkey", "-in", key_pem, "-pubout").stdout
    assert public_key == _certificate_public_key(tmp_path, rsa_pki.leaf)


@pytest.mark.parametrize("pem", [False, True], ids=["der", "pem"])
def test_openssl_opens_pkcs8_only_with_the_passphrase(
    pki: TestChain, tmp_path: Path, pem: bool
) -> None:
    exported = export(
        pki.leaf,
        pki.leaf_key,
        pki.chain,
        ExportOptions(
            include_certificate=False, include_private_key=True, passphrase=PASSPHRASE, pem=pem
        ),
    )
    path = _write(tmp_path, "server" + exported.file_extension, exported.data)
    inform = "PEM" if pem else "DER"
    opened = _openssl(
        "pkey", "-inform", inform, "-in", path, "-passin", _passin(PASSPHRASE), "-pubout"
    )
    assert opened.stdout == _certificate_public_key(tmp_path, pki.leaf)
    for wrong in (b"", b"wrong passphrase"):
        refused = _openssl(
            "pkey", "-inform", inform, "-in", path, "-passin", _passin(wrong), check=False
        )
        assert refused.returncode != 0
        assert "PUBLIC KEY" not in refused.stdout


def test_openssl_sees_pkcs8_encrypted_with_pbes2_aes256(rsa_pki: TestChain, tmp_path: Path) -> None:
    data = _export(
        rsa_pki,
        ExportOptions(include_certificate=False, include_private_key=True, passphrase=PASSPHRASE),
    )
    path = _write(tmp_path, "server.p8", data)
    structure = _openssl("asn1parse", "-inform", "DER", "-in", path).stdout
    for algorithm in (":PBES2", ":PBKDF2", ":hmacWithSHA256", ":aes-256-cbc"):
        assert algorithm in structure


def test_openssl_reads_the_pem_bundle(pki: TestChain, tmp_path: Path) -> None:
    data = _export(
        pki,
        ExportOptions(
            include_private_key=True, include_chain=True, passphrase=PASSPHRASE, pem=True
        ),
    )
    bundle = _write(tmp_path, "server.pem", data)
    fingerprint = _openssl("x509", "-in", bundle, "-noout", "-fingerprint", "-sha256").stdout
    assert pki.leaf.fingerprint(hashes.SHA256()).hex(":").upper() in fingerprint
    as_pkcs7 = _openssl("crl2pkcs7", "-nocrl", "-certfile", bundle).stdout
    listed = _openssl(
        "pkcs7", "-in", _write(tmp_path, "bundle.p7b", as_pkcs7.encode()), "-print_certs", "-noout"
    ).stdout
    assert _listed_subjects(listed) == [LEAF_CN, INTERMEDIATE_CN, ROOT_CN]
    public_key = _openssl("pkey", "-in", bundle, "-passin", _passin(PASSPHRASE), "-pubout").stdout
    assert public_key == _certificate_public_key(tmp_path, pki.leaf)
    refused = _openssl("pkey", "-in", bundle, "-passin", "pass:", "-pubout", check=False)
    assert refused.returncode != 0
