"""Running the ASGI app over certgate's own TLS listeners, with uvicorn's HTTP protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import uvicorn
from uvicorn.server import ServerState

from certgate.service.appliance import Appliance
from certgate.web.app import create_app
from certgate.web.keepalive import KeepConnection


def asgi_protocol_factory(appliance: Appliance) -> Callable[[], asyncio.Protocol]:
    """Each TLS connection gets uvicorn's h11 protocol bound to certgate's web app."""
    config = uvicorn.Config(
        KeepConnection(create_app(appliance)),
        lifespan="off",
        http="h11",
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        timeout_keep_alive=15,
    )
    config.load()
    state = ServerState()

    def factory() -> asyncio.Protocol:
        protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=state, app_state={}
        )
        return protocol

    return factory
