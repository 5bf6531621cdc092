"""The appliance: one data directory (master key, SQLite file) or a database URL.

Every face opens an ``Appliance`` and calls the service modules with it.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certgate.errors import (
    AlreadyInitialisedError,
    CertgateError,
    DataDirectoryError,
    MasterKeyMissingError,
    NotInitialisedError,
    StoreUnavailableError,
)
from certgate.store import master_key
from certgate.store.database import DATABASE_FILE, default_url, describe_database
from certgate.store.repository import Store
from certgate.store.sealing import MASTER_KEY_FILE, PENDING_KEY_FILE, Sealer, settle_pending

DATA_DIR_ENV = "CERTGATE_DATA_DIR"
DATABASE_URL_ENV = "CERTGATE_DATABASE_URL"
#: The store's settings that name the appliance, made by ``certgate init``.
SERIAL_SETTING = "appliance.serial"
GUID_SETTING = "appliance.guid"


#: Every file certgate keeps in a data directory besides the master key: the SQLite database
#: and its journals, what ``certgate serve`` publishes and its lock.
STATUS_FILE = "listeners.json"
LOCK_FILE = "serve.lock"
COUNTS_FILE = "tls-counts"  # the front end's counts per worker (tls/counts.py)
#: The last state serve applied, its keys sealed: served when the store cannot be reached
#: at start (service/served_state.py).
STATE_FILE = "served-state.json"
DATA_FILES = (
    *(DATABASE_FILE + suffix for suffix in ("", "-wal", "-shm", "-journal")),
    STATUS_FILE,
    LOCK_FILE,
    COUNTS_FILE,
    STATE_FILE,
)


def is_data_file(data_dir: Path, path: Path) -> bool:
    """``path`` is one of the files certgate keeps in ``data_dir`` (its master key, its
    database): a command's output must never replace it."""
    names = (MASTER_KEY_FILE, PENDING_KEY_FILE, *DATA_FILES)
    return path.resolve() in {(data_dir / name).resolve() for name in names}


_PUT_IT_BACK = "Put master.key back from your backup ('certgate restore' restores both)."
#: What a node of a shared store runs with the cluster's current key (after a rotation
#: elsewhere, or to replace a key it lost).
INSTALL = "certgate key install --master-key-file FILE"


def secure_data_dir(data_dir: Path) -> None:
    """Nothing of the data directory open to other users (0700, files 0600), whoever made
    it and whatever the umask: the database holds password hashes and session tokens."""
    for path in (data_dir, *(data_dir / name for name in DATA_FILES)):
        _owner_only(path)


def _owner_only(path: Path) -> None:
    """Take every right of group and others away (what the owner may do is left alone)."""
    try:
        status = path.lstat()
        if not stat.S_ISLNK(status.st_mode) and status.st_mode & 0o077:
            path.chmod(stat.S_IMODE(status.st_mode) & 0o700)
    except FileNotFoundError:
        return
    except PermissionError:  # not ours to change: the owner's mode stands
        return


def store_url(data_dir: Path, database_url: str | None = None) -> str:
    """The store a command uses: ``--database-url``, else $CERTGATE_DATABASE_URL, else the
    SQLite file of the data directory."""
    return database_url or os.environ.get(DATABASE_URL_ENV) or default_url(data_dir)


def _without_master_key(data_dir: Path, url: str) -> CertgateError:
    """No master key: a data directory never initialised, or one whose key was lost."""
    master_key = data_dir / MASTER_KEY_FILE
    if url == default_url(data_dir) and not (data_dir / DATABASE_FILE).exists():
        return NotInitialisedError(
            f"{data_dir} is not an initialised certgate data directory: run 'certgate init' "
            "(it has no master key and no database)"
        )
    store = Store(url)
    try:
        if store.holds_sealed_keys():
            todo = _PUT_IT_BACK
            if url != default_url(data_dir):  # a shared store: its other nodes hold the key
                todo = (
                    "Copy master.key from another node of the cluster and run "
                    f"'{INSTALL}'; with no other node, put it back from your backup"
                )
            return MasterKeyMissingError(
                f"the master key file {master_key} is missing: the private keys in the "
                f"database {describe_database(url)} cannot be opened without it. {todo}"
            )
    finally:
        store.close()
    return MasterKeyMissingError(
        f"the master key file {master_key} is missing (the database holds no private key "
        "yet): run 'certgate init' to make one"
    )


def _refuse_a_second_key(data_dir: Path, url: str) -> None:
    """A shared store another node initialised: this node joins it with that node's key."""
    store = Store(url)
    try:
        if store.holds_sealed_keys():
            raise AlreadyInitialisedError(
                f"the store {describe_database(url)} is initialised already and {data_dir} has "
                "no master key: 'certgate init' will not make a new one, which would open none "
                "of the store's keys. To add this node to the cluster, copy master.key from one "
                "of its nodes and run 'certgate init --join --master-key-file FILE'; if this "
                f"node lost its key, copy it likewise and run '{INSTALL}'"
            )
    finally:
        store.close()


def _settle_rotation(data_dir: Path, store: Store) -> bool:
    """A ``certgate key rotate`` stopped after its commit: its new key is put in place."""
    with store.reading() as repository:
        key_id = master_key.record(repository).key_id
    return settle_pending(data_dir, key_id)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Appliance:
    data_dir: Path
    store: Store
    sealer: Sealer
    clock: Callable[[], dt.datetime] = field(default=_utcnow)
    #: Per-process caches keyed by the store's revision (see certificates.cached_...).
    cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(
        cls, data_dir: Path, database_url: str | None = None, *, store_may_be_away: bool = False
    ) -> Appliance:
        """Open an initialised appliance, or say what is missing and what to do.

        ``store_may_be_away``: a store that cannot be reached now is opened all the same (it
        is connected to when used), for ``certgate serve`` with a cached state to serve."""
        url = store_url(data_dir, database_url)
        master_key = data_dir / MASTER_KEY_FILE
        if not os.path.lexists(master_key):
            raise _without_master_key(data_dir, url)
        sealer = Sealer.from_file(master_key)
        secure_data_dir(data_dir)
        store = Store(url)
        try:
            if not store.is_ready():
                raise NotInitialisedError(
                    "the database is not initialised or is older than this certgate "
                    f"({describe_database(url)}): run 'certgate init'"
                )
            if os.path.lexists(data_dir / PENDING_KEY_FILE) and _settle_rotation(data_dir, store):
                sealer = Sealer.from_file(master_key)
        except StoreUnavailableError:
            if not store_may_be_away:
                store.close()
                raise
        except BaseException:
            store.close()
            raise
        return cls(data_dir, store, sealer)

    @classmethod
    def create(cls, data_dir: Path, database_url: str | None = None) -> Appliance:
        """Make the data directory, master key and schema (idempotent).

        Never a new master key beside a store that holds sealed private keys: it would make
        every one of them unreadable.
        """
        url = store_url(data_dir, database_url)
        master_key = data_dir / MASTER_KEY_FILE
        if url != default_url(data_dir) and not os.path.lexists(master_key):
            _refuse_a_second_key(data_dir, url)  # before anything is made
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            secure_data_dir(data_dir)
            if url == default_url(data_dir):
                # Made here, 0600: SQLite gives its -wal and -shm files the database file's mode.
                os.close(os.open(data_dir / DATABASE_FILE, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as error:
            raise DataDirectoryError(
                f"cannot make the data directory {data_dir} ({error.filename}: "
                f"{error.strerror}): choose a directory this user may write"
            ) from None
        store = Store(url)
        try:
            if not os.path.lexists(master_key) and store.holds_sealed_keys():
                raise MasterKeyMissingError(
                    f"the master key file {master_key} is missing and the database "
                    f"{describe_database(url)} holds sealed private keys that only it opens: "
                    f"'certgate init' will not make a new one. {_PUT_IT_BACK}"
                )
            sealer = Sealer.from_file(master_key, create=True)
            store.migrate()
        except BaseException:
            store.close()
            raise
        secure_data_dir(data_dir)  # what the first connection made
        return cls(data_dir, store, sealer)

    def now(self) -> dt.datetime:
        return self.clock()

    def close(self) -> None:
        self.store.close()
