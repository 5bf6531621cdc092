"""A failure after the whole response was sent must not cost the client its connection.

Starlette's ``ServerErrorMiddleware`` answers an unexpected exception with a 500 and then
raises it again; uvicorn, seeing a response already started, closes the connection, so the
next request a client had sent on it (keep-alive, pipelining) was dropped unanswered. This
wrapper, outside the app, logs such a failure (with its traceback: it is a bug) and lets
uvicorn carry on with the connection. A failure before the response is complete still
reaches uvicorn, which must close a connection whose response is cut short.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("certgate.web")


class KeepConnection:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        complete = False

        async def sending(message: Message) -> None:
            nonlocal complete
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if not complete:
                raise
            log.exception("Exception in ASGI application (after its answer was sent)")
