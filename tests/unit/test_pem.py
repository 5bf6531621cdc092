"""PEM blocks found in whatever text a CA or an administrator sends: explanatory text around
them, Windows line endings, a byte-order mark, UTF-16 from Notepad; a damaged file says how
it is damaged (pki/pem.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certgate.errors import CorruptDataError
from certgate.pki.pem import as_text, has_markers, plain_certificate_count, scan
from tests.support.pki import make_chain, pem

CHAIN = make_chain("pem.example.test", kind="rsa")
LEAF_PEM = pem(CHAIN.leaf)
LEAF_DER = CHAIN.leaf.public_bytes(serialization.Encoding.DER)


def _only(data: bytes) -> bytes:
    [block] = scan(data)
    assert block.label == "CERTIFICATE" and block.defect is None, block
    return block.der()


def test_the_block_is_found_inside_openssl_text_output() -> None:
    text = (
        b"Certificate:\n    Data:\n        Version: 3 (0x2)\n"
        b"        Subject: CN = pem.example.test\n" + LEAF_PEM + b"\nThanks for your order!\n"
    )
    assert _only(text) == LEAF_DER


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.replace(b"\n", b"\r\n"),
        lambda text: b"\xef\xbb\xbf" + text,
        lambda text: text.decode().encode("utf-16"),  # with its byte-order mark, as Notepad
        lambda text: b"\xfe\xff" + text.decode().encode("utf-16-be"),
    ],
    ids=["crlf", "utf8-bom", "utf16-le", "utf16-be"],
)
def test_windows_line_endings_and_encodings_read_the_same(
    encode: Callable[[bytes], bytes],
) -> None:
    assert _only(encode(LEAF_PEM)) == LEAF_DER
    assert has_markers(encode(LEAF_PEM))


def test_every_block_comes_in_file_order_with_its_label() -> None:
    bundle = pem(CHAIN.leaf, CHAIN.intermediate, CHAIN.leaf_key, CHAIN.root)
    blocks = scan(bundle)
    assert [block.label for block in blocks] == [
        "CERTIFICATE",
        "CERTIFICATE",
        "PRIVATE KEY",
        "CERTIFICATE",
    ]
    assert x509.load_der_x509_certificate(blocks[3].der()) == CHAIN.root


@pytest.mark.parametrize(
    ("damage", "defect"),
    [
        (
            lambda text: text.split(b"-----END")[0],
            "its END line is missing (is the file cut short?)",
        ),
        (
            lambda text: text[text.index(b"\n") + 1 :],
            "its BEGIN line is missing (is the start cut off?)",
        ),
        (
            lambda text: text.replace(b"END CERTIFICATE", b"END PRIVATE KEY"),
            "it ends with an 'END PRIVATE KEY' line",
        ),
    ],
    ids=["cut-short", "start-cut-off", "wrong-end"],
)
def test_a_damaged_frame_says_what_is_wrong(damage: Callable[[bytes], bytes], defect: str) -> None:
    [block] = scan(damage(LEAF_PEM))
    assert block.defect == defect


def test_a_block_whose_base64_was_damaged_is_refused_as_corrupt() -> None:
    lines = LEAF_PEM.splitlines()
    lines[3] = lines[3][:10] + b"!!" + lines[3][12:]
    [block] = scan(b"\n".join(lines))
    with pytest.raises(CorruptDataError, match="'CERTIFICATE' is damaged: its base64 text"):
        block.der()


def test_an_openssl_encrypted_key_keeps_its_headers_and_opens_with_its_passphrase() -> None:
    encrypted = CHAIN.leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    noisy = b"Your key:\r\n" + encrypted.replace(b"\n", b"\r\n") + b"\r\n"
    [block] = scan(noisy)
    assert block.label == "RSA PRIVATE KEY" and block.encrypted
    assert dict(block.headers)["Proc-Type"] == "4,ENCRYPTED"
    reopened = serialization.load_pem_private_key(block.to_pem(), b"passphrase")
    assert reopened.private_numbers() == CHAIN.leaf_key.private_numbers()  # type: ignore[union-attr]
    [plain] = scan(pem(CHAIN.leaf_key))
    assert not plain.encrypted


def test_pgp_armour_is_skipped_whole() -> None:
    signed = (
        b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n"
        b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"
    )
    blocks = scan(signed + LEAF_PEM)
    assert [block.label for block in blocks] == ["PGP SIGNED MESSAGE", "CERTIFICATE"]
    assert blocks[1].der() == LEAF_DER


def test_a_bundle_of_certificates_only_is_counted_for_the_fast_path() -> None:
    assert plain_certificate_count(pem(CHAIN.leaf, CHAIN.intermediate, CHAIN.root)) == 3
    assert plain_certificate_count(pem(CHAIN.leaf, CHAIN.leaf_key)) == 0
    assert plain_certificate_count(LEAF_PEM.split(b"-----END")[0]) == 0


def test_text_without_any_block_has_no_markers() -> None:
    assert not has_markers(b"just some text\n")
    assert scan(b"just some text\n") == []
    assert as_text(b"\xef\xbb\xbfabc") == b"abc"
