"""The transport that application protocols (uvicorn's) run on: data arrives whole and in
order in both directions, flow control works, endings are clean TLS endings, and clients that
never finish a handshake are dropped. The application protocol starts when the client first
speaks (HTTP clients always do); clients that never speak never reach it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, cast

import httpx
import pytest

from certgate.tls import Deadlines, TlsServer
from tests.integration._tls_helpers import (
    Pki,
    ServerThread,
    make_pki,
    plan,
)
from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.served import client_context

A = "127.0.0.2"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), {"transport.test": "p256"})


@pytest.fixture
def serve(pki: Pki) -> Iterator[Callable[..., tuple[ServerThread, int]]]:
    """Start a server with the given protocol factory on A; closed after the test."""
    started: list[ServerThread] = []

    def start(
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        deadlines: Deadlines | None = None,
        **kwargs: Any,
    ) -> tuple[ServerThread, int]:
        server = ServerThread(protocol_factory=protocol_factory, **kwargs)
        started.append(server)
        port = free_port()
        server.apply(plan(port, {A: pki["transport.test"].served}, deadlines=deadlines))
        return server, port

    yield start
    for server in started:
        server.close()


def _connect(pki: Pki, port: int, **wrap: Any) -> ssl.SSLSocket:
    raw = socket.create_connection((A, port), timeout=10)
    return client_context(pki.root_pem).wrap_socket(raw, **wrap)


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def test_megabytes_echo_back_whole_and_in_order(
    serve: Callable[..., tuple[ServerThread, int]], pki: Pki
) -> None:
    _, port = serve(Echo)
    payload = os.urandom(8 * 1024 * 1024)

    async def exchange() -> bytes:
        # One client thread drives both directions: Python's ssl.SSLSocket is not safe to
        # read and write from two threads at once, which made an earlier version flaky.
        reader, writer = await asyncio.open_connection(A, port, ssl=client_context(pki.root_pem))

        async def send() -> None:
            for start in range(0, len(payload), 1 << 16):
                writer.write(payload[start : start + (1 << 16)])
                await writer.drain()  # the server's writes must block and resume meanwhile

        sending = asyncio.create_task(send())
        received = await asyncio.wait_for(reader.readexactly(len(payload)), 60)
        await sending
        writer.close()
        return received

    # A thread of its own: a test run may leave an event loop running in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        received = pool.submit(asyncio.run, exchange()).result(timeout=90)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


TOTAL = 32 * 1024 * 1024  # more than the kernel buffers of both ends hold


class Flood(asyncio.Protocol):
    """A well-behaved producer: writes 64 KiB chunks until paused, goes on when resumed, and
    records the flow-control calls it gets."""

    events: ClassVar[list[str]] = []
    sent: ClassVar[int] = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.paused = False
        Flood.sent = 0
        self.produce()

    def produce(self) -> None:
        # One chunk per loop iteration, as a streaming response does between its awaits.
        if not self.paused and Flood.sent < TOTAL and not self.transport.is_closing():
            self.transport.write(b"x" * 65536)
            Flood.sent += 65536
            asyncio.get_running_loop().call_soon(self.produce)

    def pause_writing(self) -> None:
        self.paused = True
        Flood.events.append("pause")

    def resume_writing(self) -> None:
        self.paused = False
        Flood.events.append("resume")
        self.produce()


def test_a_slow_reader_pauses_the_writer_and_resumes_it(
    serve: Callable[..., tuple[ServerThread, int]], pki: Pki
) -> None:
    Flood.events = []
    _, port = serve(Flood)
    with _connect(pki, port) as tls:
        tls.sendall(b"go")  # the protocol starts producing in connection_made
        # Not reading: the buffers fill up and the producer is paused (it may be resumed and
        # paused again meanwhile, as the kernel grows its buffers).
        eventually(lambda: Flood.events[-1:] == ["pause"])
        assert Flood.sent < TOTAL // 4  # held back, not buffered without bound
        received = 0
        while received < TOTAL:
            chunk = tls.recv(1 << 20)
            assert chunk
            received += len(chunk)
    assert received == TOTAL
    assert Flood.events[-1] == "resume"


class SlowReader(asyncio.Protocol):
    """Pauses reading after the first chunk for 0.2 s, then reports how much it got."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.received = 0
        self.paused_once = False

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if not self.paused_once:
            self.paused_once = True
            self.transport.pause_reading()
            assert not self.transport.is_reading()
            asyncio.get_running_loop().call_later(0.2, self.transport.resume_reading)
        if self.received >= 1_000_000:
            self.transport.write(str(self.received).encode())


def test_pausing_reading_loses_nothing(
    serve: Callable[..., tuple[ServerThread, int]], pki: Pki
) -> None:
    _, port = serve(SlowReader)
    with _connect(pki, port) as tls:
        for _ in range(100):
            tls.sendall(b"y" * 10_000)
        assert tls.recv(100) == b"1000000"


class Recorder(asyncio.Protocol):
    """Records how a connection ends."""

    events: ClassVar[list[str]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        Recorder.events.append("made")

    def data_received(self, data: bytes) -> None:
        if data == b"close please":
            self.transport.write(b"bye")
            self.transport.close()

    def eof_received(self) -> None:
        Recorder.events.append("eof")

    def connection_lost(self, exc: Exception | None) -> None:
        Recorder.events.append(f"lost {exc!r}")


def test_endings_are_tls_endings(serve: Callable[..., tuple[ServerThread, int]], pki: Pki) -> None:
    Recorder.events = []
    _, port = serve(Recorder)
    # The client ends with close_notify: the protocol sees EOF, then the end.
    with _connect(pki, port) as tls:
        tls.sendall(b"hello")
        tls.unwrap()
    eventually(lambda: Recorder.events == ["made", "eof", "lost None"])

    # The server ends (after sending its data): the client gets close_notify, not a bare EOF.
    Recorder.events = []
    with _connect(pki, port, suppress_ragged_eofs=False) as tls:
        tls.sendall(b"close please")
        assert tls.recv(10) == b"bye"
        assert tls.recv(10) == b""  # would raise SSLEOFError without close_notify
    eventually(lambda: Recorder.events == ["made", "lost None"])


def test_a_client_that_never_finishes_its_handshake_is_dropped(
    serve: Callable[..., tuple[ServerThread, int]], pki: Pki
) -> None:
    server, port = serve(Echo, deadlines=Deadlines(handshake=0.5))
    started = time.monotonic()
    with socket.create_connection((A, port), timeout=5) as silent:
        assert silent.recv(10) == b""  # closed by the server
    assert time.monotonic() - started < 3
    # One still handshaking when the server closes ends by the same timeout, not later.
    with socket.create_connection((A, port), timeout=5) as silent:
        time.sleep(0.1)
        server.call(server.server.close(grace=0.1))
        assert silent.recv(10) == b""


class Exploding(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("application bug")


def test_an_exception_in_the_application_ends_only_its_connection(
    serve: Callable[..., tuple[ServerThread, int]], pki: Pki
) -> None:
    server, port = serve(Exploding)
    reported: list[dict[str, Any]] = []
    server.loop.set_exception_handler(lambda loop, context: reported.append(context))
    with _connect(pki, port) as tls:
        tls.sendall(b"boom")
        assert tls.recv(10) == b""
    assert [type(c.get("exception")) for c in reported] == [RuntimeError]
    with _connect(pki, port) as tls:  # the listener goes on
        assert tls.version() == "TLSv1.3"


def test_uvicorn_serves_an_asgi_app_over_it(pki: Pki) -> None:
    """How the web app will be plugged in: uvicorn's HTTP protocol as the protocol factory."""
    from uvicorn.config import Config
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.server import ServerState

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = f"{scope['scheme']} {scope['server'][0]} {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    config = Config(app=app, http="h11", lifespan="off", log_config=None, access_log=False)
    config.load()
    factory = functools.partial(
        H11Protocol, config=config, server_state=ServerState(), app_state={}
    )
    server = ServerThread(protocol_factory=factory)
    try:
        port = free_port()
        server.apply(plan(port, {A: pki["transport.test"].served}))
        with httpx.Client(verify=client_context(pki.root_pem)) as client:
            for _ in range(3):  # keep-alive: several requests on one connection
                response = client.get(f"https://{A}:{port}/appliance")
                assert response.status_code == 200
                assert response.text == f"https {A} /appliance"
    finally:
        server.close()


def test_the_server_is_an_ordinary_asyncio_citizen() -> None:
    # TlsServer needs no running loop to be made; apply() binds it to the running one.
    assert TlsServer(asyncio.Protocol).status() == []
