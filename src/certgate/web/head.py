"""HEAD answered as GET, without the body (RFC 9110: a general-purpose server supports GET and
HEAD). FastAPI's routes take only the methods they name, so ``curl -I`` and the monitors
that ask with HEAD got a 405 from every page and endpoint. uvicorn, whose scope still says
HEAD, sends the GET's headers and leaves its body out."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)
