"""Private keys at rest: AES-256-GCM with a master key kept outside the database.

The key's public-key fingerprint is the associated data, so a sealed blob moved onto another
key's row does not open.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from certgate.errors import SealingError

_VERSION = b"\x01"
_NONCE_SIZE = 12
MASTER_KEY_FILE = "master.key"


class Sealer:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise SealingError("the master key must be 32 bytes")
        self._aead = AESGCM(master_key)

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> Sealer:
        """Read the master key file (mode 0600), making it first if ``create``."""
        if create and not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(AESGCM.generate_key(bit_length=256))
        try:
            master_key = path.read_bytes()
        except FileNotFoundError:
            raise SealingError(f"the master key file {path} is missing") from None
        if path.stat().st_mode & 0o077:
            raise SealingError(f"the master key file {path} must not be readable by others (0600)")
        return cls(master_key)

    def seal(self, key_id: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(_NONCE_SIZE)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, key_id.encode())

    def unseal(self, key_id: str, sealed: bytes) -> bytes:
        if sealed[:1] != _VERSION:
            raise SealingError("unknown sealed-key format")
        nonce = sealed[1 : 1 + _NONCE_SIZE]
        try:
            return self._aead.decrypt(nonce, sealed[1 + _NONCE_SIZE :], key_id.encode())
        except InvalidTag:
            raise SealingError(
                "a private key could not be unsealed: wrong master key or damaged row"
            ) from None
