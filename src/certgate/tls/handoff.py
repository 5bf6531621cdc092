"""Where a connection comes into Python: the front end hands it off once its client has sent
data, as the plaintext end of a Unix socket pair, and the application protocol runs on it.

The application sees an ordinary transport of its event loop, with the TLS connection's own
details (``peername``, ``sockname``, ``sslcontext``, ``cipher``) in ``get_extra_info``: uvicorn
takes the client's address and the ``https`` scheme from there. Addresses are ``(host, port)``
pairs for IPv6 too: uvicorn takes no other shape from ``peername``. ``deadlines`` gives the
application the :class:`~certgate.tls.plan.Deadlines` in force when the connection arrived.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from certgate.tls.plan import Deadlines

if TYPE_CHECKING:  # the extension is loaded where it starts: tls/server.py
    from certgate.tls._front import Context, Front

ProtocolFactory = Callable[[], asyncio.BaseProtocol]
log = logging.getLogger("certgate.tls")
#: Out of descriptors, the front end rests each listener 0.1 s at a time; one line a second
#: per failing call says so (with the count), as nginx's
#: ``accept() failed (24: Too many open files)`` does.
FAILURE_REPORT_INTERVAL = 1.0


class Handoff:
    """Takes the connections the front end hands off and starts their application protocol."""

    def __init__(
        self,
        front: Front,
        protocol_factory: ProtocolFactory,
        contexts: Mapping[int, Context],
    ) -> None:
        self._front = front
        self._protocol_factory = protocol_factory
        self._contexts = contexts  # listener id -> the context it serves
        self.deadlines = Deadlines()  # what connections handed off from now on get
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failures: dict[str, tuple[int, int]] = {}  # call -> (count, errno) not reported
        self._reported: dict[str, float] = {}  # call -> when last reported
        self._attaching: set[asyncio.Task[None]] = set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self._front.fileno(), self.deliver)

    def stop(self) -> None:
        """Deliver what is waiting, then stop watching the front end."""
        if self._loop is not None:
            self.deliver()
            self._loop.remove_reader(self._front.fileno())
            self._loop = None

    def deliver(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._report_failures()
        taken = self._front.take()
        for index, (fd, listener_id, peer, local, version, cipher) in enumerate(taken):
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fd)
            except BaseException:
                for other in taken[index:]:  # no descriptor may be left open behind
                    os.close(other[0])
                raise
            extra: dict[str, Any] = {
                "peername": peer,
                "sockname": local,
                "sslcontext": self._contexts.get(listener_id),
                "cipher": (cipher, version, None),
                "socket": None,
                "ssl_object": None,
                "deadlines": self.deadlines,
            }
            task = loop.create_task(self._attach(loop, sock, extra))
            self._attaching.add(task)
            task.add_done_callback(self._attaching.discard)

    def _report_failures(self) -> None:
        for call, count, number in self._front.failures():
            self._failures[call] = (self._failures.get(call, (0, 0))[0] + count, number)
        now = time.monotonic()
        for call, (count, number) in list(self._failures.items()):
            if now - self._reported.get(call, -FAILURE_REPORT_INTERVAL) >= FAILURE_REPORT_INTERVAL:
                times = f" ({count} times)" if count > 1 else ""
                log.error("%s() failed (%d: %s)%s", call, number, os.strerror(number), times)
                del self._failures[call]
                self._reported[call] = now

    async def _attach(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, extra: dict[str, Any]
    ) -> None:
        try:
            await loop.connect_accepted_socket(
                lambda: _Attach(self._protocol_factory, extra), sock=sock
            )
        except BaseException:
            sock.close()  # the front end sees the close and ends the TLS connection
            raise


class _Attach(asyncio.Protocol):
    """Lives for ``connection_made`` only: puts the application protocol on the transport."""

    __slots__ = ("_extra", "_protocol_factory")

    def __init__(self, protocol_factory: ProtocolFactory, extra: dict[str, Any]) -> None:
        self._protocol_factory = protocol_factory
        self._extra = extra

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # uvloop's are not asyncio subclasses
        protocol = self._protocol_factory()
        stream.set_protocol(protocol)
        protocol.connection_made(TlsStream(stream, self._extra))


class TlsStream(asyncio.Transport):
    """The plaintext transport as the application sees it: the TLS connection's details, the
    Unix socket's data path. Like asyncio's TLS transports, it has no half-close."""

    __slots__ = ("_inner",)

    def __init__(self, inner: asyncio.Transport, extra: dict[str, Any]) -> None:
        super().__init__(extra)
        self._inner = inner

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._inner.writelines(list_of_data)

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("a TLS connection has no half-close")

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()
