"""On PostgreSQL a commit that changes what is served is pushed to every listening node
(NOTIFY, delivered on commit only, on a channel of the store's own schema), and the watch
that listens makes its connection again when it is cut, catching up on what it missed."""

from __future__ import annotations

import contextlib
import socket
import threading

import psycopg
import pytest
from sqlalchemy import create_engine, make_url, text

from certgate.service import networking
from certgate.service.appliance import Appliance
from certgate.store import revision
from certgate.store.revision import CHANNEL
from certgate.store.watch import FALLBACK_INTERVAL, READ_DEADLINE, WATCH_NAME, RevisionWatch
from tests.support.polling import eventually


@pytest.fixture
def database_url(postgresql_url: str) -> str:
    """Only PostgreSQL here (the conftest's ``appliance`` uses it): SQLite has no NOTIFY."""
    return postgresql_url


def _channel(app: Appliance) -> str:
    with app.store.engine.connect() as connection:
        return str(connection.execute(text(f"SELECT {CHANNEL}")).scalar_one())


def _listener(app: Appliance) -> psycopg.Connection:
    url = make_url(app.store.url).set(drivername="postgresql")
    connection = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
    connection.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(_channel(app))))
    return connection


def test_a_commit_notifies_the_new_revision_and_a_rolled_back_one_nothing(
    appliance: Appliance,
) -> None:
    app = appliance
    assert _channel(app).endswith(make_url(app.store.url).query["options"].split("=")[-1])
    listener = _listener(app)
    try:
        before = app.store.revision()
        with pytest.raises(RuntimeError), app.store.transaction() as repository:
            revision.mark(repository.session.connection())  # as a served write does
            repository.commit_revision()  # the bump and its NOTIFY, then no commit
            raise RuntimeError("rolled back")
        networking.add_address(app, "127.0.0.9")
        [heard] = listener.notifies(timeout=5, stop_after=1)
        assert heard.payload == str(before + 1) == str(app.store.revision())
        networking.remove_address(app, "127.0.0.9", confirm=True)
        [heard] = listener.notifies(timeout=5, stop_after=1)
        assert heard.payload == str(before + 2)
    finally:
        listener.close()


def _watch_backends(app: Appliance) -> list[int]:
    with app.store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": f"{WATCH_NAME} {_channel(app)}"[:63]},
        )
        return [row[0] for row in rows]


def test_the_watch_reconnects_when_its_connection_is_cut_and_catches_up(
    appliance: Appliance,
) -> None:
    app = appliance
    changes: list[int] = []
    lock = threading.Lock()

    def on_change() -> None:
        with lock:
            changes.append(app.store.revision())

    watch = RevisionWatch(app.store.engine, on_change, 0.01)
    watch.start()
    try:
        [backend] = eventually(lambda: _watch_backends(app), what="the watch listens")
        eventually(lambda: changes, what="the first read")
        networking.add_address(app, "127.0.0.9")
        eventually(lambda: app.store.revision() in changes, what="a commit heard")
        with app.store.engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        networking.remove_address(app, "127.0.0.9", confirm=True)  # while away
        eventually(lambda: app.store.revision() in changes, what="the missed commit caught up")
        [again] = eventually(lambda: _watch_backends(app), what="listening again")
        assert again != backend
        networking.add_address(app, "127.0.0.10")
        eventually(lambda: app.store.revision() in changes, what="a commit heard after")
    finally:
        watch.stop()


class _Blackhole:
    """A TCP relay to PostgreSQL that can go silent: after ``cut()`` the connections it
    carries stay open but carry nothing more, either way (a network cut, a firewall that
    forgot them: no reset, no FIN); connections made after it are carried as before."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._cut: set[socket.socket] = set()
        self._carried: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.update(self._carried)

    def close(self) -> None:
        self._server.close()
        for carried in self._carried:
            with contextlib.suppress(OSError):  # shut first: a pump may be waiting on it
                carried.shutdown(socket.SHUT_RDWR)
            carried.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._server.accept()
                upstream = socket.create_connection(self._target)
                self._carried += [client, upstream]
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if source not in self._cut:
                    sink.sendall(data)


def test_the_watch_reconnects_when_its_connection_goes_silent(
    appliance: Appliance, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection that dies without a word (no reset: a cut network, a firewall or NAT that
    dropped it) must not leave the node deaf to every later change."""
    app = appliance
    url = make_url(app.store.url)
    relay = _Blackhole(url.host or "127.0.0.1", url.port or 5432)
    engine = create_engine(url.set(host="127.0.0.1", port=relay.port))
    changes: list[int] = []
    watch = RevisionWatch(engine, lambda: changes.append(app.store.revision()), 0.01)
    watch.start()
    try:
        eventually(lambda: changes, what="the first read")
        relay.cut()
        networking.add_address(app, "127.0.0.9")
        eventually(
            lambda: app.store.revision() in changes,
            timeout=FALLBACK_INTERVAL + READ_DEADLINE + 10,
            what="a commit made after the watch's connection went silent",
        )
        assert f"the database did not answer within {READ_DEADLINE:g} s" in caplog.text
    finally:
        relay.close()  # before the stop: a watch still waiting on its read hears the close
        watch.stop()
        engine.dispose()
