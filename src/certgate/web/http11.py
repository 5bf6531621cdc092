"""HTTP/1.1 over the handed-off connections: uvicorn's h11 protocol with nginx's deadlines.

uvicorn times nothing but keep-alive: a client that sent half a request header, or half a
body, kept its connection (and a descriptor) for as long as it liked. Here each phase of a
request has its deadline, from the :class:`~certgate.tls.plan.Deadlines` the connection
arrived with:

- ``header``: from the first byte of a request to the end of its header, whatever arrives in
  between (nginx's ``client_header_timeout``, not reset by data);
- ``body``: between two reads of a request body (``client_body_timeout``);
- ``keepalive``: an idle connection between two requests (uvicorn's own timer).

While the application works on a request nothing is timed here; the front end bounds every
write to the client (``send``). A request line that cannot become one (h11 waits for its end)
is answered 400 at once, as nginx does, so that garbage cannot hold a connection either. A
request header longer than :data:`HEADER_MAX` (given to h11 as its bound on what it buffers)
is answered 431 with a problem document (``header-too-large``, documented on every API
operation), whether it arrives in pieces or in one read (h11 would take it whole).

A client's end of input (a FIN or close_notify after its request) does not cancel the request:
the response is sent, then the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from certgate.tls import Deadlines
from certgate.web.api.errors import problem
from certgate.web.api.openapi import PROBLEM_MEDIA_TYPE

#: The longest request header taken (nginx's large_client_header_buffers hold 4 x 8 KiB; h11's
#: own default bound is 16 KiB).
HEADER_MAX = 16 * 1024
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"  # h11's method (a token)
_TARGET = rb"[\x21-\x7e]+"  # h11's request target (visible characters)
#: A whole request line, as h11 reads it.
_REQUEST_LINE = re.compile(_TOKEN + b" " + _TARGET + rb" HTTP/[0-9]\.[0-9]\r?\Z")
#: The start of one: every prefix of a request line matches this, and nothing else does.
_REQUEST_LINE_START = re.compile(
    _TOKEN
    + b"(?: (?:"
    + _TARGET
    + rb"(?: (?:H(?:T(?:T(?:P(?:/(?:[0-9](?:\.(?:[0-9]\r?)?)?)?)?)?)?)?)?)?)?)?\Z"
)


#: The end of a request header, as h11 finds it (a blank line, CRLF or bare LF).
_HEAD_END = re.compile(rb"\n\r?\n")


def head_too_large(pending: bytes, limit: int) -> bool:
    """Whether the request header begun in ``pending`` is longer than ``limit`` bytes."""
    return len(pending) > limit and _HEAD_END.search(pending, 0, limit + 2) is None


def could_be_request(pending: bytes) -> bool:
    """Whether the bytes received of a request so far can still become a request h11 takes."""
    line, newline, _ = pending.partition(b"\n")
    pattern = _REQUEST_LINE if newline else _REQUEST_LINE_START
    return pattern.match(line) is not None


class Http11(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for every phase in which the client acts."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        stopping: Callable[[], bool],
        deadlines: Deadlines | None = None,
    ) -> None:
        """``deadlines``: for a connection whose transport carries none (plain HTTP)."""
        super().__init__(config, server_state, app_state)
        self._stopping = stopping
        self._deadlines = deadlines or Deadlines()
        self._timer: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # what the timer is for: "header" or "body"
        self._input_ended = False
        self._head_limit = config.h11_max_incomplete_event_size or HEADER_MAX

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        deadlines = transport.get_extra_info("deadlines")
        if isinstance(deadlines, Deadlines):
            self._deadlines = deadlines
        self.timeout_keep_alive = self._deadlines.keepalive  # type: ignore[assignment]
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            pending = self.conn.trailing_data[0]
            if len(pending) + len(data) > self._head_limit and head_too_large(
                pending + data, self._head_limit
            ):
                self._cancel()
                self._refuse_large_head()
                return
        super().data_received(data)
        self._watch()

    def _refuse_large_head(self) -> None:
        """431, as a problem document, then close (uvicorn's own refusals are plain text)."""
        body = problem(
            "header-too-large",
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            f"The request line and header fields exceed {self._head_limit // 1024} KiB.",
        )
        headers = [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"connection", b"close"),
        ]
        status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        for event in (
            h11.Response(status_code=status, headers=headers, reason=status.phrase),
            h11.Data(data=json.dumps(body).encode()),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if (self._stopping() or self._input_ended) and self.cycle is not None:
            self.cycle.keep_alive = False  # answered, then closed

    def eof_received(self) -> bool:  # type: ignore[override]
        """The client ended its input: a whole request is still answered (then the
        connection closes); anything else ends here."""
        self._input_ended = True
        self._cancel()
        if (
            self.cycle is not None
            and not self.cycle.response_complete
            and self.conn.their_state in (h11.DONE, h11.MUST_CLOSE)
        ):
            self.cycle.keep_alive = False
            return True  # keep the transport open for the response
        return False  # the transport closes itself

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def shutdown(self) -> None:
        """Stopping: an idle connection closes now, a request in flight is answered first."""
        with contextlib.suppress(h11.LocalProtocolError):
            super().shutdown()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    def _watch(self) -> None:
        """Time the phase the connection is in now (called after each change)."""
        if self.transport.is_closing():
            self._cancel()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            pending = self.conn.trailing_data[0]
            if pending and not could_be_request(pending):
                self._cancel()
                self.send_400_response("Invalid HTTP request received.")
                return
            if pending or self.timeout_keep_alive_task is None:
                # A request has begun (or the first is awaited): the header's deadline runs.
                self._unset_keepalive_if_required()
                if self._phase != "header":
                    self._arm("header", self._deadlines.header)
        elif state is h11.SEND_BODY:
            self._arm("body", self._deadlines.body)  # again after every read
        else:
            self._cancel()  # the application's turn

    def _arm(self, phase: str, seconds: float) -> None:
        self._cancel()
        self._phase = phase
        self._timer = self.loop.call_later(seconds, self._expired)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._phase = None

    def _expired(self) -> None:
        """The client took too long to send (as nginx, no answer: it is not listening)."""
        self._timer = None
        self._phase = None
        self.transport.close()
