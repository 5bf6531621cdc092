"""Private keys at rest: AES-256-GCM with a master key kept outside the database.

The key's public-key fingerprint is the associated data, so a sealed blob moved onto another
key's row does not open.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from certgate.errors import MasterKeyMissingError, SealingError

_VERSION = b"\x01"
_NONCE_SIZE = 12
_MASTER_KEY_SIZE = 32
MASTER_KEY_FILE = "master.key"
#: A rotation writes the new key here first, and renames it over ``master.key`` once the
#: store is committed to it (``settle_pending`` does that after a crash in between).
PENDING_KEY_FILE = "master.key.new"


_RESTORE = "put the master.key of this store back from your backup ('certgate restore')"


def _read_master_key(path: Path, todo: str = _RESTORE) -> bytes:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():  # its volume not mounted: the key is out of reach, not lost
            raise MasterKeyMissingError(
                f"the master key file {path} is a link to {path.readlink()}, which is missing: "
                "mount the volume that holds it (or link to where it is)"
            ) from None
        raise MasterKeyMissingError(f"the master key file {path} is missing: {todo}") from None
    except OSError as error:
        raise SealingError(f"cannot read the master key file {path}: {error.strerror}") from None
    if stat.S_ISDIR(status.st_mode):
        raise SealingError(f"the master key {path} is a directory, not a file: {todo}")
    if not stat.S_ISREG(status.st_mode):
        raise SealingError(f"the master key {path} is not a regular file: {todo}")
    if status.st_mode & 0o077:
        raise SealingError(
            f"the master key file {path} is open to other users (mode "
            f"{stat.S_IMODE(status.st_mode):04o}, must be 0600): run 'chmod 600 {path}', and treat "
            "the private keys as exposed if anyone else could have read it"
        )
    try:
        with path.open("rb") as handle:
            master_key = handle.read(_MASTER_KEY_SIZE + 1)
    except PermissionError:
        raise SealingError(
            f"cannot read the master key file {path}: permission denied; run certgate as the "
            "user that owns the data directory"
        ) from None
    except OSError as error:
        raise SealingError(f"cannot read the master key file {path}: {error.strerror}") from None
    if len(master_key) != _MASTER_KEY_SIZE:
        raise SealingError(
            f"the master key file {path} is damaged (it must hold exactly "
            f"{_MASTER_KEY_SIZE} bytes): {todo}"
        )
    return master_key


def write_master_key(path: Path, master_key: bytes) -> None:
    """Put ``master_key`` at ``path`` (mode 0600) all at once: written beside it, flushed to
    disk, renamed over it, the directory flushed. A crash leaves the old file or the new one,
    never half of either. A ``path`` that is a symbolic link (the key kept on another
    volume) is written where it points, the link left in place."""
    if len(master_key) != _MASTER_KEY_SIZE:
        raise SealingError(f"the master key must be {_MASTER_KEY_SIZE} bytes")
    path = path.resolve()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(master_key)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # a file left by a crash may have had another mode
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise SealingError(f"cannot write the master key file {path}: {error.strerror}") from None


def settle_pending(data_dir: Path, store_key_id: str | None) -> bool:
    """Finish a rotation that stopped between its commit and putting its new key in place
    (a crash, a kill): when ``master.key.new`` is the key the store records now, it becomes
    ``master.key``. True when it did. A pending key the store does not record (a rotation
    under way, or one that never committed) is left alone."""
    pending = data_dir / PENDING_KEY_FILE
    if store_key_id is None or not os.path.lexists(pending):
        return False
    try:
        settled = Sealer.from_file(pending)
    except SealingError:  # unusable, or put in place meanwhile by its rotation
        return False
    if settled.key_id != store_key_id:
        return False
    # Written over master.key (where it points, if a link), then the pending copy removed:
    # a crash in between leaves both the same key, settled again by the next command.
    write_master_key(data_dir / MASTER_KEY_FILE, settled.master_key)
    with contextlib.suppress(FileNotFoundError):
        pending.unlink()
    return True


class Sealer:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != _MASTER_KEY_SIZE:
            raise SealingError(f"the master key must be {_MASTER_KEY_SIZE} bytes")
        self._aead = AESGCM(master_key)
        self._master_key = master_key

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False, todo: str = _RESTORE) -> Sealer:
        """Read the master key file (mode 0600), making it first if ``create``.

        Every way the file can be unusable is said with its name and what to do: the
        master key is the one thing that opens every stored private key. ``todo``: what to
        do when it is missing or damaged (a data directory's own key: restore it).
        """
        if create and not os.path.lexists(path):
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError as error:
                raise SealingError(
                    f"cannot write the master key file {path}: {error.strerror}"
                ) from None
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(AESGCM.generate_key(bit_length=256))
        return cls(_read_master_key(path, todo))

    @classmethod
    def generate(cls) -> Sealer:
        """A new, random master key."""
        return cls(AESGCM.generate_key(bit_length=256))

    @property
    def master_key(self) -> bytes:
        """The key itself: only ever written to a 0600 file (``write_master_key``)."""
        return self._master_key

    @functools.cached_property
    def key_id(self) -> str:
        """Which master key this is, for the store to record and every node to compare:
        derived one way (HKDF), so it gives nothing of the key away."""
        return self.derive("master key id")[:16].hex()

    def derive(self, purpose: str) -> bytes:
        """A 32-byte secret for ``purpose`` (HKDF-SHA256 of the master key): the same in every
        process that holds this master key, and no way back to the master key."""
        info = f"certgate {purpose}".encode()
        return HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(self._master_key)

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
