"""On PostgreSQL a commit that changes what is served is pushed to every listening node
(NOTIFY, delivered on commit only, on a channel of the store's own schema), and the watch
that listens makes its connection again when it is cut, catching up on what it missed."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import make_url, text

from certgate.service import networking
from certgate.service.appliance import Appliance
from certgate.store import revision
from certgate.store.revision import CHANNEL
from certgate.store.watch import WATCH_NAME, RevisionWatch
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
