"""Running the ASGI app over certgate's own TLS listeners, with uvicorn's HTTP protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp
from uvicorn.server import ServerState

from certgate.service.appliance import Appliance
from certgate.tls import Deadlines
from certgate.web.app import create_app
from certgate.web.challenge import ChallengeApp
from certgate.web.http11 import HEADER_MAX, Http11
from certgate.web.keepalive import KeepConnection


class HttpProtocols:
    """Makes the HTTP protocol of each connection (uvicorn's h11, bound to an ASGI app, with
    the connection's deadlines), and ends them all when the server stops."""

    def __init__(self, app: ASGIApp) -> None:
        self._config = uvicorn.Config(
            app,
            lifespan="off",
            http="h11",
            proxy_headers=False,
            server_header=False,
            log_level="warning",
            h11_max_incomplete_event_size=HEADER_MAX,
        )
        self._config.load()
        self._state = ServerState()
        self._stopping = False
        #: for connections that do not bring theirs (the plain HTTP listeners': no front end)
        self.deadlines = Deadlines()

    def __call__(self) -> asyncio.Protocol:
        return Http11(self._config, self._state, {}, lambda: self._stopping, self.deadlines)

    def set_deadlines(self, deadlines: Deadlines) -> None:
        """The TLS settings' deadlines, for the connections that arrive from now on."""
        self.deadlines = deadlines

    def finish(self) -> None:
        """Stopping: idle connections close now, requests in flight are answered and then
        their connections close; connections arriving from now on serve one request."""
        self._stopping = True
        for protocol in list(self._state.connections):
            protocol.shutdown()


def asgi_protocol_factory(appliance: Appliance) -> HttpProtocols:
    """Each TLS connection gets uvicorn's h11 protocol bound to certgate's web app."""
    return HttpProtocols(KeepConnection(create_app(appliance)))


def challenge_protocol_factory(
    appliance: Appliance, https_port: Callable[[], int]
) -> HttpProtocols:
    """Each plain HTTP connection gets the same protocol bound to the ACME http-01 answers
    and the redirect to ``https_port()``."""
    return HttpProtocols(ChallengeApp(appliance, https_port))
