"""Noticing commits from any process, cheaply enough to look a hundred times a second.

``certgate serve`` must apply a change committed by another process (the CLI, another
worker) within a fraction of a second, yet an idle appliance must not spend its CPU on
looking: a query through the ORM on the event loop's thread pool every 10 ms cost an idle
server 6 % of a core. So the watch has its own thread and its own driver connection, and on
SQLite asks ``PRAGMA data_version`` first, which changes only when another connection has
committed: an idle appliance reads no table at all.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("certgate.store")

_REVISION = "SELECT value FROM revision WHERE id = 1"


class RevisionWatch:
    """Calls ``on_change`` from its own thread whenever the committed revision changes."""

    def __init__(self, engine: Engine, on_change: Callable[[], object], interval: float) -> None:
        self._engine = engine
        self._on_change = on_change
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="revision-watch", daemon=True)
        self._connection: Any = None
        self._data_version: int | None = None
        self._revision: int | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():  # never started when the first plan failed
            self._thread.join()

    def _follow(self) -> None:
        failing = False
        try:
            while not self._stopped.wait(self._interval):
                try:
                    changed = self._read_changed()
                except Exception as error:  # the database may be restarting: keep watching
                    if not failing:
                        log.error("cannot read the store's revision: %s", error)
                    failing = True
                    self._disconnect()
                    continue
                failing = False
                if changed:
                    self._on_change()
        finally:
            self._disconnect()

    def _read_changed(self) -> bool:
        """True when the revision differs from the one read last time."""
        cursor = self._cursor()
        try:
            if self._engine.dialect.name == "sqlite":
                cursor.execute("PRAGMA data_version")
                data_version = cursor.fetchone()[0]
                if data_version == self._data_version:
                    return False
                self._data_version = data_version
            cursor.execute(_REVISION)
            row = cursor.fetchone()
        finally:
            cursor.close()
        revision = int(row[0]) if row else 0
        changed = revision != self._revision  # the first read counts: nothing is missed
        self._revision = revision
        return changed

    def _cursor(self) -> Any:
        if self._connection is None:
            connection = self._engine.raw_connection()
            if self._engine.dialect.name != "sqlite":  # SQLite's are autocommit already
                connection.driver_connection.autocommit = True  # type: ignore[union-attr]
            connection.detach()  # its own: never handed back to the pool in autocommit
            self._connection = connection
        return self._connection.cursor()

    def _disconnect(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to release
                self._connection.close()
            self._connection = None
            self._data_version = None
