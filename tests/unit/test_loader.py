"""The Import feature's file reader: every format a CA may send, and every way a file can be wrong.

Three layers: bytes built with pyca/cryptography (one test per format and per error), files
written by the openssl CLI (what admins really upload), and the cryptography-vectors corpus
(hundreds of odd files that must never produce anything but a CertgateError).
"""

from __future__ import annotations

import base64
import datetime
import random
import subprocess
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certgate.errors import (
    CertgateError,
    CorruptDataError,
    FileTooLargeError,
    ImportFormatError,
    NotACertificateError,
    PasswordRequiredError,
    UnsupportedKeyError,
    WrongPasswordError,
)
from certgate.pki.keys import PrivateKey, spki_der
from certgate.pki.loader import MAX_FILE_SIZE, LoadedFile, load_file
from tests.support.pki import issue, name

PASSWORD = b"correct horse"
NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


# --- building blocks --------------------------------------------------------------------------


def make_certificate(
    key: PrivateKey, common_name: str, serial: int | None = None
) -> x509.Certificate:
    """Self-signed, valid from NOW for 30 days: the same bytes' dates every run."""
    subject = name(common_name)
    return issue(
        subject, key.public_key(), subject, key, ca=False, not_before=NOW, days=30, serial=serial
    )


def make_request(key: PrivateKey, common_name: str) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(name(common_name))
    return builder.sign(key, hashes.SHA256())


def make_crl(key: ec.EllipticCurvePrivateKey) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name("crl issuer"))
        .last_update(NOW)
        .next_update(NOW + datetime.timedelta(days=7))
    )
    return builder.sign(key, hashes.SHA256())


def pkcs8(
    key: PrivateKeyTypes, encoding: serialization.Encoding, password: bytes | None = None
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, serialization.PrivateFormat.PKCS8, encryption)


def traditional(
    key: PrivateKeyTypes, encoding: serialization.Encoding, password: bytes | None = None
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, serialization.PrivateFormat.TraditionalOpenSSL, encryption)


HasPublicKey = PrivateKey | x509.Certificate | x509.CertificateSigningRequest


def same_key(a: HasPublicKey, b: HasPublicKey) -> bool:
    """True when both hold the same key pair, compared as DER SubjectPublicKeyInfo."""
    return spki_der(a.public_key()) == spki_der(b.public_key())


def with_tbs_bytes(certificate_der: bytes, old: bytes, new: bytes) -> bytes:
    """Patch a certificate's bytes; the signature breaks, but loading never checks it."""
    assert certificate_der.count(old) == 1, "the patch target must be unambiguous"
    return certificate_der.replace(old, new)


# A certificate built with serial_number(1) starts its TBS with: [0] version 3, INTEGER 1.
VERSION_AND_SERIAL_1 = b"\xa0\x03\x02\x01\x02\x02\x01\x01"


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_cert(ec_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return make_certificate(ec_key, "ec.example")


@pytest.fixture(scope="module")
def rsa_cert(rsa_key: rsa.RSAPrivateKey) -> x509.Certificate:
    return make_certificate(rsa_key, "rsa.example")


@pytest.fixture(scope="module")
def serial_one_cert(ec_key: ec.EllipticCurvePrivateKey) -> bytes:
    return make_certificate(ec_key, "serial-one.example", serial=1).public_bytes(DER)


def raised(data: bytes, password: bytes | None = None) -> CertgateError:
    with pytest.raises(CertgateError) as caught:
        load_file(data, password)
    return caught.value


# --- formats built with cryptography ----------------------------------------------------------


def test_der_certificate(ec_cert: x509.Certificate) -> None:
    loaded = load_file(ec_cert.public_bytes(DER))
    assert loaded == LoadedFile(format="DER X.509 certificate", certificates=(ec_cert,))


def test_der_certificate_with_trailing_newline_loads(ec_cert: x509.Certificate) -> None:
    assert load_file(ec_cert.public_bytes(DER) + b"\r\n\x00").certificates == (ec_cert,)


def certificate_block(content: bytes) -> bytes:
    return (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(content)
        + b"-----END CERTIFICATE-----\n"
    )


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda der: der + b"more bytes", "other data follows its end"),
        (lambda der: b"\x30\x80" + der[4:] + b"\x00\x00", "a length is not in DER form"),
        (lambda der: certificate_block(der[:4] + b"\x31" + der[5:]), "its structure is malformed"),
    ],
)
def test_der_certificate_with_trailing_data_or_ber_lengths_says_so_in_words(
    rsa_cert: x509.Certificate, damage: Callable[[bytes], bytes], reason: str
) -> None:
    """cryptography's own words were 'ParseError { kind: ExtraData }' and the like."""
    with pytest.raises(CorruptDataError) as raised:
        load_file(damage(rsa_cert.public_bytes(DER)))
    assert str(raised.value).startswith(f"a certificate in the file cannot be read: {reason}")
    assert "ParseError" not in str(raised.value) and "{" not in str(raised.value)


def test_pem_with_text_around_crlf_and_bom_keeps_file_order(
    ec_cert: x509.Certificate, rsa_cert: x509.Certificate
) -> None:
    text = (
        b"\xef\xbb\xbf  \nBag Attributes\n    friendlyName: server\nsubject=CN=ec.example\n"
        + ec_cert.public_bytes(PEM)
        + b"\nissuer text between blocks\n"
        + rsa_cert.public_bytes(PEM)
        + b"trailing notes\n"
    ).replace(b"\n", b"\r\n")
    loaded = load_file(text)
    assert loaded.format == "PEM"
    assert loaded.certificates == (ec_cert, rsa_cert)
    assert loaded.warnings == ()


def test_pem_saved_as_utf16_by_notepad(ec_cert: x509.Certificate) -> None:
    data = ec_cert.public_bytes(PEM).decode().encode("utf-16")  # with its byte-order mark
    assert load_file(data).certificates == (ec_cert,)


@pytest.mark.parametrize(
    ("encoding", "expected_format"), [(DER, "PKCS#7 (DER)"), (PEM, "PKCS#7 (PEM)")]
)
def test_pkcs7_bundle(
    encoding: serialization.Encoding,
    expected_format: str,
    ec_cert: x509.Certificate,
    rsa_cert: x509.Certificate,
) -> None:
    loaded = load_file(pkcs7.serialize_certificates([ec_cert, rsa_cert], encoding))
    assert loaded.format == expected_format
    assert set(loaded.certificates) == {ec_cert, rsa_cert}


def test_pkcs7_in_a_block_labelled_certificate(ec_cert: x509.Certificate) -> None:
    data = pkcs7.serialize_certificates([ec_cert], PEM).replace(b"PKCS7", b"CERTIFICATE")
    assert load_file(data).certificates == (ec_cert,)


@pytest.mark.parametrize(
    ("encoding", "password", "expected_format"),
    [
        (DER, None, "PKCS#8 private key (DER)"),
        (PEM, None, "PEM"),
        (DER, PASSWORD, "encrypted PKCS#8 private key (DER)"),
        (PEM, PASSWORD, "PEM"),
    ],
)
def test_pkcs8_private_key(
    ec_key: ec.EllipticCurvePrivateKey,
    encoding: serialization.Encoding,
    password: bytes | None,
    expected_format: str,
) -> None:
    loaded = load_file(pkcs8(ec_key, encoding, password), password)
    assert loaded.format == expected_format
    assert len(loaded.private_keys) == 1
    assert same_key(loaded.private_keys[0], ec_key)


@pytest.mark.parametrize("key_fixture", ["ec_key", "rsa_key"])
@pytest.mark.parametrize(
    ("encoding", "password", "expected_format"),
    [(DER, None, "OpenSSL legacy private key (DER)"), (PEM, None, "PEM"), (PEM, PASSWORD, "PEM")],
)
def test_traditional_openssl_key(
    request: pytest.FixtureRequest,
    key_fixture: str,
    encoding: serialization.Encoding,
    password: bytes | None,
    expected_format: str,
) -> None:
    key = request.getfixturevalue(key_fixture)
    data = traditional(key, encoding, password)
    if password:
        assert b"Proc-Type: 4,ENCRYPTED" in data
    loaded = load_file(data, password)
    assert loaded.format == expected_format
    assert same_key(loaded.private_keys[0], key)


def test_password_given_for_a_plain_key_is_not_needed(ec_key: ec.EllipticCurvePrivateKey) -> None:
    loaded = load_file(pkcs8(ec_key, PEM), PASSWORD)
    assert same_key(loaded.private_keys[0], ec_key)


LEGACY_3DES = (
    serialization.PrivateFormat.PKCS12.encryption_builder()
    .kdf_rounds(2048)
    .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
    .hmac_hash(hashes.SHA1())
    .build(PASSWORD)
)


@pytest.mark.parametrize(
    ("encryption", "password"),
    [
        (serialization.BestAvailableEncryption(PASSWORD), PASSWORD),
        (LEGACY_3DES, PASSWORD),
        (serialization.NoEncryption(), None),
    ],
    ids=["aes256", "3des-sha1", "no-password"],
)
def test_pkcs12_key_certificate_and_chain(
    ec_key: ec.EllipticCurvePrivateKey,
    ec_cert: x509.Certificate,
    rsa_cert: x509.Certificate,
    encryption: serialization.KeySerializationEncryption,
    password: bytes | None,
) -> None:
    data = pkcs12.serialize_key_and_certificates(b"server", ec_key, ec_cert, [rsa_cert], encryption)
    loaded = load_file(data, password)
    assert loaded.format == "PKCS#12"
    assert loaded.certificates == (ec_cert, rsa_cert)
    assert same_key(loaded.private_keys[0], ec_cert)


def test_pkcs12_without_password_but_one_given_loads_with_a_note(
    ec_key: ec.EllipticCurvePrivateKey, ec_cert: x509.Certificate
) -> None:
    data = pkcs12.serialize_key_and_certificates(
        None, ec_key, ec_cert, None, serialization.NoEncryption()
    )
    loaded = load_file(data, b"typed anyway")
    assert loaded.certificates == (ec_cert,)
    assert any("password" in note for note in loaded.warnings)


@pytest.mark.parametrize("label", [b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"])
def test_pem_request_labels(ec_key: ec.EllipticCurvePrivateKey, label: bytes) -> None:
    csr = make_request(ec_key, "request.example")
    data = csr.public_bytes(PEM).replace(b"CERTIFICATE REQUEST", label)
    loaded = load_file(data)
    assert loaded.requests == (csr,)
    assert loaded.certificates == () and loaded.private_keys == ()


def test_der_request(ec_key: ec.EllipticCurvePrivateKey) -> None:
    csr = make_request(ec_key, "request.example")
    assert load_file(csr.public_bytes(DER)) == LoadedFile(
        format="certificate request (DER)", requests=(csr,)
    )


def test_pem_mixing_certificate_encrypted_key_and_request(
    ec_key: ec.EllipticCurvePrivateKey, ec_cert: x509.Certificate
) -> None:
    csr = make_request(ec_key, "request.example")
    data = ec_cert.public_bytes(PEM) + traditional(ec_key, PEM, PASSWORD) + csr.public_bytes(PEM)
    loaded = load_file(data, PASSWORD)
    assert (len(loaded.certificates), len(loaded.private_keys), len(loaded.requests)) == (1, 1, 1)
    assert same_key(loaded.private_keys[0], loaded.certificates[0])


# --- unusual but acceptable certificates ------------------------------------------------------


@pytest.mark.parametrize(("serial_byte", "word"), [(0x00, "zero"), (0xFF, "negative")])
def test_non_positive_serial_loads_with_a_warning(
    serial_one_cert: bytes, serial_byte: int, word: str
) -> None:
    data = with_tbs_bytes(
        serial_one_cert, VERSION_AND_SERIAL_1, VERSION_AND_SERIAL_1[:-1] + bytes([serial_byte])
    )
    loaded = load_file(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography warns again on every read of the serial
        assert loaded.certificates[0].serial_number == (0 if word == "zero" else -1)
    assert len(loaded.warnings) == 1
    assert f"serial number is {word}" in loaded.warnings[0]
    assert "serial-one.example" in loaded.warnings[0]


def test_library_warnings_never_escape_even_when_warnings_are_errors(
    serial_one_cert: bytes,
) -> None:
    data = with_tbs_bytes(
        serial_one_cert, VERSION_AND_SERIAL_1, VERSION_AND_SERIAL_1[:-1] + b"\x00"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as under `python -W error` or a strict test run
        loaded = load_file(data)
    assert loaded.warnings


def test_duplicate_extension_loads_with_a_warning() -> None:
    data = cryptography_vectors.open_vector_file(
        "x509/custom/two_basic_constraints.pem", "rb"
    ).read()
    loaded = load_file(data)
    assert len(loaded.certificates) == 1
    assert any("extensions cannot be read" in note for note in loaded.warnings)


def test_unparseable_certificate_is_corrupt_with_the_reason(serial_one_cert: bytes) -> None:
    data = with_tbs_bytes(serial_one_cert, b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x07")
    error = raised(data)
    assert isinstance(error, CorruptDataError)
    assert "7 is not a valid X509 version" in str(error)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"  \r\n\t", b"\xef\xbb\xbf\n"], ids=["empty", "blank", "bom"]
)
def test_empty_file(data: bytes) -> None:
    error = raised(data)
    assert type(error) is ImportFormatError
    assert str(error) == "the file is empty"


def test_size_is_checked_before_parsing(ec_cert: x509.Certificate) -> None:
    pem = ec_cert.public_bytes(PEM)
    assert load_file(pem + b"#" * (MAX_FILE_SIZE - len(pem))).certificates  # at the limit: fine
    error = raised(pem + b"#" * (MAX_FILE_SIZE - len(pem) + 1))
    assert isinstance(error, FileTooLargeError)
    assert f"{MAX_FILE_SIZE // (1024 * 1024)} MiB" in str(error)


@pytest.mark.parametrize(
    "data",
    [
        random.Random(7).randbytes(3000),
        b"Hello,\nplease find attached our certificate.\n",
        b"\x30\x06\x02\x01\x01\x02\x01\x01 and then anything",  # looks like DER for 8 bytes
    ],
    ids=["random-bytes", "plain-text", "der-prefix-then-junk"],
)
def test_unrecognised_content_is_a_generic_format_error(data: bytes) -> None:
    error = raised(data)
    assert type(error) is ImportFormatError
    assert str(error) == "not a recognised certificate, key or request format"


def test_unknown_pem_label_is_named_in_the_generic_error() -> None:
    error = raised(b"-----BEGIN SOMETHING ELSE-----\nAAAA\n-----END SOMETHING ELSE-----\n")
    assert type(error) is ImportFormatError
    assert "SOMETHING ELSE" in str(error)


@pytest.mark.parametrize("encoding", [PEM, DER])
def test_encrypted_pkcs8_without_password(
    ec_key: ec.EllipticCurvePrivateKey, encoding: serialization.Encoding
) -> None:
    assert isinstance(raised(pkcs8(ec_key, encoding, PASSWORD)), PasswordRequiredError)


@pytest.mark.parametrize("encoding", [PEM, DER])
def test_encrypted_pkcs8_with_wrong_password(
    ec_key: ec.EllipticCurvePrivateKey, encoding: serialization.Encoding
) -> None:
    assert isinstance(raised(pkcs8(ec_key, encoding, PASSWORD), b"wrong"), WrongPasswordError)


# Encrypted with "right password"; "wrong" decrypts it to garbage whose CBC padding happens to
# be valid (found by search: about 1 wrong password in 256 does this), so cryptography reports
# undecodable key data instead of a wrong password.
WRONG_PASSWORD_VALID_PADDING = b"""-----BEGIN ENCRYPTED PRIVATE KEY-----
MIH0MF8GCSqGSIb3DQEFDTBSMDEGCSqGSIb3DQEFDDAkBBCfW24YLGBS/ZqPP4XD
FW/AAgIIADAMBggqhkiG9w0CCQUAMB0GCWCGSAFlAwQBKgQQ4okErKJ/UFFPHPau
bm130ASBkBAIh90cJjrcYVeJGxwKvZTzwufUY/AJhpYLfqbvCHSb8Ji+EHH4fxt2
Wf5jKtVgU+T//D/4jmXmo4pSwJSxSSzmGiRoyrMoXbjswIPlZlZ1YNdr20N/R6mL
jtRnW3stoisJjBCCQw+RNgbhGQxGo1GrAwIcV01tb4jZHA8jqF7nFYEL7734h3oa
FlYRvpT9bw==
-----END ENCRYPTED PRIVATE KEY-----
"""


def test_wrong_password_that_decrypts_to_garbage_is_a_wrong_password() -> None:
    error = raised(WRONG_PASSWORD_VALID_PADDING, b"wrong")
    assert isinstance(error, WrongPasswordError)
    assert "password does not open the private key" in str(error)
    assert load_file(WRONG_PASSWORD_VALID_PADDING, b"right password").private_keys


def test_encrypted_traditional_key_password_errors(rsa_key: rsa.RSAPrivateKey) -> None:
    data = traditional(rsa_key, PEM, PASSWORD)
    assert isinstance(raised(data), PasswordRequiredError)
    assert isinstance(raised(data, b""), PasswordRequiredError)  # an empty password is none
    assert isinstance(raised(data, b"wrong"), WrongPasswordError)


@pytest.fixture(scope="module")
def protected_pkcs12(ec_key: ec.EllipticCurvePrivateKey, ec_cert: x509.Certificate) -> bytes:
    encryption = serialization.BestAvailableEncryption(PASSWORD)
    return pkcs12.serialize_key_and_certificates(b"server", ec_key, ec_cert, None, encryption)


def test_pkcs12_password_errors(protected_pkcs12: bytes) -> None:
    assert isinstance(raised(protected_pkcs12), PasswordRequiredError)
    assert isinstance(raised(protected_pkcs12, b"wrong"), WrongPasswordError)
    assert isinstance(raised(protected_pkcs12, b"\xff\xfe not utf-8"), WrongPasswordError)


@pytest.mark.parametrize("password", [None, PASSWORD])
def test_truncated_pkcs12_is_corrupt_not_a_password_problem(
    protected_pkcs12: bytes, password: bytes | None
) -> None:
    assert isinstance(
        raised(protected_pkcs12[: len(protected_pkcs12) // 2], password), CorruptDataError
    )


def test_messages_never_contain_key_material(ec_key: ec.EllipticCurvePrivateKey) -> None:
    plain_der = pkcs8(ec_key, DER)
    cut_short = base64.encodebytes(plain_der[:-20])  # a well-framed block holding a damaged key
    damaged = b"-----BEGIN PRIVATE KEY-----\n" + cut_short + b"-----END PRIVATE KEY-----\n"
    encrypted = pkcs8(ec_key, PEM, PASSWORD)
    damaged_error, wrong_password_error = raised(damaged), raised(encrypted, b"wrong")
    assert isinstance(damaged_error, CorruptDataError)
    assert isinstance(wrong_password_error, WrongPasswordError)
    key_texts = [
        base64.b64encode(plain_der).decode(),
        b"".join(encrypted.splitlines()[1:-1]).decode(),
        format(ec_key.private_numbers().private_value, "x"),
    ]
    for message in (str(damaged_error), str(wrong_password_error)):
        for text in key_texts:
            assert not any(text[i : i + 12] in message for i in range(len(text) - 12))


def test_pem_with_broken_base64_is_corrupt(ec_cert: x509.Certificate) -> None:
    data = ec_cert.public_bytes(PEM).replace(b"MII", b"M*I", 1)
    error = raised(data)
    assert isinstance(error, CorruptDataError)
    assert "base64" in str(error)


@pytest.mark.parametrize("cut", ["end", "start"])
def test_pem_cut_short_is_corrupt(ec_cert: x509.Certificate, cut: str) -> None:
    pem = ec_cert.public_bytes(PEM)
    data = pem[: len(pem) // 2] if cut == "end" else pem[len(pem) // 2 :]
    error = raised(data)
    assert isinstance(error, CorruptDataError)
    assert ("END line" if cut == "end" else "BEGIN line") in str(error)


def test_der_cut_short_is_corrupt(rsa_cert: x509.Certificate) -> None:
    data = rsa_cert.public_bytes(DER)
    assert isinstance(raised(data[: len(data) // 2]), CorruptDataError)


def test_der_followed_by_garbage_is_corrupt(ec_cert: x509.Certificate) -> None:
    assert isinstance(raised(ec_cert.public_bytes(DER) + b"garbage"), CorruptDataError)


def test_damaged_key_inside_a_certificate_bundle_is_not_silently_dropped(
    ec_cert: x509.Certificate,
) -> None:
    data = (
        ec_cert.public_bytes(PEM)
        + b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    assert isinstance(raised(data), CorruptDataError)


def test_dsa_key_is_unsupported() -> None:
    key = dsa.generate_private_key(key_size=1024)
    for data in (pkcs8(key, PEM), pkcs8(key, DER), traditional(key, PEM)):
        error = raised(data)
        assert isinstance(error, UnsupportedKeyError)
        assert "DSA" in str(error)


def test_x25519_key_is_unsupported() -> None:
    assert isinstance(raised(pkcs8(x25519.X25519PrivateKey.generate(), PEM)), UnsupportedKeyError)


# --- objects that are not certificates --------------------------------------------------------


@pytest.mark.parametrize("encoding", [PEM, DER])
def test_crl_is_named(ec_key: ec.EllipticCurvePrivateKey, encoding: serialization.Encoding) -> None:
    error = raised(make_crl(ec_key).public_bytes(encoding))
    assert isinstance(error, NotACertificateError)
    assert (
        str(error)
        == "this is a certificate revocation list (CRL), not a certificate or private key"
    )


@pytest.mark.parametrize(
    "public_format",
    [serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1],
)
@pytest.mark.parametrize("encoding", [PEM, DER])
def test_public_key_is_named(
    rsa_key: rsa.RSAPrivateKey,
    encoding: serialization.Encoding,
    public_format: serialization.PublicFormat,
) -> None:
    error = raised(rsa_key.public_key().public_bytes(encoding, public_format))
    assert isinstance(error, NotACertificateError)
    assert "public key" in str(error)


RFC3526_GROUP14 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
    "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
    "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
    "955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)


def test_parameters_are_named() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FFDH is deprecated; we only need its file format
        dh_parameters = dh.DHParameterNumbers(RFC3526_GROUP14, 2).parameters()
    dh_pem = dh_parameters.parameter_bytes(PEM, serialization.ParameterFormat.PKCS3)
    p256_oid_der = bytes.fromhex(
        "06082a8648ce3d030107"
    )  # what `openssl ecparam -outform DER` writes
    for data, words in [
        (dh_pem, "Diffie-Hellman (DH) parameters"),
        (p256_oid_der, "EC parameters"),
    ]:
        error = raised(data)
        assert isinstance(error, NotACertificateError)
        assert words in str(error)


def test_openssh_keys_are_named_with_advice(ec_key: ec.EllipticCurvePrivateKey) -> None:
    private = ec_key.private_bytes(
        PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = ec_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    private_error, public_error = raised(private), raised(public + b" admin@host\n")
    assert isinstance(private_error, NotACertificateError) and "ssh-keygen" in str(private_error)
    assert isinstance(public_error, NotACertificateError)
    assert "OpenSSH public key" in str(public_error)


def test_pgp_block_and_java_keystore_are_named() -> None:
    pgp = (
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----"
    )
    jks = b"\xfe\xed\xfe\xed\x00\x00\x00\x02" + bytes(64)
    assert "PGP" in str(raised(pgp))
    assert "keytool" in str(raised(jks))
    assert isinstance(raised(pgp), NotACertificateError)


def test_encrypted_pkcs7_message_is_named(
    rsa_key: rsa.RSAPrivateKey, rsa_cert: x509.Certificate
) -> None:
    data = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(b"secret message")
        .add_recipient(rsa_cert)
        .encrypt(DER, [])
    )
    error = raised(data)
    assert isinstance(error, NotACertificateError)
    assert "PKCS#7" in str(error)


def test_supported_blocks_load_and_skipped_ones_are_named(
    ec_key: ec.EllipticCurvePrivateKey, ec_cert: x509.Certificate
) -> None:
    crl = make_crl(ec_key).public_bytes(PEM)
    public = ec_key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    loaded = load_file(crl + ec_cert.public_bytes(PEM) + public)
    assert loaded.certificates == (ec_cert,)
    assert len(loaded.warnings) == 2
    assert "certificate revocation list (CRL)" in loaded.warnings[0]
    assert "public key" in loaded.warnings[1]


def test_only_unsupported_blocks_name_all_of_them(ec_key: ec.EllipticCurvePrivateKey) -> None:
    crl = make_crl(ec_key).public_bytes(PEM)
    public = ec_key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    error = raised(crl + crl + public)
    assert isinstance(error, NotACertificateError)
    assert str(error) == (
        "this is a certificate revocation list (CRL) and a public key, "
        "not a certificate or private key"
    )


# --- interop: files written by the openssl CLI ------------------------------------------------

OPENSSL = "/usr/bin/openssl"
SECRET = b"secret"


def openssl(workdir: Path, *args: str) -> None:
    subprocess.run([OPENSSL, *args], cwd=workdir, check=True, capture_output=True)


@pytest.fixture(scope="module")
def openssl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every file kind an admin may get from a CA or from OpenSSL-based tooling."""
    d = tmp_path_factory.mktemp("openssl")
    cert_and_key = ("-in", "cert.pem", "-inkey", "key.pem")
    subj = ("-subj", "/CN=interop.example", "-days", "30")
    openssl(
        d,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
        *subj,
    )
    openssl(d, "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der")
    openssl(d, "pkcs12", "-export", *cert_and_key, "-out", "aes.p12", "-passout", "pass:secret")
    openssl(
        d,
        "pkcs12",
        "-export",
        "-legacy",
        *cert_and_key,
        "-out",
        "rc2.p12",
        "-passout",
        "pass:secret",
    )
    openssl(
        d, "pkcs12", "-export", *cert_and_key, "-out", "3des.p12", "-passout", "pass:secret",
        "-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1",
    )  # fmt: skip
    openssl(d, "pkcs12", "-export", *cert_and_key, "-out", "empty.p12", "-passout", "pass:")
    openssl(
        d,
        "pkcs12",
        "-export",
        "-legacy",
        *cert_and_key,
        "-out",
        "empty-rc2.p12",
        "-passout",
        "pass:",
    )
    openssl(d, "pkcs8", "-topk8", "-in", "key.pem", "-out", "p8-enc.pem", "-passout", "pass:secret")
    openssl(
        d,
        "pkcs8",
        "-topk8",
        "-in",
        "key.pem",
        "-outform",
        "DER",
        "-out",
        "p8-enc.der",
        "-passout",
        "pass:secret",
    )
    openssl(d, "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-out", "p8.pem")
    openssl(d, "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "p8.der")
    openssl(d, "rsa", "-in", "key.pem", "-traditional", "-out", "rsa-trad.pem")
    openssl(d, "rsa", "-in", "key.pem", "-traditional", "-outform", "DER", "-out", "rsa-trad.der")
    openssl(
        d,
        "rsa",
        "-in",
        "key.pem",
        "-traditional",
        "-aes256",
        "-passout",
        "pass:secret",
        "-out",
        "rsa-trad-enc.pem",
    )
    openssl(
        d, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem"
    )
    openssl(d, "ec", "-in", "ec.pem", "-out", "ec-trad.pem")
    openssl(d, "ec", "-in", "ec.pem", "-outform", "DER", "-out", "ec-trad.der")
    openssl(
        d, "ec", "-in", "ec.pem", "-aes256", "-passout", "pass:secret", "-out", "ec-trad-enc.pem"
    )
    openssl(d, "req", "-x509", "-key", "ec.pem", "-out", "ec-cert.pem", *subj)
    openssl(
        d,
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        "cert.pem",
        "-certfile",
        "ec-cert.pem",
        "-out",
        "chain.p7b",
    )
    openssl(
        d,
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        "cert.pem",
        "-certfile",
        "ec-cert.pem",
        "-outform",
        "DER",
        "-out",
        "chain.p7c",
    )
    openssl(d, "req", "-new", "-key", "key.pem", "-subj", "/CN=interop.example", "-out", "req.pem")
    openssl(
        d,
        "req",
        "-new",
        "-key",
        "key.pem",
        "-subj",
        "/CN=interop.example",
        "-outform",
        "DER",
        "-out",
        "req.der",
    )
    openssl(
        d, "x509", "-in", "cert.pem", "-trustout", "-addtrust", "serverAuth", "-out", "trusted.pem"
    )
    (d / "bundle.pem").write_bytes((d / "cert.pem").read_bytes() + (d / "key.pem").read_bytes())
    return d


# file, password, format, (certificates, keys, requests), the certificate whose key they hold
INTEROP = [
    ("cert.pem", None, "PEM", (1, 0, 0), "cert.pem"),
    ("cert.der", None, "DER X.509 certificate", (1, 0, 0), "cert.pem"),
    ("bundle.pem", None, "PEM", (1, 1, 0), "cert.pem"),
    ("trusted.pem", None, "PEM", (1, 0, 0), "cert.pem"),
    ("aes.p12", SECRET, "PKCS#12", (1, 1, 0), "cert.pem"),
    ("rc2.p12", SECRET, "PKCS#12", (1, 1, 0), "cert.pem"),
    ("3des.p12", SECRET, "PKCS#12", (1, 1, 0), "cert.pem"),
    ("empty.p12", None, "PKCS#12", (1, 1, 0), "cert.pem"),
    ("empty-rc2.p12", None, "PKCS#12", (1, 1, 0), "cert.pem"),
    ("p8-enc.pem", SECRET, "PEM", (0, 1, 0), "cert.pem"),
    ("p8-enc.der", SECRET, "encrypted PKCS#8 private key (DER)", (0, 1, 0), "cert.pem"),
    ("p8.pem", None, "PEM", (0, 1, 0), "cert.pem"),
    ("p8.der", None, "PKCS#8 private key (DER)", (0, 1, 0), "cert.pem"),
    ("rsa-trad.pem", None, "PEM", (0, 1, 0), "cert.pem"),
    ("rsa-trad.der", None, "OpenSSL legacy private key (DER)", (0, 1, 0), "cert.pem"),
    ("rsa-trad-enc.pem", SECRET, "PEM", (0, 1, 0), "cert.pem"),
    ("ec-trad.pem", None, "PEM", (0, 1, 0), "ec-cert.pem"),
    ("ec-trad.der", None, "OpenSSL legacy private key (DER)", (0, 1, 0), "ec-cert.pem"),
    ("ec-trad-enc.pem", SECRET, "PEM", (0, 1, 0), "ec-cert.pem"),
    ("chain.p7b", None, "PKCS#7 (PEM)", (2, 0, 0), None),
    ("chain.p7c", None, "PKCS#7 (DER)", (2, 0, 0), None),
    ("req.pem", None, "PEM", (0, 0, 1), "cert.pem"),
    ("req.der", None, "certificate request (DER)", (0, 0, 1), "cert.pem"),
]


@pytest.mark.parametrize(
    ("name", "password", "expected_format", "counts", "owner"), INTEROP, ids=[c[0] for c in INTEROP]
)
def test_openssl_written_file_loads(
    openssl_dir: Path,
    name: str,
    password: bytes | None,
    expected_format: str,
    counts: tuple[int, int, int],
    owner: str | None,
) -> None:
    loaded = load_file((openssl_dir / name).read_bytes(), password)
    assert loaded.format == expected_format
    assert (len(loaded.certificates), len(loaded.private_keys), len(loaded.requests)) == counts
    if owner is None:
        return
    expected = x509.load_pem_x509_certificate((openssl_dir / owner).read_bytes())
    for item in (*loaded.certificates, *loaded.private_keys, *loaded.requests):
        assert same_key(item, expected)


def test_openssl_traditional_keys_really_are_traditional(openssl_dir: Path) -> None:
    """Guards the interop cases above: OpenSSL 3 must have written the legacy PEM forms."""
    assert b"BEGIN RSA PRIVATE KEY" in (openssl_dir / "rsa-trad.pem").read_bytes()
    assert b"BEGIN EC PRIVATE KEY" in (openssl_dir / "ec-trad.pem").read_bytes()
    assert b"Proc-Type: 4,ENCRYPTED" in (openssl_dir / "ec-trad-enc.pem").read_bytes()


ENCRYPTED_INTEROP = [
    "aes.p12",
    "rc2.p12",
    "3des.p12",
    "p8-enc.pem",
    "p8-enc.der",
    "rsa-trad-enc.pem",
    "ec-trad-enc.pem",
]


@pytest.mark.parametrize("name", ENCRYPTED_INTEROP)
def test_openssl_encrypted_file_password_errors(openssl_dir: Path, name: str) -> None:
    data = (openssl_dir / name).read_bytes()
    assert isinstance(raised(data), PasswordRequiredError)
    assert isinstance(raised(data, b"not the password"), WrongPasswordError)


@pytest.mark.parametrize(
    ("cipher", "named"), [("camellia256", "CAMELLIA-256-CBC"), ("aria128", "ARIA-128-CBC")]
)
def test_a_traditional_key_in_a_cipher_certgate_cannot_read_says_so_and_how_to_convert(
    openssl_dir: Path, cipher: str, named: str
) -> None:
    """It was 'corrupt-data: ... Key encrypted with unknown cipher.': the file is not damaged."""
    openssl(
        openssl_dir, "rsa", "-in", "key.pem", "-traditional", f"-{cipher}",
        "-passout", "pass:secret", "-out", f"{cipher}.pem",
    )  # fmt: skip
    error = raised((openssl_dir / f"{cipher}.pem").read_bytes(), b"secret")
    assert isinstance(error, UnsupportedKeyError)
    assert f"encrypted with {named}," in str(error) and "openssl pkcs8 -topk8" in str(error)


@pytest.mark.parametrize("name", ["aes.p12", "rc2.p12"])
def test_a_password_holding_a_nul_is_a_wrong_password_for_pkcs12(
    openssl_dir: Path, name: str
) -> None:
    """cryptography panicked on a PKCS#12 password with a NUL character (as a form may send
    one): a PanicException, which no ``except Exception`` catches."""
    assert isinstance(raised((openssl_dir / name).read_bytes(), b"sec\x00ret"), WrongPasswordError)
    loaded = load_file((openssl_dir / "empty.p12").read_bytes(), b"sec\x00ret")
    assert loaded.warnings == (
        "the PKCS#12 file has no password; the password given was not needed",
    )


# --- corpus: cryptography-vectors -------------------------------------------------------------

VECTORS = Path(cryptography_vectors.__file__).parent
CORPUS_DIRS = ("x509", "pkcs12", "pkcs7", "asymmetric")
CORPUS_PASSWORDS = (b"password", b"cryptography")  # PKITS uses the first


def corpus_files() -> Iterator[Path]:
    for directory in CORPUS_DIRS:
        yield from sorted(path for path in (VECTORS / directory).rglob("*") if path.is_file())


def corpus_outcome(data: bytes, password: bytes | None) -> str:
    """ "loaded", a CertgateError code, or the name of any other exception (a defect)."""
    try:
        load_file(data, password)
    except CertgateError as error:
        return error.code
    except Exception as error:  # any other exception is what this test looks for
        return f"CRASH {type(error).__name__}: {error}"
    return "loaded"


def test_corpus_never_raises_anything_but_certgate_errors() -> None:
    outcomes: Counter[str] = Counter()
    crashes: list[str] = []
    for path in corpus_files():
        if path.stat().st_size > MAX_FILE_SIZE:
            outcomes["too large to read"] += 1
            continue
        data = path.read_bytes()
        results = [corpus_outcome(data, None)]
        for password in CORPUS_PASSWORDS:
            if results[-1] not in ("password-required", "wrong-password"):
                break
            results.append(corpus_outcome(data, password))
        crashes += [f"{path.relative_to(VECTORS)}: {r}" for r in results if r.startswith("CRASH")]
        outcomes["loaded" if "loaded" in results else results[-1]] += 1
    print("\ncorpus outcomes:", dict(outcomes))
    assert not crashes, "non-certgate exceptions:\n" + "\n".join(crashes)
    assert outcomes["loaded"] > 1000  # the walk really reached the corpus


@pytest.mark.parametrize(
    ("vector", "password", "expected"),
    [
        ("x509/cryptography.io.chain.pem", None, "loaded"),
        ("x509/PKITS_data/pkcs12/GoodCACert.p12", b"password", "loaded"),
        ("pkcs12/cert-rc2-key-3des.p12", b"cryptography", "loaded"),
        ("pkcs12/cert-rc2-key-3des.p12", None, "password-required"),
        ("pkcs12/cert-rc2-key-3des.p12", b"password", "wrong-password"),
        ("pkcs7/amazon-roots.der", None, "loaded"),
        ("pkcs7/enveloped.pem", None, "not-a-certificate"),
        ("x509/custom/crl_empty.pem", None, "not-a-certificate"),
        ("x509/ocsp/resp-sha256.der", None, "not-a-certificate"),
        ("asymmetric/OpenSSH/rsa-nopsw.key", None, "not-a-certificate"),
        ("asymmetric/DER_Serialization/dsa.1024.der", None, "unsupported-key"),
        ("x509/custom/invalid_version.pem", None, "corrupt-data"),
        ("asymmetric/EC/truncated-private-key.der", None, "corrupt-data"),
        (
            "asymmetric/Traditional_OpenSSL_Serialization/key1-no-dek-info.pem",
            SECRET,
            "corrupt-data",
        ),
    ],
)
def test_corpus_samples(vector: str, password: bytes | None, expected: str) -> None:
    assert corpus_outcome((VECTORS / vector).read_bytes(), password) == expected
