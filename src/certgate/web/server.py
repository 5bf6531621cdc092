"""Running the ASGI app over certgate's own TLS listeners, with uvicorn's HTTP protocol."""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.server import ServerState

from certgate.service.appliance import Appliance
from certgate.web.app import create_app
from certgate.web.http11 import Http11
from certgate.web.keepalive import KeepConnection


class HttpProtocols:
    """Makes the HTTP protocol of each TLS connection (uvicorn's h11, bound to certgate's web
    app, with the connection's deadlines), and ends them all when the server stops."""

    def __init__(self, appliance: Appliance) -> None:
        self._config = uvicorn.Config(
            KeepConnection(create_app(appliance)),
            lifespan="off",
            http="h11",
            proxy_headers=False,
            server_header=False,
            log_level="warning",
        )
        self._config.load()
        self._state = ServerState()
        self._stopping = False

    def __call__(self) -> asyncio.Protocol:
        return Http11(self._config, self._state, {}, lambda: self._stopping)

    def finish(self) -> None:
        """Stopping: idle connections close now, requests in flight are answered and then
        their connections close; connections arriving from now on serve one request."""
        self._stopping = True
        for protocol in list(self._state.connections):
            protocol.shutdown()


def asgi_protocol_factory(appliance: Appliance) -> HttpProtocols:
    """Each TLS connection gets uvicorn's h11 protocol bound to certgate's web app."""
    return HttpProtocols(appliance)
