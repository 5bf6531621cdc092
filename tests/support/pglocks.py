"""PostgreSQL: which sessions wait for a lock one connection holds, to make a race happen
in a chosen order (hold the lock, start both sides, wait until they queue, release)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Connection, create_engine, text

from tests.support.polling import eventually

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


def behind_uncommitted(url: str, statement: str, work: Callable[[], object]) -> object:
    """Run ``work`` in a thread while another connection holds ``statement`` uncommitted
    (another node's write caught half-way); commit it once ``work`` waits for its locks, or
    has ended without waiting. What ``work`` returned, or the exception it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as error:  # the caller asserts what it expected
            outcome.append(error)

    engine = create_engine(url)
    try:
        with engine.connect() as other, engine.connect() as observer:
            other.execute(text(statement))
            holder = backend_pid(other)
            worker = threading.Thread(target=run)
            worker.start()
            try:
                eventually(
                    lambda: outcome or waiting_for(observer, holder),
                    what="the work waits for the uncommitted write",
                )
            finally:
                other.commit()
                worker.join(30)
    finally:
        engine.dispose()
    return outcome[0] if outcome else None
