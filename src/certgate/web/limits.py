"""How much a request may carry, the same for the pages and the API.

Bounded so that one request cannot exhaust the appliance's memory or disk: a body over its
limit is refused with 413 as it arrives, before it is parsed or spooled anywhere.

Why not Starlette's ``max_body_size``: when a request declares a Content-Length over the
limit, it replaces whatever the app answers with a bare ``text/plain`` 413, so the API
could not answer with its problem+json nor the pages with their error page. Here the
limit is an HTTP error raised while the view reads the body, answered by the app's own
handlers like any other.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from certgate.pki.loader import MAX_FILE_SIZE

#: Forms and JSON bodies (a manual PEM chain is the largest thing they carry).
MAX_FORM_BODY = 4 * 1024 * 1024
#: Files in one import (each at most the loader's MAX_FILE_SIZE) ...
MAX_IMPORT_FILES = 64
#: ... and all of them together: room for several files of the largest size, or a bundle of
#: 10,000 certificates many times over.
MAX_IMPORT_BODY = 4 * MAX_FILE_SIZE


def mebibytes(size: int) -> str:
    return f"{size // 2**20} MiB"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request is larger than {mebibytes(limit)}, its limit")


class BodyLimit:
    """ASGI middleware: refuses a request body longer than ``limit_for(path)`` bytes."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
