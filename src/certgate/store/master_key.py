"""The store's record of its master key (table ``master_key``, one row): which key seals its
secrets now, its generation, where it was made and the keys it replaced.

Locks: a transaction that seals something reads the row ``FOR SHARE`` (once), and a
rotation takes it ``FOR UPDATE`` before it reads the rows it re-seals. So on PostgreSQL a
seal and a rotation never interleave: the one that comes second waits, then sees the other's
outcome (a writer sees the new key id and refuses; a rotation sees the new row and re-seals
it). SQLite has one writer at a time (``BEGIN IMMEDIATE``) and ignores the clause.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import select

from certgate.store.models import MasterKeyRow
from certgate.store.repository import Repository

_ROW = 1
#: a transaction's session remembers the key id it checked (and locked) the row for
_CHECKED = "certgate.master-key-checked"


def record(repository: Repository, lock: Literal["share", "update"] | None = None) -> MasterKeyRow:
    query = select(MasterKeyRow).where(MasterKeyRow.id == _ROW)
    if lock is not None:  # and what the lock's read sees, not a copy read before it
        query = query.with_for_update(read=lock == "share").execution_options(
            populate_existing=True
        )
    with repository.session.no_autoflush:  # a row being filled in is not flushed half-made
        row = repository.session.scalar(query)
    if row is None:  # a store migrated before the row was seeded cannot be: 0012 seeds it
        raise LookupError("the master_key row is missing")
    return row


def checked(repository: Repository) -> str | None:
    """The key id this transaction checked the record against, if it did."""
    value = repository.session.info.get(_CHECKED)
    return value if isinstance(value, str) else None


def mark_checked(repository: Repository, key_id: str) -> None:
    repository.session.info[_CHECKED] = key_id


def replace(
    repository: Repository,
    row: MasterKeyRow,
    old_key_id: str,
    new_key_id: str,
    now: dt.datetime,
    made_at: str,
) -> None:
    """The rotation's last write: ``new_key_id`` is the current key, one generation on, and
    ``old_key_id`` (the one it re-sealed from) joins the retired keys."""
    retired = [*(row.retired or []), {"generation": row.generation, "key_id": old_key_id}]
    retired[-1]["retired_at"] = now.isoformat()
    row.retired = retired
    row.generation += 1
    row.key_id = new_key_id
    row.changed_at = now
    row.made_at = made_at
    repository.flush()


def record_key_id(repository: Repository, key_id: str, made_at: str) -> None:
    """Record the key of a store that has none recorded yet (new, or made before the
    record), and where a copy of it is."""
    row = record(repository, "update")
    if row.key_id is None:
        row.key_id = key_id
        row.made_at = made_at
