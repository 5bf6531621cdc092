"""HEAD answered as GET, without the body (RFC 9110: a general-purpose server supports GET and
HEAD). FastAPI's routes take only the methods they name, so ``curl -I`` and the monitors
that ask with HEAD got a 405 from every page and endpoint. uvicorn, whose scope still says
HEAD, sends the GET's headers and leaves its body out."""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

#: The scope's mark of a GET that answers a HEAD.
_HEAD = "certgate.head"


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, "method": "GET", _HEAD: True}
        await self.app(scope, receive, send)


def is_head(request: Request) -> bool:
    """Whether this GET answers a HEAD, which downloads nothing: a download's view records
    no audit event for it (``curl -I`` of an export was recorded as an export)."""
    return bool(request.scope.get(_HEAD))
