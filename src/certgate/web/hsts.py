"""HTTP Strict Transport Security on every answer given over HTTPS.

Two years, Mozilla's advice: a browser that has been here once never again tries plain HTTP
for this host (no ``includeSubDomains``: the appliance's names say nothing of their siblings).
A plain ASGI wrapper, not ``BaseHTTPMiddleware``: it costs one dict copy per response.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = (b"strict-transport-security", b"max-age=63072000")


class Hsts:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), HEADER]}
            await send(message)

        await self.app(scope, receive, send_with_hsts)
