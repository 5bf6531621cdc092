"""The revision the listeners watch moves for changes to what is served, and only for them;
requests that only read (Bearer-token calls included) never wait for the store's writer.
On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from cryptography.hazmat.primitives import serialization

from certgate.pki.export import ExportOptions
from certgate.service import (
    auth,
    certificates,
    exports,
    imports,
    networking,
    nodes,
    tls_settings,
    users,
)
from certgate.service.appliance import Appliance
from certgate.service.audit import Actor
from certgate.store import accounts
from certgate.store.models import ApiTokenRow
from tests.support.pki import make_chain

PASSWORD = "a long enough password"
PEM = serialization.Encoding.PEM


def bumps(app: Appliance, action: Callable[[], object]) -> int:
    before = app.store.revision()
    action()
    return app.store.revision() - before


def import_leaf(app: Appliance, host: str = "www.example.com") -> int:
    chain = make_chain(host)
    key = chain.leaf_key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    entries = imports.import_files(app, [("leaf.pem", chain.leaf.public_bytes(PEM) + key)])
    [certificate] = [entry for entry in entries if entry.kind == "certificate"]
    assert certificate.id is not None
    return certificate.id


def test_account_writes_do_not_bump_revision(appliance: Appliance) -> None:
    def accounts_work() -> None:
        users.create_user(appliance, "alice", PASSWORD, "admin")
        users.change_password(appliance, "alice", "another long password")
        value, token = auth.create_token(
            appliance, "bot", "auditor", created_by=Actor("alice", "c")
        )
        auth.resolve_token(appliance, value, "c")
        auth.revoke_token(appliance, token.id, actor=Actor("alice", "c"))
        session = auth.login(appliance, "alice", "another long password", "c", auth.LoginThrottle())
        auth.resolve_session(appliance, session.cookie_value, "c")
        auth.logout(appliance, session.cookie_value, "c")
        users.delete_user(appliance, "alice")

    assert bumps(appliance, accounts_work) == 0


def test_export_by_auditor_does_not_bump_revision(appliance: Appliance) -> None:
    leaf = import_leaf(appliance)
    views = certificates.cached_certificate_views(appliance)
    options = ExportOptions(include_certificate=True)

    def three_exports() -> None:
        for _ in range(3):
            exports.export_certificate(
                appliance, leaf, options, actor=Actor("token:eve", "192.0.2.9")
            )

    assert bumps(appliance, three_exports) == 0
    # The certificate views every page and list uses were kept, not rebuilt.
    kept = certificates.cached_certificate_views(appliance)
    assert len(kept) == len(views) and all(a is b for a, b in zip(kept, views, strict=True))


def test_each_change_to_what_is_served_bumps_revision_once(appliance: Appliance) -> None:
    leaf = import_leaf(appliance)
    assert bumps(appliance, lambda: import_leaf(appliance, "two.example.com")) == 1
    assert bumps(appliance, lambda: certificates.rename(appliance, leaf, "renamed")) == 1
    assert bumps(appliance, lambda: networking.add_address(appliance, "127.0.0.9")) == 1
    assert (
        bumps(appliance, lambda: networking.assign(appliance, ["127.0.0.9"], leaf, confirm=True))
        == 1
    )
    assert (
        bumps(appliance, lambda: networking.remove_address(appliance, "127.0.0.9", confirm=True))
        == 1
    )
    assert bumps(appliance, lambda: tls_settings.update_settings(appliance, https_port=8443)) == 1

    def delete() -> None:
        certificates.delete_certificate(appliance, leaf, reassign_to_factory=True)

    assert bumps(appliance, delete) == 1


def test_a_change_that_changes_nothing_does_not_bump_revision(appliance: Appliance) -> None:
    leaf = import_leaf(appliance)
    # The same name again, the same certificate imported again: nothing is written.
    assert bumps(appliance, lambda: certificates.rename(appliance, leaf, "www.example.com")) == 0
    view = certificates.show_certificate(appliance, leaf)
    assert bumps(appliance, lambda: certificates.rename(appliance, leaf, view.friendly_name)) == 0


def test_a_node_heartbeat_does_not_bump_revision(appliance: Appliance) -> None:
    started = appliance.now()
    listening = [{"address": "127.0.0.1", "port": 8443, "state": "listening"}]

    def beats() -> None:
        for listeners in ([], listening, listening):
            assert nodes.heartbeat(appliance, "node-a", started, 5.0, listeners)
        nodes.stopped(appliance, "node-a", started, 5.0)

    assert bumps(appliance, beats) == 0
    [node] = nodes.list_nodes(appliance)
    assert (node.name, node.state, node.listeners) == ("node-a", nodes.NodeState.STOPPED, [])


@contextmanager
def writer_holding_the_token(appliance: Appliance, token_id: int) -> Iterator[None]:
    """Another writer in the middle of a long transaction: it holds SQLite's write lock, and
    on PostgreSQL the very row a token's last use is recorded in."""
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with appliance.store.transaction("import") as repository:
            row = accounts.token_by_id(repository, token_id)
            assert row is not None
            row.last_used_at = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
            repository.flush()
            holding.set()
            release.wait()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(30)
        yield
    finally:
        release.set()
        thread.join()


def last_used(appliance: Appliance, token_id: int) -> dt.datetime | None:
    with appliance.store.reading() as repository:
        row = repository.session.get(ApiTokenRow, token_id)
        assert row is not None
        return row.last_used_at


def test_bearer_token_request_answers_while_a_writer_holds_the_lock(
    appliance: Appliance,
) -> None:
    value, token = auth.create_token(appliance, "deploy bot", "admin")  # never used: stale
    with writer_holding_the_token(appliance, token.id), ThreadPoolExecutor(2) as pool:
        # Without the fix each call waits for the writer (SQLite: 30 s, then an error).
        known = pool.submit(auth.resolve_token, appliance, value, "c")
        unknown = pool.submit(auth.resolve_token, appliance, "cgt_" + "x" * 43, "c")
        principal = known.result(timeout=20)
        assert principal is not None and principal.username == "token:deploy bot"
        assert unknown.result(timeout=20) is None
    skipped = last_used(appliance, token.id)  # the writer's value: ours was skipped
    assert skipped is not None and skipped.year == 2000
    assert auth.resolve_token(appliance, value, "c") is not None
    recorded = last_used(appliance, token.id)  # and recorded once the store was free
    assert recorded is not None and recorded.year > 2000


def test_session_request_answers_while_a_writer_holds_the_lock(appliance: Appliance) -> None:
    users.change_password(appliance, "admin", PASSWORD)
    session = auth.login(appliance, "admin", PASSWORD, "c", auth.LoginThrottle())
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)  # last seen is now stale
    appliance.clock = lambda: later
    _, token = auth.create_token(appliance, "bot", "auditor")
    with writer_holding_the_token(appliance, token.id), ThreadPoolExecutor(1) as pool:
        principal = pool.submit(auth.resolve_session, appliance, session.cookie_value, "c")
        resolved = principal.result(timeout=20)
        assert resolved is not None and resolved.username == "admin"
