"""The database away (issue 12, point 4), against a PostgreSQL server of the test's own
(``tests/support/postgres_server.py``) that is stopped and started again: every node goes on
serving its last committed state, every face refuses a change with "store unavailable"
(CLI exit 1 and one line, API 503 problem+json, an error page), and the nodes catch up on
every change once they reach the database again."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from certgate.service.nodes import HEARTBEAT_ENV
from tests.api.client import Server, mint_token, problem
from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.postgres_server import PostgresServer, postgres_server
from tests.support.served import served_fingerprint
from tests.support.server import (
    RunningAppliance,
    run_cli,
    running_appliance,
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
