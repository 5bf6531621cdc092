"""PostgreSQL: which sessions wait for a lock one connection holds, to make a race happen
in a chosen order (hold the lock, start both sides, wait until they queue, release)."""

from __future__ import annotations

from sqlalchemy import Connection, text

_WAITING = text(
    "SELECT count(*) FROM pg_stat_activity a WHERE :holder = ANY(pg_blocking_pids(a.pid)) "
    "OR EXISTS (SELECT FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid)) "
    "AND :holder = ANY(pg_blocking_pids(b.pid)))"
)


def backend_pid(connection: Connection) -> int:
    return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def waiting_for(observer: Connection, holder: int) -> int:
    """How many sessions wait for a lock ``holder`` (a backend pid) holds, directly or queued
    behind one that does (a second waiter for a row waits for the first); ``observer``'s
    transaction is ended first, so each look is a new snapshot of pg_stat_activity."""
    observer.rollback()
    return int(observer.execute(_WAITING, {"holder": holder}).scalar_one())
