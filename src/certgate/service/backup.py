"""Backup and restore of the whole appliance: the store and the master key, encrypted with a
key derived from a passphrase.

The file (format 1)::

    header   "CGBACKUP" | format 1 | KDF 1 = scrypt | log2(n) | r | p | salt (16)
             | nonce prefix (7) | log2(chunk size) | passphrase check (16)
    chunks   AES-256-GCM of each chunk of the payload; nonce = prefix | chunk number (4)
             | 1 on the last chunk else 0; the whole header is the associated data

scrypt gives 48 bytes: the AES key and the check, which tells a wrong passphrase from a
damaged file before any chunk is opened. Numbered chunks and the last-chunk flag make a
reordered, truncated or extended file fail like a damaged one. The payload is a tar stream
of ``manifest.json``, ``master.key`` and ``certgate.db`` (a snapshot of the store:
``store/snapshot.py``), written and read chunk by chunk, never whole in memory.

A restore goes into an empty data directory (and an empty PostgreSQL database with
``database_url``). Everything is decrypted, checked and put together in a private directory
inside it first, then moved into place, so a wrong passphrase or a damaged file changes
nothing.
"""

from __future__ import annotations

import datetime as dt
import hmac
import io
import json
import os
import shutil
import sqlite3
import struct
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from certgate import __version__
from certgate.errors import BackupError, SealingError, WrongPassphraseError
from certgate.limits import EXPORT_PASSPHRASE_MIN as PASSPHRASE_MIN
from certgate.service import master_key as master_key_state
from certgate.service.appliance import Appliance, secure_data_dir
from certgate.store.audit import Actor, AuditAction
from certgate.store.database import DATABASE_FILE, SCHEMA_HEAD, default_url, describe_database
from certgate.store.repository import Store
from certgate.store.sealing import MASTER_KEY_FILE, Sealer
from certgate.store.snapshot import (
    check_snapshot,
    forget_nodes,
    is_empty_store,
    load_snapshot,
    snapshot_counts,
    snapshot_key_id,
    sqlite_path,
    take_snapshot,
    upgrade_snapshot,
)

MAGIC = b"CGBACKUP"
FORMAT = 1
_SCRYPT = 1
#: scrypt n = 2^17, r = 8, p = 1: 128 MiB and ~0.3 s here, once per backup or restore.
_LOG2_N, _R, _P = 17, 8, 1
#: What a file may ask of the KDF, read before any work: n = 2^20 with r = 8 is 1 GiB of
#: memory and 2 s here (r = 16, p = 4 was 2 GiB and 40 s for a hostile file).
_MAX_LOG2_N, _MAX_R, _MAX_P = 20, 8, 1
_CHUNK_LOG2 = 16  # 64 KiB
_HEADER = struct.Struct(">8sBBBBB16s7sB16s")
_TAG = 16
MANIFEST = "manifest.json"
_MEMBERS = {MANIFEST: 1 << 20, MASTER_KEY_FILE: 32, DATABASE_FILE: 1 << 40}
#: A restore's work directory inside the data directory (one a killed restore left is removed)
_STAGING = ".restore-"


@dataclass(frozen=True)
class BackupReport:
    file: str
    bytes: int
    store: str  # "sqlite" | "postgresql": where the copy was taken from
    certificates: int
    private_keys: int
    created_at: str
    format: int = FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RestoreReport:
    data_dir: str
    database: str
    certificates: int
    private_keys: int
    backup_created_at: str
    backup_certgate: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def create_backup(app: Appliance, out: Path, passphrase: bytes, actor: Actor) -> BackupReport:
    """Write an encrypted copy of the whole appliance to ``out`` (replaced atomically, 0600).

    Consistent while ``certgate serve`` and other commands write: the store is read in one
    transaction (``take_snapshot``). The backup is recorded in the audit trail.
    """
    if len(passphrase.decode("utf-8", errors="replace")) < PASSPHRASE_MIN:
        raise BackupError(f"the backup passphrase must have at least {PASSPHRASE_MIN} characters")
    out = out.absolute()
    master_key = (app.data_dir / MASTER_KEY_FILE).read_bytes()
    key_id = Sealer(master_key).key_id  # the key file was checked when the appliance was opened
    stale = master_key_state.problem(app)
    if stale is not None:  # a backup of this key would open none of the store's secrets
        raise stale
    store_kind = "sqlite" if sqlite_path(app.store.url) else "postgresql"
    try:
        # The plain snapshot (password hashes, sessions, sealed keys) is staged inside the
        # private data directory, never beside the backup (a share, a USB disk).
        staging = Path(tempfile.mkdtemp(prefix=".certgate-backup-", dir=app.data_dir))
    except OSError as error:
        raise BackupError(f"cannot write in {app.data_dir}: {error.strerror}") from None
    # only the encrypted stream is written beside the backup, then renamed into place
    partial = out.parent / f".{out.name}.{os.urandom(6).hex()}.partial"
    try:
        image = staging / DATABASE_FILE
        try:
            counts = take_snapshot(app.store, image)
        except (OSError, sqlite3.Error) as error:  # writing the copy: the store was just read
            raise _no_room(app.data_dir, getattr(error, "strerror", None) or str(error)) from None
        if snapshot_key_id(image) not in (None, key_id):
            raise BackupError(
                "the master key was rotated while the backup was taken ('certgate key "
                "rotate'): take it again"
            )
        created = app.now().astimezone(dt.UTC).isoformat(timespec="seconds")
        manifest = {
            "format": FORMAT,
            "certgate": __version__,
            "created_at": created,
            "schema": SCHEMA_HEAD,
            "store": store_kind,
            **counts,
        }
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as error:
            raise BackupError(f"cannot write in {out.parent}: {error.strerror}") from None
        try:
            with os.fdopen(descriptor, "wb") as handle:
                with (
                    _Encrypting(handle, passphrase) as sink,
                    tarfile.open(fileobj=sink, mode="w|") as tar,
                ):
                    _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
                    _add_bytes(tar, MASTER_KEY_FILE, master_key)
                    tar.add(image, arcname=DATABASE_FILE, recursive=False, filter=_plain)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise _no_room(out.parent, error.strerror) from None
        # recorded as it is put in place: a backup the audit trail cannot record (a read-only
        # store) is not kept, the file at ``out`` stays as it was; one not put in place is
        # not recorded
        with app.store.transaction(actor) as repository:
            repository.audit(
                AuditAction.APPLIANCE_BACKUP,
                str(out),
                f"{counts['certificates']} certificates, {counts['private_keys']} private keys",
            )
            repository.flush()
            try:
                partial.replace(out)
            except OSError as error:
                raise BackupError(f"cannot write {out}: {error.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return BackupReport(str(out), out.stat().st_size, store_kind, created_at=created, **counts)


def restore_backup(
    data_dir: Path, database_url: str | None, backup: Path, passphrase: bytes, actor: Actor
) -> RestoreReport:
    """Make ``data_dir`` (empty or absent) the appliance in ``backup``; with ``database_url``
    the store goes into that (empty) database, else into the data directory's SQLite file.
    The restored store records the restore in its audit trail."""
    data_dir = data_dir.absolute()
    _require_empty_data_dir(data_dir)
    if database_url is not None and not is_empty_store(database_url):
        raise BackupError(
            f"the database {describe_database(database_url)} already holds a certgate store: "
            "restore into an empty database"
        )
    try:
        source = backup.open("rb")
    except OSError as error:
        raise BackupError(f"cannot read {backup}: {error.strerror}") from None
    with source:
        try:
            manifest, counts = _restore(source, passphrase, data_dir, database_url, actor, backup)
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""  # a write names no file
            raise BackupError(
                f"cannot restore into {data_dir} ({where}{error.strerror}): "
                "choose a place this user may write, with room for the store"
            ) from None
    return RestoreReport(
        str(data_dir),
        describe_database(database_url or default_url(data_dir)),
        backup_created_at=str(manifest.get("created_at", "")),
        backup_certgate=str(manifest.get("certgate", "")),
        **counts,
    )


def _restore(
    source: BinaryIO,
    passphrase: bytes,
    data_dir: Path,
    database_url: str | None,
    actor: Actor,
    backup: Path,
) -> tuple[dict[str, Any], dict[str, int]]:
    """Everything put together in a private directory inside ``data_dir`` first (which may be
    a mount point, or in a directory only root may write, as 'certgate init' allows); the
    files are moved into place last, the master key after the store."""
    try:
        data_dir.mkdir(parents=True, mode=0o700)
        made = True
    except FileExistsError:  # empty, as checked, but for what a killed restore left
        made = False
        for left in data_dir.glob(f"{_STAGING}*"):
            shutil.rmtree(left, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=data_dir))
    try:
        manifest = _unpack(source, passphrase, staging)
        image = staging / DATABASE_FILE
        check_snapshot(image)
        upgrade_snapshot(image)
        _require_opens(image, Sealer.from_file(staging / MASTER_KEY_FILE))
        forget_nodes(image)
        counts = snapshot_counts(image)
        _record_restore(
            image,
            actor,
            backup,
            f"the backup of {manifest.get('created_at')}: "
            f"{counts['certificates']} certificates, {counts['private_keys']} private keys",
        )
        if database_url is not None:
            load_snapshot(image, database_url)
            image.unlink()
        for name in (DATABASE_FILE, MASTER_KEY_FILE):
            if (staging / name).exists():
                (staging / name).rename(data_dir / name)
        secure_data_dir(data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if made:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    staging.rmdir()
    return manifest, counts


def _record_restore(image: Path, actor: Actor, backup: Path, detail: str) -> None:
    """The restore's audit event, in the restored store before it goes anywhere."""
    store = Store(f"sqlite:///{image}")
    try:
        with store.transaction(actor) as repository:
            repository.audit(AuditAction.APPLIANCE_RESTORE, str(backup.absolute()), detail)
    finally:
        store.close()


def _no_room(where: Path, said: str | None) -> BackupError:
    return BackupError(
        f"cannot write the backup in {where} ({said}): free space on its disk; nothing was kept"
    )


def _require_opens(image: Path, sealer: Sealer) -> None:
    """The backup's master key is the one its store's secrets are sealed with."""
    store = Store(f"sqlite:///{image}")
    try:
        with store.reading() as repository:
            master_key_state.check(repository, sealer)
    except SealingError:
        raise BackupError(
            "the backup's master key does not open its store: this file was not made whole by "
            "'certgate backup'; restore another backup"
        ) from None
    finally:
        store.close()


def _require_empty_data_dir(data_dir: Path) -> None:
    if data_dir.is_dir() and all(entry.name.startswith(_STAGING) for entry in data_dir.iterdir()):
        return
    if os.path.lexists(data_dir):
        raise BackupError(
            f"{data_dir} is not empty: a backup is restored into an empty or new data directory"
        )


def _unpack(source: BinaryIO, passphrase: bytes, into: Path) -> dict[str, Any]:
    """Decrypt and unpack every member into ``into``; raise on anything but a whole, authentic
    backup of the expected members."""
    found: dict[str, bytes | None] = {}
    with _Decrypting(source, passphrase) as plain:
        try:
            with tarfile.open(fileobj=plain, mode="r|") as tar:
                for member in tar:
                    limit = _MEMBERS.get(member.name)
                    if limit is None or not member.isreg() or member.name in found:
                        raise BackupError(f"the backup holds an unexpected entry {member.name!r}")
                    if member.size > limit:
                        raise BackupError(f"the backup's {member.name} is too large")
                    extracted = tar.extractfile(member)
                    assert extracted is not None  # a regular file
                    found[member.name] = _keep(extracted, into / member.name, member.name)
        except tarfile.TarError as error:
            raise BackupError(f"the backup file is damaged ({error})") from None
        while plain.read(1 << 16):  # to the last chunk: a cut-off end is a damaged file
            pass
    missing = set(_MEMBERS) - set(found)
    if missing:
        raise BackupError(f"the backup is incomplete: it has no {', '.join(sorted(missing))}")
    try:
        manifest: dict[str, Any] = json.loads(found[MANIFEST] or b"")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError
    except ValueError:
        raise BackupError("the backup's manifest is damaged") from None
    Sealer(found[MASTER_KEY_FILE] or b"")
    return manifest


def _keep(extracted: IO[bytes], path: Path, name: str) -> bytes | None:
    """The manifest in memory; the master key and the database written 0600 (the small
    ones are returned too)."""
    if name == MANIFEST:
        return extracted.read()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        if name == DATABASE_FILE:
            shutil.copyfileobj(extracted, handle)
            return None
        data = extracted.read()
        handle.write(data)
        return data


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No owner, group or time of this machine in the archive."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    info.mtime = 0
    return info


# --- the encrypted container --------------------------------------------------------------------


def _derive(passphrase: bytes, salt: bytes, log2_n: int, r: int, p: int) -> tuple[bytes, bytes]:
    derived = Scrypt(salt=salt, length=48, n=1 << log2_n, r=r, p=p).derive(passphrase)
    return derived[:32], derived[32:]


def _nonce(prefix: bytes, number: int, last: bool) -> bytes:
    if number >= 1 << 32:
        raise BackupError("the backup is too large for its format")
    return prefix + number.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class _Encrypting(io.RawIOBase):
    """A write-only stream that encrypts what it is given, chunk by chunk, into ``sink``."""

    def __init__(self, sink: BinaryIO, passphrase: bytes) -> None:
        super().__init__()
        salt, prefix = os.urandom(16), os.urandom(7)
        key, check = _derive(passphrase, salt, _LOG2_N, _R, _P)
        self._header = _HEADER.pack(
            MAGIC, FORMAT, _SCRYPT, _LOG2_N, _R, _P, salt, prefix, _CHUNK_LOG2, check
        )
        self._aead, self._prefix, self._sink = AESGCM(key), prefix, sink
        self._chunk = 1 << _CHUNK_LOG2
        self._buffer = bytearray()
        self._number = 0
        sink.write(self._header)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        while len(self._buffer) > self._chunk:  # the last chunk is written by close()
            self._emit(bytes(self._buffer[: self._chunk]), last=False)
            del self._buffer[: self._chunk]
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
        super().close()

    def _emit(self, chunk: bytes, *, last: bool) -> None:
        nonce = _nonce(self._prefix, self._number, last)
        self._sink.write(self._aead.encrypt(nonce, chunk, self._header))
        self._number += 1


class _Decrypting(io.RawIOBase):
    """A read-only stream of the authenticated plaintext of ``source``: every chunk is
    checked before any of it is given out; the end must be the last chunk, and nothing
    may follow it."""

    def __init__(self, source: BinaryIO, passphrase: bytes) -> None:
        super().__init__()
        header = source.read(_HEADER.size)
        if len(header) < _HEADER.size or not header.startswith(MAGIC):
            raise BackupError("this file is not a certgate backup")
        _, version, kdf, log2_n, r, p, salt, prefix, chunk_log2, check = _HEADER.unpack(header)
        if version != FORMAT:
            raise BackupError(f"this backup has format {version}; this certgate reads {FORMAT}")
        bounded = log2_n <= _MAX_LOG2_N and r <= _MAX_R and p <= _MAX_P
        if kdf != _SCRYPT or not (log2_n >= 1 and r >= 1 and p >= 1 and bounded):
            raise BackupError("the backup file is damaged (its key derivation is not valid)")
        if not 12 <= chunk_log2 <= 24:
            raise BackupError("the backup file is damaged (its chunk size is not valid)")
        key, expected = _derive(passphrase, salt, log2_n, r, p)
        if not hmac.compare_digest(check, expected):
            raise WrongPassphraseError("the passphrase does not open this backup")
        self._aead, self._prefix, self._header = AESGCM(key), prefix, header
        self._source = source
        self._size = (1 << chunk_log2) + _TAG
        self._ahead = source.read(self._size)
        self._plain = b""
        self._number = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._plain and not self._done:
            self._next_chunk()
        count = min(len(target), len(self._plain))
        target[:count] = self._plain[:count]
        self._plain = self._plain[count:]
        return count

    def _next_chunk(self) -> None:
        sealed, self._ahead = self._ahead, self._source.read(self._size)
        last = not self._ahead
        try:
            self._plain = self._aead.decrypt(
                _nonce(self._prefix, self._number, last), sealed, self._header
            )
        except InvalidTag:
            raise BackupError(
                f"the backup file is damaged or truncated (part {self._number + 1} does not "
                "authenticate)"
            ) from None
        self._number += 1
        self._done = last
