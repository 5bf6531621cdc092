"""The cluster's master key (issue 12, point 5): which key seals the store's secrets now, whether
a node holds it, and how a node picks up a new one.

The store records the current key by its id (``Sealer.key_id``, a one-way derivation), its
generation (1 for the key ``certgate init`` made, one more per ``certgate key rotate``), where
it was made, and the ids of the keys it replaced. So a key can be told for what it is before
anything is written: the current one, a stale one (replaced: copy the new one), or none of the
store's (wrong). A store from before the record is checked by opening one of its sealed keys.

A node whose key is stale keeps serving what it has loaded and loads nothing new: every sealed
row opens only with the new key. ``certgate serve`` reads its key file again while it is
stale (``follow``), so ``certgate key install`` on that node is all it takes.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from certgate.errors import (
    DataDirectoryError,
    NotInitialisedError,
    SealingError,
    StaleMasterKeyError,
    WrongMasterKeyError,
)
from certgate.pki.diagnostics import format_time
from certgate.service import served_state
from certgate.service.appliance import INSTALL, Appliance
from certgate.store import master_key as records
from certgate.store.database import describe_database
from certgate.store.models import KeyRow, MasterKeyRow
from certgate.store.repository import Repository, Store
from certgate.store.sealing import MASTER_KEY_FILE, Sealer, settle_pending, write_master_key
from certgate.text import visible

#: What a new node runs with the new key (it has no data directory to install a key in).
JOIN = "certgate init --join --master-key-file FILE"
#: What to do with a copy of a node's key ('init --join', 'key install') that is missing or
#: damaged: the data directory's own key is restored from a backup, a copy is made again.
COPY_AGAIN = "copy master.key again from a node of the cluster (then chmod 600)"
OWN_KEY = "this node's master key"
_SAMPLES = 3  # sealed keys tried on a store that records no key id: any one opening is enough


def made_at(data_dir: Path) -> str:
    """Where a key was made, as the store records it: the host and its key file (a byte of
    its path that is not UTF-8 as its escape: the store keeps text)."""
    return visible(f"{socket.gethostname()}:{(data_dir / MASTER_KEY_FILE).resolve()}")


def check(
    repository: Repository,
    sealer: Sealer,
    label: str = OWN_KEY,
    lock: Literal["share", "update"] | None = None,
    then: str = INSTALL,
) -> MasterKeyRow:
    """The store's record, if ``sealer`` is its current key; else ``StaleMasterKeyError`` (a
    key it replaced) or ``WrongMasterKeyError`` (none of its keys). ``label`` names the key
    in the message, ``then`` the command to run with the new one; ``lock``: "share" (a
    writer about to seal) or "update" (a rotation)."""
    row = records.record(repository, lock)
    if row.key_id is None:
        _open_a_sample(repository, sealer, label)
        return row
    if row.key_id != sealer.key_id:
        raise _mismatch(row, sealer, label, then)
    return row


def require_current(repository: Repository, sealer: Sealer) -> None:
    """Before sealing anything: the store's current key is this one, and stays so until this
    transaction ends (a rotation waits for it, or it waits for the rotation and refuses)."""
    if records.checked(repository) == sealer.key_id:
        return
    check(repository, sealer, lock="share")
    records.mark_checked(repository, sealer.key_id)


def explain(repository: Repository, sealer: Sealer) -> SealingError | None:
    """Why a sealed row did not open, when it is the key's fault (stale or wrong) rather than
    the row's; None when the key is the store's (the row is damaged)."""
    row = records.record(repository)
    if row.key_id is None or row.key_id == sealer.key_id:
        return None
    return _mismatch(row, sealer, OWN_KEY)


def settle(app: Appliance) -> None:
    """At ``certgate init``: the data directory's key opens the store, and the store records
    it (once, for a store made before the record)."""
    with app.store.transaction() as repository:
        # Locked before it is read: of two inits at once on a new store, the second waits
        # and then sees the first one's key, instead of recording its own over it.
        label = f"the master key {app.data_dir / MASTER_KEY_FILE}"
        row = check(repository, app.sealer, label, lock="update")
        if row.key_id is None:
            records.record_key_id(repository, app.sealer.key_id, made_at(app.data_dir))


def problem(app: Appliance) -> SealingError | None:
    """This node's key, if it is not the store's current one (for Status): stale or wrong."""
    with app.store.reading() as repository:
        return explain(repository, app.sealer)


def generation(app: Appliance) -> int:
    with app.store.reading() as repository:
        return records.record(repository).generation


@dataclass(frozen=True)
class Installed:
    key_file: Path
    generation: int


def install(data_dir: Path, database_url: str, key_file: Path) -> Installed:
    """Make the master key in ``key_file`` this node's, after checking that it is the store's
    current key: a stale or wrong key is refused and nothing is written."""
    if not data_dir.is_dir():
        raise DataDirectoryError(
            f"{data_dir} is not a data directory: to add a new node, run 'certgate init --join "
            "--master-key-file FILE'"
        )
    given = Sealer.from_file(key_file, todo=COPY_AGAIN)
    store = Store(database_url)
    try:
        if not store.is_ready():
            raise NotInitialisedError(
                f"the store {describe_database(database_url)} is not initialised or is older "
                "than this certgate: install a key on a node of an initialised store"
            )
        with store.transaction() as repository:
            row = check(repository, given, f"the master key file {key_file}", lock="update")
            if row.key_id is None:
                records.record_key_id(repository, given.key_id, made_at(data_dir))
            installed = Installed(data_dir / MASTER_KEY_FILE, row.generation)
        write_master_key(installed.key_file, given.master_key)
        with store.reading() as repository:
            served_state.replace_sealed(data_dir, repository.key)
    finally:
        store.close()
    return installed


@dataclass(frozen=True)
class Following:
    """What ``certgate serve`` found when it compared its key with the store's."""

    problem: SealingError | None = None  # stale or wrong: keep serving, load nothing new
    picked_up: int | None = None  # the generation of the key file it has just loaded


def follow(app: Appliance) -> Following:
    """Compare the running key with the store's, and when they differ take the data
    directory's key file if that is the store's key now (``certgate key install``, or the
    rotation made on this very node)."""
    with app.store.reading() as repository:
        row = records.record(repository)
        if row.key_id is None or row.key_id == app.sealer.key_id:
            return Following()
        mismatch = _mismatch(row, app.sealer, OWN_KEY)
    settle_pending(app.data_dir, row.key_id)
    try:
        on_disk = Sealer.from_file(app.data_dir / MASTER_KEY_FILE)
    except SealingError as error:
        return Following(problem=SealingError(f"{mismatch}; and the key file: {error}"))
    if on_disk.key_id != row.key_id:
        return Following(problem=mismatch)
    app.sealer = on_disk
    return Following(picked_up=row.generation)


def _mismatch(row: MasterKeyRow, sealer: Sealer, label: str, then: str = INSTALL) -> SealingError:
    retired = {entry.get("key_id"): entry for entry in row.retired or []}
    replaced = retired.get(sealer.key_id)
    current = f"generation {row.generation}"
    if row.changed_at is not None:
        current += f", made {format_time(row.changed_at)}"
    where = row.made_at or "a node of this cluster"
    if replaced is not None:
        return StaleMasterKeyError(
            f"stale master key: {label} is generation {replaced.get('generation')}, which "
            f"'certgate key rotate' replaced ({current}): copy the new key file from {where} "
            f"to this node and run '{then}'"
        )
    return WrongMasterKeyError(
        f"{label} does not open this store: it is neither the store's master key ({current}) "
        f"nor one it replaced. Copy master.key from {where}"
    )


def _open_a_sample(repository: Repository, sealer: Sealer, label: str) -> None:
    """A store that records no key id: the key must open one of its sealed keys (any of the
    first few, so one damaged row does not refuse the right key). An empty store opens."""
    query = select(KeyRow.public_key_fingerprint, KeyRow.sealed).order_by(KeyRow.id)
    with repository.session.no_autoflush:
        rows = repository.session.execute(query.limit(_SAMPLES)).all()
    for fingerprint, sealed in rows:
        try:
            sealer.unseal(fingerprint, sealed)
        except SealingError:
            continue
        return
    if rows:
        raise WrongMasterKeyError(
            f"{label} does not open this store: none of its private keys opens with it. Copy "
            "master.key from a node of this cluster"
        )
