"""No file makes certgate derive keys for minutes: a PKCS#12 file or an encrypted key that
claims absurd iteration counts is refused before any derivation (cryptography holds the GIL
while it derives, so one such file froze every page and API call for 29 s)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from certgate.errors import ExcessiveWorkError, WrongPasswordError
from certgate.pki.loader import load_file
from certgate.pki.pbe import MAX_FILE_ITERATIONS, MAX_ITERATIONS, check_pkcs12
from tests.support import asn1
from tests.support.openssl import openssl
from tests.support.pki import issue, name, new_key

PASSWORD = b"secret"


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""]).encode()


def test_pkcs12_whose_mac_claims_200_million_iterations_is_refused_before_any_work() -> None:
    data = asn1.pfx(200_000_000, key_bag_algorithm=asn1.pbes2(2048))
    assert len(data) < 1024
    with pytest.raises(ExcessiveWorkError) as raised:
        load_file(data, PASSWORD)
    message = str(raised.value)
    assert "200,000,000" in message and f"{MAX_ITERATIONS:,}" in message


@pytest.mark.parametrize(
    "data",
    [
        asn1.pfx(encrypted_content=asn1.pbes2(2**31 - 1)),
        asn1.pfx(encrypted_content=asn1.pkcs12_pbe(50_000_000)),
        asn1.pfx(key_bag_algorithm=asn1.pbes2(MAX_ITERATIONS + 1)),
        asn1.pfx(key_bag_algorithm=asn1.pkcs12_pbe(2**63)),  # longer than any machine integer
    ],
    ids=["pbes2-content", "pkcs12-pbe-content", "pbes2-key-bag", "nine-octet-count"],
)
def test_every_key_derivation_of_a_pkcs12_file_is_bounded(data: bytes) -> None:
    with pytest.raises(ExcessiveWorkError):
        load_file(data, PASSWORD)
    with pytest.raises(ExcessiveWorkError):
        load_file(data)  # without a password the empty one would be tried


def test_a_file_of_many_derivations_is_bounded_in_total() -> None:
    each = MAX_ITERATIONS  # each count is allowed, their sum is not
    data = asn1.pfx(each, encrypted_content=asn1.pbes2(each), key_bag_algorithm=asn1.pbes2(each))
    check_pkcs12(data)  # three at the bound: a MAC and two encryptions are fine
    heavier = asn1.pfx(
        each, encrypted_content=asn1.pbes2(each), key_bag_algorithm=asn1.pbes2(each + 1)
    )
    assert 3 * each + 1 > MAX_FILE_ITERATIONS
    with pytest.raises(ExcessiveWorkError):
        load_file(heavier, PASSWORD)


@pytest.mark.parametrize("pem", [False, True], ids=["der", "pem"])
def test_encrypted_private_key_claiming_absurd_iterations_is_refused(pem: bool) -> None:
    data = asn1.encrypted_private_key(asn1.pbes2(1_000_000_000))
    with pytest.raises(ExcessiveWorkError):
        load_file(_pem("ENCRYPTED PRIVATE KEY", data) if pem else data, PASSWORD)


def test_files_made_with_usual_counts_load() -> None:
    key = new_key("p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    subject = name("usual.example")
    certificate = issue(subject, key.public_key(), subject, key, ca=False)
    for rounds in (2048, 600_000):  # OpenSSL's default; OWASP's advice for PBKDF2-SHA256
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(rounds)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(PASSWORD)
        )
        data = pkcs12.serialize_key_and_certificates(b"x", key, certificate, None, encryption)
        loaded = load_file(data, PASSWORD)
        assert len(loaded.certificates) == 1 and len(loaded.private_keys) == 1
        with pytest.raises(WrongPasswordError):
            load_file(data, b"wrong")


def test_a_pem_file_of_many_encrypted_keys_is_bounded_in_total() -> None:
    """Each block at the bound was allowed: 50 of them (20 KB) took 8 s of derivations, a
    1 MiB file (imported on a serving thread) seven minutes."""
    plain = new_key("p256").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    encrypted = openssl(
        "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-iter", str(MAX_ITERATIONS),
        "-passout", f"pass:{PASSWORD.decode()}", stdin=plain,
    ).encode()  # fmt: skip
    allowed = MAX_FILE_ITERATIONS // MAX_ITERATIONS
    assert len(load_file(encrypted * allowed, PASSWORD).private_keys) == allowed
    with pytest.raises(ExcessiveWorkError) as raised:
        load_file(encrypted * (allowed + 1), PASSWORD)
    total = (allowed + 1) * MAX_ITERATIONS
    assert f"{total:,} key derivation iterations in all" in str(raised.value)
