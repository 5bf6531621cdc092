"""A PostgreSQL store whose network goes silent (a cut cable, a firewall or NAT that forgot
the connection: packets dropped, no reset) is said unavailable within seconds, like a
stopped server, instead of every command, page and heartbeat hanging on it until the kernel
gives up (a quarter of an hour).

The cut is made in a network namespace of the test's own: its loopback taken down under an
open connection, so what was sent is never acknowledged. The store is reached there through
a relay to the server's Unix socket (which no namespace cuts)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from certgate.service.setup import initialise
from tests.support.netns import network_namespace
from tests.support.postgres_server import PostgresServer, postgres_server

pytestmark = pytest.mark.postgres

_CUT = """
import socket, subprocess, sys, threading, time

from certgate.errors import StoreUnavailableError
from certgate.store.repository import Store

server = socket.create_server(("127.0.0.1", 0))

def pump(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass

def relay():
    while True:
        client, _ = server.accept()
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(sys.argv[1])
        for pair in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=pair, daemon=True).start()

threading.Thread(target=relay, daemon=True).start()
store = Store(f"postgresql://postgres@127.0.0.1:{server.getsockname()[1]}/certgate")
store.revision()  # the connection made, and kept in the pool
subprocess.run(["ip", "link", "set", "lo", "down"], check=True)
started = time.monotonic()
try:
    store.revision()
except StoreUnavailableError as error:
    print(f"{time.monotonic() - started:.1f} {error}")
"""


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    with postgres_server() as running:
        yield running


def test_a_store_whose_network_goes_silent_is_said_unavailable_within_seconds(
    server: PostgresServer, tmp_path: Path
) -> None:
    initialise(tmp_path / "data", server.url)
    socket_path = str(server.socket_dir / f".s.PGSQL.{server.port}")
    with network_namespace() as namespace:
        try:
            done = subprocess.run(
                namespace.command(sys.executable, "-c", _CUT, socket_path),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("a read of the store hung on its silent connection for 60 s")
    assert done.returncode == 0, done.stderr
    waited, _, said = done.stdout.strip().partition(" ")
    assert said.startswith("store unavailable"), done.stdout + done.stderr
    assert float(waited) < 30, said
    assert "Traceback" not in done.stderr
