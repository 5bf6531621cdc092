"""The database away (issue 12, point 4), against a PostgreSQL server of the test's own
(``tests/support/postgres_server.py``) that is stopped and started again: every node goes on
serving its last committed state, every face refuses a change with "store unavailable"
(CLI exit 1 and one line, API 503 problem+json, an error page), and the nodes catch up on
every change once they reach the database again."""

from __future__ import annotations

import base64
import dataclasses
import json
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography import x509

from certgate.service.appliance import STATE_FILE, STATUS_FILE
from certgate.service.nodes import HEARTBEAT_ENV
from tests.api.client import Server, mint_token, problem
from tests.support.net import free_port
from tests.support.openssl import served_chain
from tests.support.pki import fingerprint, make_chain
from tests.support.polling import eventually
from tests.support.postgres_server import PostgresServer, postgres_server, standby_of
from tests.support.served import handshake_load, served_fingerprint, wait_until_served
from tests.support.server import (
    RunningAppliance,
    import_with_key,
    joined_node,
    run_cli,
    running_appliance,
    serving,
)

ADDRESS = "127.0.0.2"
#: What a refused change says first, on every face.
UNAVAILABLE = "store unavailable: the database 127.0.0.1:{port}/certgate cannot be reached"


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _quick_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HEARTBEAT_ENV, "0.5")  # lost after 1.5 s without a beat


def admin(running: RunningAppliance) -> Server:
    """The appliance with an administrator's API token, made while the database is up."""
    return Server(running, mint_token(running.data_dir, "tests", "admin", running.database_url))


def refused_line(done: subprocess.CompletedProcess[str], port: int) -> str:
    """The one line a CLI command refused for the store's absence prints (exit 1)."""
    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    assert line.startswith("error: " + UNAVAILABLE.format(port=port)), line
    return line


def test_a_change_while_the_database_is_stopped_is_refused_on_every_face(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    http_port = free_port()
    with running_appliance(
        tmp_path / "a",
        ADDRESS,
        database_url=postgres.url,
        serve_options=("--node", "node-a", "--http-port", str(http_port)),
    ) as a:
        server = admin(a)
        session = server.login()
        presented = served_fingerprint(ADDRESS, a.port)

        postgres.stop("immediate")
        eventually(lambda: "cannot follow the store's changes" in a.log_text(), what="noticed")

        # The CLI: exit 1, one line, for a change and for a read.
        refused_line(
            run_cli(a.data_dir, "ip", "add", "127.0.0.9", check=False, **a.env), postgres.port
        )
        refused_line(run_cli(a.data_dir, "cert", "list", check=False, **a.env), postgres.port)
        # Status, a read: the store is away, and what the listeners do meanwhile (as on the
        # Status page), not only the error.
        down = run_cli(a.data_dir, "status", check=False, **a.env)
        assert down.returncode == 1, down
        [error, note] = down.stderr.splitlines()
        assert error.startswith("error: " + UNAVAILABLE.format(port=postgres.port)), error
        assert note == (
            "note: this node's certgate serve goes on presenting the last state it read, "
            "until the store can be reached again"
        )

        # The API: 503 problem+json, for a change and for a read.
        with server.client() as api:
            added = problem(
                api.post("/addresses", json={"address": "127.0.0.9"}), 503, "store-unavailable"
            )
            listed = problem(api.get("/certificates"), 503, "store-unavailable")
        for body in (added, listed):
            assert body["detail"].startswith(UNAVAILABLE.format(port=postgres.port)), body

        # The pages: an error page, for a form posted and a page read (never a 500).
        with server.pages(session) as pages:
            posted = pages.post(
                "/networking",
                data={"csrf_token": str(session.principal.csrf_token), "address": "127.0.0.9"},
            )
            read = pages.get("/status")
        for answer in (posted, read):
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("text/html")
            assert "Store unavailable: the database" in answer.text

        # Plain HTTP: an ACME challenge cannot be read (503, the CA asks again; nothing about
        # the database told to the internet), the redirect to HTTPS goes on.
        plain = f"http://{ADDRESS}:{http_port}"
        challenge = httpx.get(plain + "/.well-known/acme-challenge/" + "A" * 43)
        assert (challenge.status_code, challenge.text) == (503, "store unavailable\n")
        assert httpx.get(plain + "/appliance").status_code == 308

        # What is served goes on.
        assert served_fingerprint(ADDRESS, a.port) == presented

        postgres.start()
        run_cli(a.data_dir, "ip", "add", "127.0.0.9", **a.env)
        eventually(lambda: "listening on 127.0.0.9" in a.log_text(), what="the change applied")
        assert "Traceback" not in a.log_text()


@pytest.fixture
def nodes(
    postgres: PostgresServer, tmp_path: Path
) -> Iterator[tuple[RunningAppliance, RunningAppliance]]:
    """Two nodes on ``postgres``; node-b connects as a role of its own, ``node_b``, so that
    it alone can be kept from the database."""
    with psycopg.connect(postgres.conninfo(), autocommit=True) as connection:
        connection.execute("CREATE ROLE node_b LOGIN SUPERUSER")
    node_b_url = postgres.url.replace("postgres@", "node_b@")
    with (
        running_appliance(
            tmp_path / "a", ADDRESS, database_url=postgres.url, serve_options=("--node", "node-a")
        ) as a,
        joined_node(a, tmp_path / "b", ("--node", "node-b"), node_b_url) as b,
    ):
        yield a, b


def assign_new_certificate(running: RunningAppliance, tmp_path: Path, name: str) -> str:
    """A new certificate for ``name`` imported with its key and assigned to ADDRESS through
    ``running``'s CLI; its fingerprint."""
    chain = make_chain(name)
    site = import_with_key(running, tmp_path, chain)
    run_cli(
        running.data_dir,
        "ip",
        "assign",
        ADDRESS,
        "--cert",
        str(site),
        "--confirm",
        **running.env,
    )
    return fingerprint(chain.leaf)


def node_states(running: RunningAppliance) -> dict[str, str]:
    listed = json.loads(run_cli(running.data_dir, "node", "list", "--json", **running.env).stdout)
    return {node["name"]: node["state"] for node in listed}


def test_nodes_serve_on_while_the_database_is_stopped_and_catch_up_once_it_is_back(
    postgres: PostgresServer,
    nodes: tuple[RunningAppliance, RunningAppliance],
    tmp_path: Path,
) -> None:
    a, b = nodes
    server = admin(a)
    presented = served_fingerprint(ADDRESS, a.port)
    eventually(lambda: node_states(a) == {"node-a": "alive", "node-b": "alive"}, what="alive")
    targets = [(ADDRESS, a.port), (ADDRESS, b.port)]
    with handshake_load(targets) as load:
        eventually(lambda: load.done >= 20, what="handshakes before the stop")
        postgres.stop("immediate")  # every backend ends at once: the LISTENs are cut
        for node in (a, b):
            eventually(
                lambda node=node: "cannot follow the store's changes" in node.log_text(),
                what=f"{node.data_dir.name} noticed",
            )
        before = load.done
        refused_line(
            run_cli(a.data_dir, "ip", "add", "127.0.0.9", check=False, **a.env), postgres.port
        )
        with server.client() as api:
            problem(api.post("/addresses", json={"address": "127.0.0.9"}), 503, "store-unavailable")
        eventually(lambda: load.done >= before + 20, what="handshakes while it is down")
        for port in (a.port, b.port):
            assert served_fingerprint(ADDRESS, port) == presented

        postgres.start()
        # A change made now (the nodes may still be waiting to reconnect) reaches both wires.
        leaf = assign_new_certificate(a, tmp_path, "after.example.test")
        for port in (a.port, b.port):
            wait_until_served(ADDRESS, port, leaf, timeout=30)
        after = load.done
        eventually(lambda: load.done >= after + 20, what="handshakes after the change")
    assert load.failures == []
    print(f"{load.done} handshakes, none failed")

    eventually(lambda: node_states(a) == {"node-a": "alive", "node-b": "alive"}, what="beating")
    for node in (a, b):
        log = node.log_text()
        assert "listening for the store's changes again" in log
        assert "Traceback" not in log


def test_a_node_kept_from_the_database_catches_up_on_the_changes_made_meanwhile(
    postgres: PostgresServer,
    nodes: tuple[RunningAppliance, RunningAppliance],
    tmp_path: Path,
) -> None:
    """node-b alone loses the database (its role may not log in; its connections are
    ended) while node-a changes what is served: node-b hears no NOTIFY of it, serves its
    last state meanwhile, and catches up by reading the revision when it reconnects."""
    a, b = nodes
    presented = served_fingerprint(ADDRESS, b.port)
    # node-b's first heartbeat is in the store before it is cut off (else it is never lost)
    eventually(lambda: node_states(a).get("node-b") == "alive", what="node-b registered")
    with psycopg.connect(postgres.conninfo(), autocommit=True) as connection:
        connection.execute("ALTER ROLE node_b NOLOGIN")
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'node_b'"
        )
    eventually(lambda: "cannot follow the store's changes" in b.log_text(), what="cut off")
    eventually(lambda: node_states(a).get("node-b") == "lost", what="node-b's heartbeat stops")

    leaf = assign_new_certificate(a, tmp_path, "meanwhile.example.test")
    wait_until_served(ADDRESS, a.port, leaf)
    assert served_fingerprint(ADDRESS, b.port) == presented  # its last state, still

    with psycopg.connect(postgres.conninfo(), autocommit=True) as connection:
        connection.execute("ALTER ROLE node_b LOGIN")
    wait_until_served(ADDRESS, b.port, leaf, timeout=30)
    eventually(lambda: node_states(a).get("node-b") == "alive", what="node-b beats again")
    assert "Traceback" not in b.log_text()


def cached_state(running: RunningAppliance) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((running.data_dir / STATE_FILE).read_text())
    return document


@contextmanager
def started_with_the_database_down(
    postgres: PostgresServer, node: RunningAppliance
) -> Iterator[RunningAppliance]:
    """node-b, stopped, started again once the database is stopped."""
    postgres.stop("immediate")
    with serving(
        node.data_dir, ADDRESS, node.admin_password, ("--node", "node-b"), node.database_url
    ) as again:
        yield again


def presented_leaf(running: RunningAppliance) -> str:
    [presented, *_] = served_chain(ADDRESS, running.port)
    return fingerprint(x509.load_pem_x509_certificate(presented))


def test_a_node_started_while_the_database_is_down_serves_its_cached_state(
    postgres: PostgresServer,
    nodes: tuple[RunningAppliance, RunningAppliance],
    tmp_path: Path,
) -> None:
    a, b = nodes
    leaf = assign_new_certificate(a, tmp_path, "cached.example.test")
    wait_until_served(ADDRESS, b.port, leaf)
    eventually(lambda: cached_state(b)["addresses"] == {ADDRESS: leaf}, what="B saved it")

    # The cache holds the key sealed exactly as the store holds it, and no key in clear.
    path = b.data_dir / STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in path.read_bytes()
    entry = cached_state(b)["certificates"][leaf]
    with psycopg.connect(postgres.conninfo()) as connection:
        stored = connection.execute(
            "SELECT sealed FROM private_keys WHERE public_key_fingerprint = %s",
            [entry["key_id"]],
        ).fetchone()
    assert stored is not None and base64.b64decode(entry["sealed_key"]) == bytes(stored[0])
    revision = cached_state(b)["revision"]
    session = Server(b, "").login()  # a page session, opened while the database is up

    b.process.terminate()
    assert b.process.wait(timeout=30) == 0
    with started_with_the_database_down(postgres, b) as again:
        # openssl, an independent client, sees the cached certificate on the wire.
        assert presented_leaf(again) == leaf
        status_path = again.data_dir / STATUS_FILE
        assert json.loads(status_path.read_text())["cached_state"]["revision"] == revision
        log = again.log_text()
        assert f"serving the cached state of revision {revision}, saved at" in log, log
        refused_line(
            run_cli(again.data_dir, "ip", "add", "127.0.0.9", check=False, **again.env),
            postgres.port,
        )
        with Server(again, "").pages(session) as pages:
            page = pages.get("/status")
        assert page.status_code == 503
        assert f"presents the cached state of revision {revision}, saved at" in page.text

        # The store back: node-b reads it (and leaves the cached state) by itself.
        postgres.start()
        eventually(lambda: "the store can be read again" in again.log_text(), timeout=30)
        eventually(
            lambda: json.loads(status_path.read_text())["cached_state"] is None,
            what="the status no longer says cached",
        )
        other = assign_new_certificate(a, tmp_path, "after-cache.example.test")
        wait_until_served(ADDRESS, again.port, other)
        assert "Traceback" not in again.log_text()


@pytest.mark.parametrize("rotated_on", ["node-b", "node-a"])
def test_a_node_whose_key_was_rotated_while_it_was_stopped_still_serves_its_cache(
    postgres: PostgresServer,
    nodes: tuple[RunningAppliance, RunningAppliance],
    tmp_path: Path,
    rotated_on: str,
) -> None:
    """'certgate key rotate' on node B while its serve is stopped (or on node A, and 'key
    install' on B), then B started while the database is down: the cached state opens with
    B's new key (it was re-sealed with it), so B presents its certificate rather than
    refusing every address."""
    a, b = nodes
    leaf = assign_new_certificate(a, tmp_path, "rotated.example.test")
    wait_until_served(ADDRESS, b.port, leaf)
    eventually(lambda: cached_state(b)["addresses"] == {ADDRESS: leaf}, what="B saved it")
    b.process.terminate()
    assert b.process.wait(timeout=30) == 0
    if rotated_on == "node-b":
        run_cli(b.data_dir, "key", "rotate", **b.env)
    else:
        run_cli(a.data_dir, "key", "rotate", **a.env)
        new_key = a.data_dir / "master.key"
        run_cli(b.data_dir, "key", "install", "--master-key-file", str(new_key), **b.env)
    with started_with_the_database_down(postgres, b) as again:
        assert presented_leaf(again) == leaf


# --- several hosts in one connection string: libpq tries them in turn --------------------------


def test_both_forms_of_a_multi_host_string_skip_a_host_that_is_down(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """The URL form and libpq's keyword form reach psycopg as written: the first host (a
    port nobody listens on) is skipped, the second serves, LISTEN included."""
    dead = free_port()
    url = (
        f"postgresql://postgres@127.0.0.1:{dead},127.0.0.1:{postgres.port}/certgate"
        "?target_session_attrs=read-write"
    )
    keywords = (
        f"host=127.0.0.1,127.0.0.1 port={dead},{postgres.port} user=postgres dbname=certgate "
        "target_session_attrs=read-write"
    )
    with running_appliance(tmp_path / "a", ADDRESS, database_url=url) as a:
        # The CLI through the other form, on the same store: served at once (NOTIFY).
        keyword_cli = {"CERTGATE_DATABASE_URL": keywords}
        leaf = assign_new_certificate(
            dataclasses.replace(a, database_url=keywords), tmp_path, "multi.example.test"
        )
        wait_until_served(ADDRESS, a.port, leaf)
        listed = json.loads(run_cli(a.data_dir, "cert", "list", "--json", **keyword_cli).stdout)
        assert leaf in {entry["fingerprint_sha256"] for entry in listed}

        postgres.stop("immediate")
        # Said naming every host, never a driver's traceback.
        for env in (a.env, keyword_cli):
            done = run_cli(a.data_dir, "ip", "add", "127.0.0.9", check=False, **env)
            assert done.returncode == 1, done
            [line] = done.stderr.splitlines()
            servers = f"127.0.0.1:{dead},127.0.0.1:{postgres.port}/certgate"
            assert line.startswith(f"error: store unavailable: the database {servers} "), line
        postgres.start()
        run_cli(a.data_dir, "ip", "add", "127.0.0.9", **keyword_cli)
        eventually(lambda: "listening on 127.0.0.9" in a.log_text(), what="the change applied")
        assert "Traceback" not in a.log_text()


def test_a_node_follows_its_store_to_the_standby_promoted_when_the_primary_is_lost(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """A primary and its streaming standby, named in one string with
    target_session_attrs=read-write: the node uses the primary, serves on when it is lost,
    and uses the standby once it is promoted (no certgate setting changed)."""
    with standby_of(postgres) as standby:
        both = (
            f"host=127.0.0.1,127.0.0.1 port={postgres.port},{standby.port} user=postgres "
            "dbname=certgate target_session_attrs=read-write"
        )
        with running_appliance(tmp_path / "a", ADDRESS, database_url=both) as a:
            before = assign_new_certificate(a, tmp_path, "before.example.test")
            wait_until_served(ADDRESS, a.port, before)
            primary_revision = revision_on(postgres)
            eventually(
                lambda: revision_on(standby) == primary_revision, what="the standby replays it"
            )
            with handshake_load([(ADDRESS, a.port)]) as load:
                postgres.stop("immediate")
                eventually(lambda: "cannot follow the store's changes" in a.log_text())
                standby.promote()
                after = assign_new_certificate(a, tmp_path, "after.example.test")
                wait_until_served(ADDRESS, a.port, after, timeout=30)
            assert load.failures == [] and load.done > 0
            assert "Traceback" not in a.log_text()


def revision_on(server: PostgresServer) -> int:
    with psycopg.connect(server.conninfo()) as connection:
        row = connection.execute("SELECT value FROM revision WHERE id = 1").fetchone()
    assert row is not None
    return int(row[0])
