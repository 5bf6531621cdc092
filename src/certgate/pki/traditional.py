"""OpenSSL's traditional encrypted PEM keys (``Proc-Type: 4,ENCRYPTED``, ``DEK-Info:
CIPHER,IV``) in the cipher cryptography's PEM reader leaves out of ``openssl genrsa``'s: it reads
AES-128-CBC, AES-256-CBC and DES-EDE3-CBC, so a key from ``openssl genrsa -aes192`` was
refused as unreadable. The key derivation is OpenSSL's EVP_BytesToKey (MD5, one round,
the IV's first 8 bytes as salt), the encryption CBC with PKCS#7 padding.
"""

from __future__ import annotations

import binascii
import hashlib

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_CIPHERS = {"AES-192-CBC": (algorithms.AES, 24)}


def cipher_of(headers: tuple[tuple[str, str], ...]) -> tuple[str, bytes] | None:
    """The DEK-Info's cipher and IV when this module (not cryptography) decrypts it."""
    cipher, _, iv = _dek_info(headers).partition(",")
    try:
        raw_iv = binascii.unhexlify(iv.strip())
    except (binascii.Error, ValueError):
        return None
    if cipher.strip().upper() in _CIPHERS and len(raw_iv) == 16:
        return cipher.strip().upper(), raw_iv
    return None


def cipher_name(headers: tuple[tuple[str, str], ...]) -> str:
    """The cipher the DEK-Info names (``CAMELLIA-256-CBC``), "" when there is none."""
    return _dek_info(headers).partition(",")[0].strip().upper()[:40]


def _dek_info(headers: tuple[tuple[str, str], ...]) -> str:
    return next((value for name, value in headers if name.lower() == "dek-info"), "")


def decrypt(cipher: str, iv: bytes, encrypted: bytes, password: bytes) -> bytes | None:
    """The key's DER, or None when the padding is wrong (a wrong password, nearly always)."""
    algorithm, size = _CIPHERS[cipher]
    key, block = b"", b""
    while len(key) < size:  # EVP_BytesToKey
        block = hashlib.md5(block + password + iv[:8], usedforsecurity=False).digest()
        key += block
    if not encrypted or len(encrypted) % 16:
        return None
    decryptor = Cipher(algorithm(key[:size]), modes.CBC(iv)).decryptor()
    padded = decryptor.update(encrypted) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None
