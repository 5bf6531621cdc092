"""After a 500 the connection carries on: the next request a client sent on it is answered
(uvicorn closed it when the app raised after Starlette's 500, dropping that request)."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from uvicorn import Config
from uvicorn.server import ServerState

from certgate.web.keepalive import KeepConnection
from tests.support.aio import run_on_own_loop


async def _boom(_: object) -> PlainTextResponse:
    raise RuntimeError("a bug in a view")


async def _fine(_: object) -> PlainTextResponse:
    return PlainTextResponse("fine")


def _exchange(app: object) -> bytes:
    """Two pipelined requests on one connection through uvicorn's h11 protocol; all the
    bytes the server sent back before it closed or went quiet."""
    config = Config(app, http="h11", lifespan="off", log_level="critical")  # type: ignore[arg-type]
    config.load()

    async def run() -> bytes:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: config.http_protocol_class(
                config=config, server_state=ServerState(), app_state={}
            ),  # type: ignore[call-arg]
            "127.0.0.1",
            0,
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\nGET /fine HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while received.count(b"HTTP/1.1 ") < 2:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout=5)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
        writer.close()
        server.close()
        return received

    return run_on_own_loop(run())


def test_the_request_after_a_500_on_the_same_connection_is_answered() -> None:
    app = Starlette(routes=[Route("/boom", _boom), Route("/fine", _fine)])
    received = _exchange(KeepConnection(app))
    assert received.startswith(b"HTTP/1.1 500 ")
    assert b"HTTP/1.1 200 OK" in received and received.endswith(b"fine")


def test_without_the_wrapper_uvicorn_drops_it() -> None:
    """What the wrapper is for (if uvicorn changes this, the wrapper can go)."""
    app = Starlette(routes=[Route("/boom", _boom), Route("/fine", _fine)])
    received = _exchange(app)
    assert received.startswith(b"HTTP/1.1 500 ") and b"200 OK" not in received
