"""Noticing commits from any process (and, on PostgreSQL, any node) at once, cheaply.

``certgate serve`` must apply a change committed by another process (the CLI, another
worker, another node) within a fraction of a second, yet an idle appliance must not spend
its CPU on looking: a query through the ORM on the event loop's thread pool every 10 ms cost
an idle server 6 % of a core. So the watch has its own thread and its own driver connection.

- SQLite (one host): it asks ``PRAGMA data_version`` every ``interval``, which changes only
  when another connection has committed: an idle appliance reads no table at all.
- PostgreSQL (nodes on several hosts): it ``LISTEN``s on the store's channel, where every
  commit that bumps the revision sends ``NOTIFY`` (``store/revision.py``), so a change is
  pushed to every node when it commits and an idle node sends the server nothing. It still
  reads the revision every ``FALLBACK_INTERVAL`` (a notification cannot be lost unnoticed
  for longer, and a dead connection shows itself), and after every (re)connection, which
  catches up on whatever was committed while the connection was away. A connection that
  fails is made again with a growing pause (``RECONNECT_FIRST`` doubling to
  ``RECONNECT_MAX``); meanwhile the node serves what it has. A read of the revision that
  is not answered within ``READ_DEADLINE`` counts as a failed connection: one that went
  silent (a cut network, a firewall or NAT that forgot it: no reset) would otherwise keep
  the watch waiting until the kernel gives up, a quarter of an hour, deaf to every change.
  ``listen=False`` polls PostgreSQL like SQLite instead (for a connection pooler that does
  not pass ``LISTEN``, and as the benchmark's baseline).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from psycopg import sql
from sqlalchemy import Engine

from certgate.store.revision import CHANNEL

log = logging.getLogger("certgate.store")

_REVISION = "SELECT value FROM revision WHERE id = 1"
#: Seconds between reads of the revision while listening: a safety net, not the path.
FALLBACK_INTERVAL = 2.0
#: Longest wait for a notification before the stop flag is looked at again.
STOP_CHECK = 0.2
RECONNECT_FIRST = 0.1
RECONNECT_MAX = 5.0
#: Seconds a read of the revision may go unanswered before its connection counts as dead.
READ_DEADLINE = 5.0
#: The listening connection's application_name, followed by its channel.
WATCH_NAME = "certgate watch"


class RevisionWatch:
    """Calls ``on_change`` from its own thread whenever the committed revision changes."""

    def __init__(
        self,
        engine: Engine,
        on_change: Callable[[], object],
        interval: float,
        *,
        listen: bool = True,
    ) -> None:
        self._engine = engine
        self._on_change = on_change
        self._interval = interval
        self._listen = listen and engine.dialect.name == "postgresql"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="revision-watch", daemon=True)
        self._connection: Any = None
        self._driver: Any = None
        self._data_version: int | None = None
        self._revision: int | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():  # never started when the first plan failed
            self._thread.join()

    def _follow(self) -> None:
        try:
            if self._listen:
                self._listen_for_notifications()
            else:
                self._poll()
        finally:
            self._disconnect()

    def _poll(self) -> None:
        failing = False
        while not self._stopped.wait(self._interval):
            try:
                changed = self._read_changed()
            except Exception as error:  # the database may be restarting: keep watching
                if not failing:
                    log.error("cannot read the store's revision: %s", _first_line(error))
                failing = True
                self._disconnect()
                continue
            failing = False
            if changed:
                self._on_change()

    def _listen_for_notifications(self) -> None:
        pause = RECONNECT_FIRST
        failing = False
        while not self._stopped.is_set():
            try:
                self._connect()
                connection = self._driver
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT {CHANNEL}")
                    channel = cursor.fetchone()[0]
                # Named in pg_stat_activity, so an operator (and a test) can find it.
                connection.execute(
                    "SELECT set_config('application_name', %s, false)", [f"{WATCH_NAME} {channel}"]
                )
                connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                if failing:
                    log.info("listening for the store's changes again (reconnected)")
                failing, pause = False, RECONNECT_FIRST
                self._hear(connection)  # returns when stopped
            except Exception as error:  # the database may be restarting or away
                if not failing:
                    log.error(
                        "cannot follow the store's changes (reconnecting, serving the last "
                        "state meanwhile): %s",
                        _first_line(error),
                    )
                failing = True
                self._disconnect()
                self._stopped.wait(pause)
                pause = min(pause * 2, RECONNECT_MAX)

    def _hear(self, connection: Any) -> None:
        """Until stopped: a change for each notification, and a read of the revision now
        (whatever was committed while not listening) and every ``FALLBACK_INTERVAL``."""
        looked = float("-inf")
        while not self._stopped.is_set():
            if time.monotonic() - looked >= FALLBACK_INTERVAL:
                looked = time.monotonic()
                if self._read_changed():
                    self._on_change()
            for notification in connection.notifies(timeout=STOP_CHECK, stop_after=1):
                with contextlib.suppress(ValueError):
                    self._revision = int(notification.payload)
                self._on_change()

    def _read_changed(self) -> bool:
        """True when the revision differs from the one read last time."""
        cursor = self._connect().cursor()
        try:
            if self._engine.dialect.name == "sqlite":
                cursor.execute("PRAGMA data_version")
                data_version = cursor.fetchone()[0]
                if data_version == self._data_version:
                    return False
                self._data_version = data_version
            with self._deadline():
                cursor.execute(_REVISION)
                row = cursor.fetchone()
        finally:
            cursor.close()
        revision = int(row[0]) if row else 0
        changed = revision != self._revision  # the first read counts: nothing is missed
        self._revision = revision
        return changed

    @contextlib.contextmanager
    def _deadline(self) -> Iterator[None]:
        """Shuts the connection's socket when the read inside takes ``READ_DEADLINE``, so
        the read fails at once (and the watch connects again) instead of waiting on a
        connection that went silent. SQLite's are files: nothing to wait for."""
        if self._engine.dialect.name == "sqlite":
            yield
            return
        shut = threading.Event()
        timer = threading.Timer(READ_DEADLINE, self._shut_socket, [shut])
        timer.daemon = True
        timer.start()
        try:
            yield
        except Exception:
            if shut.is_set():  # said as what happened, not as the shut socket's error
                raise TimeoutError(
                    f"the database did not answer within {READ_DEADLINE:g} s"
                ) from None
            raise
        finally:
            timer.cancel()

    def _shut_socket(self, shut: threading.Event) -> None:
        # A copy of the descriptor, shut both ways: the driver's own stays its to close.
        with (
            contextlib.suppress(Exception),  # closed meanwhile: nothing to shut
            socket.socket(fileno=os.dup(self._driver.pgconn.socket)) as silent,
        ):
            shut.set()
            silent.shutdown(socket.SHUT_RDWR)

    def _connect(self) -> Any:
        if self._connection is None:
            connection = self._engine.raw_connection()
            self._driver = connection.driver_connection  # psycopg's, for LISTEN
            if self._engine.dialect.name != "sqlite":  # SQLite's are autocommit already
                self._driver.autocommit = True
            connection.detach()  # its own: never handed back to the pool in autocommit
            self._connection = connection
        return self._connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            # The driver's connection closed, the pool's wrapper invalidated: closing the
            # wrapper would first roll back on a dead connection (and SQLAlchemy logs that
            # failure with a traceback).
            with contextlib.suppress(Exception):  # already broken: nothing more to release
                self._driver.close()
            with contextlib.suppress(Exception):
                self._connection.invalidate()
            self._connection = None
            self._data_version = None


def _first_line(error: Exception) -> str:
    """psycopg's messages go on over several lines (libpq's hints); a log line is one."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
