"""The native TLS front end as the application and its clients see it: who reaches the
application, what it learns of the TLS connection, how connections end, and what the front
end accepts to serve."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import ssl
import struct
import sys
import time
from collections.abc import Iterator
from typing import ClassVar, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certgate.errors import FrontEndMissingError
from certgate.tls import Deadlines, TlsPolicy, TlsServer
from certgate.tls._front import Context, Front
from tests.integration._tls_helpers import (
    Pki,
    ServerThread,
    make_pki,
    plan,
)
from tests.support.net import free_port, ipv6_loopback
from tests.support.polling import eventually
from tests.support.served import client_context, handshake

A = "127.0.0.2"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), {"front.test": "p256"})


class Recorder(asyncio.Protocol):
    """Echoes, and records every protocol made and how each connection ended."""

    made: ClassVar[int] = 0
    lost: ClassVar[list[str]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Recorder.made += 1
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if data == b"who am I?":
            info = self.transport.get_extra_info
            cipher = info("cipher")
            self.transport.write(
                repr(
                    (
                        info("peername"),
                        info("sockname"),
                        cipher[1],
                        cipher[0],
                        isinstance(info("sslcontext"), Context),
                        info("socket"),
                    )
                ).encode()
            )
        else:
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        Recorder.lost.append(type(exc).__name__ if exc else "clean")


@pytest.fixture
def server() -> Iterator[ServerThread]:
    Recorder.made = 0
    Recorder.lost = []
    running = ServerThread(protocol_factory=Recorder)
    yield running
    running.close()


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_clients_that_only_shake_hands_never_reach_the_application(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    server.apply(plan(port, {A: pki["front.test"].served}))
    context = client_context(pki.root_pem)
    for _ in range(20):
        assert handshake(A, port, context).common_name == "front.test"
    with socket.create_connection((A, port)) as raw, context.wrap_socket(raw) as tls:
        tls.unwrap()  # close_notify right after the handshake
    assert Recorder.made == 0
    with socket.create_connection((A, port)) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(b"ping")
        assert tls.recv(10) == b"ping"
    assert Recorder.made == 1


def test_the_application_sees_the_client_and_the_tls_connection(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    addresses = [A, "::1"] if ipv6_loopback() else [A]
    server.apply(plan(port, dict.fromkeys(addresses, pki["front.test"].served)))
    for address in addresses:
        with (
            socket.create_connection((address, port)) as raw,
            client_context(pki.root_pem).wrap_socket(raw) as tls,
        ):
            tls.sendall(b"who am I?")
            seen = tls.recv(1000).decode()
            cipher = tls.cipher()
            assert cipher is not None
            expected = (
                tls.getsockname()[:2],
                (address, port),
                tls.version(),
                cipher[0],
                True,  # an SSLContext: uvicorn's scheme is https
                None,  # no socket object: uvicorn takes the addresses above instead
            )
            assert seen == repr(expected)


def test_a_client_silent_after_its_handshake_is_let_go(server: ServerThread, pki: Pki) -> None:
    port = free_port()
    server.apply(plan(port, {A: pki["front.test"].served}, deadlines=Deadlines(header=0.5)))
    started = time.monotonic()
    with (
        socket.create_connection((A, port), timeout=5) as raw,
        client_context(pki.root_pem).wrap_socket(raw) as tls,
    ):
        assert tls.recv(10) == b""  # the header deadline: 0.5 s
    assert time.monotonic() - started < 3
    assert Recorder.made == 0


def test_a_client_reset_ends_its_connection_in_the_application(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    server.apply(plan(port, {A: pki["front.test"].served}))
    raw = socket.create_connection((A, port), timeout=5)
    tls = client_context(pki.root_pem).wrap_socket(raw)
    tls.sendall(b"ping")
    assert tls.recv(10) == b"ping"
    tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    tls.close()  # a reset, no close_notify
    eventually(lambda: len(Recorder.lost) == 1)


def test_connections_live_on_after_the_server_closes_and_nothing_leaks(pki: Pki) -> None:
    Recorder.made = 0
    Recorder.lost = []
    running = ServerThread(protocol_factory=Recorder)
    port = free_port()
    running.apply(plan(port, {A: pki["front.test"].served}))
    context = client_context(pki.root_pem)
    with socket.create_connection((A, port)) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(b"warm-up")
        assert tls.recv(10) == b"warm-up"
    eventually(lambda: Recorder.lost == ["clean"])
    before = _open_descriptors()
    for _ in range(30):
        with socket.create_connection((A, port)) as raw, context.wrap_socket(raw) as tls:
            tls.sendall(b"ping")
            assert tls.recv(10) == b"ping"
    eventually(lambda: len(Recorder.lost) == 31)
    eventually(lambda: _open_descriptors() <= before)

    established = context.wrap_socket(socket.create_connection((A, port), timeout=5))
    established.sendall(b"before close")
    assert established.recv(20) == b"before close"
    running.call(running.server.close(grace=0.1))
    established.sendall(b"after close")  # the connection is the application's, not the server's
    assert established.recv(20) == b"after close"
    established.close()
    eventually(lambda: len(Recorder.lost) == 32)
    running.close()


def test_only_the_front_ends_own_served_contexts_are_listened_with(pki: Pki) -> None:
    front = Front(1.0, 1.0, 1.0)
    served = pki["front.test"].served
    context = TlsPolicy().new_context(served.chain_pem, bytearray(served.key_pem))
    try:
        with socket.socket() as listening:
            listening.bind((A, 0))
            listening.listen()
            listening.setblocking(False)
            with pytest.raises(TypeError, match=r"must be a certgate\.tls\._front\.Context"):
                front.listen(listening.fileno(), ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="no certificate"):
                front.listen(listening.fileno(), TlsPolicy().new_context())
            with pytest.raises(KeyError):
                front.unlisten(12345)
            with pytest.raises(KeyError):
                front.set_context(12345, context)
    finally:
        front.close()
    with pytest.raises(RuntimeError, match="closed"):
        front.listen(0, context)


def test_the_key_is_wiped_once_read_and_must_be_writable(pki: Pki) -> None:
    served = pki["front.test"].served
    key = bytearray(served.key_pem)
    TlsPolicy().new_context(served.chain_pem, key)
    assert key == bytearray(len(served.key_pem))  # all zeros
    with pytest.raises(TypeError, match="bytearray"):
        TlsPolicy().new_context(served.chain_pem, served.key_pem)  # type: ignore[arg-type]
    other = ec.generate_private_key(ec.SECP256R1())
    wrong = bytearray(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="key values mismatch"):
        TlsPolicy().new_context(served.chain_pem, wrong)
    assert not any(wrong)


def test_hostile_clients_are_dropped_and_the_others_served(server: ServerThread, pki: Pki) -> None:
    port = free_port()
    server.apply(plan(port, {A: pki["front.test"].served}))
    context = client_context(pki.root_pem)
    hello = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(*hello)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    client_hello = hello[1].read()
    hostile = [
        os.urandom(4096),  # not TLS at all
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # plain HTTP to the TLS port
        client_hello[: len(client_hello) // 2],  # a truncated ClientHello, then gone
        client_hello + os.urandom(2048),  # a ClientHello followed by garbage records
        b"\x16\x03\x01\xff\xff" + os.urandom(300),  # a record header announcing too much
    ]
    for payload in hostile:
        # The server may close (with unread data: a reset) at any point of this.
        with socket.create_connection((A, port), timeout=5) as raw, contextlib.suppress(OSError):
            raw.sendall(payload)
            raw.shutdown(socket.SHUT_WR)
            while raw.recv(4096):  # an alert perhaps, then the server closes
                pass
    for _ in range(3):
        with socket.create_connection((A, port), timeout=5) as raw:
            raw.sendall(client_hello)  # and never the Finished: a reset mid-handshake
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert handshake(A, port, context).common_name == "front.test"
    front = server.server._front
    assert front is not None
    eventually(lambda: front.connections == 0)
    assert Recorder.made == 0


def test_a_front_end_that_cannot_be_loaded_is_reported_in_words(
    monkeypatch: pytest.MonkeyPatch, pki: Pki
) -> None:
    planned = plan(free_port(), {A: pki["front.test"].served})
    monkeypatch.setitem(sys.modules, "certgate.tls._front", None)  # as if it were not built
    server = TlsServer(asyncio.Protocol)
    attempt = server.apply(planned)
    # A thread of its own: a test run may leave an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        failure = pool.submit(asyncio.run, attempt).exception(timeout=30)
    assert isinstance(failure, FrontEndMissingError)
    assert "run scripts/setup to build it" in str(failure)


class HoldThenFlood(asyncio.Protocol):
    """Stops reading at the first data; a moment later sends 1 MB and closes."""

    SIZE = 1_000_000

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.held = False

    def data_received(self, data: bytes) -> None:
        if not self.held:
            self.held = True
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(0.3, self.flood)

    def flood(self) -> None:
        self.transport.write(b"z" * self.SIZE)
        self.transport.close()


def test_the_end_of_a_response_survives_a_client_that_sent_more_and_hung_up(pki: Pki) -> None:
    """The client sent more than the application read, then its FIN: the unread data must
    not make the server reset the connection before the client has its whole response."""
    running = ServerThread(protocol_factory=HoldThenFlood)
    try:
        port = free_port()
        running.apply(plan(port, {A: pki["front.test"].served}))
        raw = socket.create_connection((A, port), timeout=10)
        with client_context(pki.root_pem).wrap_socket(raw, suppress_ragged_eofs=False) as tls:
            tls.sendall(b"x" * 1_000_000)  # more than the application side can buffer
            with socket.fromfd(tls.fileno(), socket.AF_INET, socket.SOCK_STREAM) as same:
                same.shutdown(socket.SHUT_WR)  # a TCP FIN under the TLS layer
            time.sleep(0.8)  # reading late: the end of the response waits in the server's buffers
            received = 0
            while chunk := tls.recv(65536):  # b"" only after close_notify
                received += len(chunk)
            assert received == HoldThenFlood.SIZE
    finally:
        running.close()


def test_a_client_that_stops_reading_a_finished_response_is_let_go(pki: Pki) -> None:
    running = ServerThread(protocol_factory=HoldThenFlood)
    try:
        port = free_port()
        running.apply(plan(port, {A: pki["front.test"].served}, deadlines=Deadlines(send=0.5)))
        raw = socket.create_connection((A, port), timeout=10)
        with client_context(pki.root_pem).wrap_socket(raw) as tls:
            tls.sendall(b"go")  # and never reads the megabyte
            front = running.server._front
            assert front is not None
            eventually(lambda: front.connections == 1)
            eventually(lambda: front.connections == 0, timeout=5)
    finally:
        running.close()


def test_a_blocking_listening_socket_is_refused(pki: Pki) -> None:
    front = Front(1.0, 1.0, 1.0)
    served = pki["front.test"].served
    context = TlsPolicy().new_context(served.chain_pem, bytearray(served.key_pem))
    try:
        with socket.socket() as listening:
            listening.bind((A, 0))
            listening.listen()
            # A blocking listening socket would stop the front end in accept().
            with pytest.raises(OSError, match="Invalid argument"):
                front.listen(listening.fileno(), context)
    finally:
        front.close()


def test_a_challenge_table_of_the_wrong_shape_is_a_type_error() -> None:
    """What Python hands the front end is checked before it is read (a list item that is not
    a (name, context) tuple was a SystemError)."""
    front = Front(1.0, 1.0, 1.0)
    try:
        for table in (["a.example.test"], [None], [("a.example.test",)]):
            with pytest.raises(TypeError):
                front.set_challenges(table)  # type: ignore[arg-type]
        front.set_challenges([])  # none: accepted
    finally:
        front.close()
