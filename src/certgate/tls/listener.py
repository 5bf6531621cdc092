"""One address's listening socket, and the server that accepts on it with one context.

Why a new server per change instead of an ``sni_callback`` that swaps ``ssl_object.context``:
OpenSSL fixes the version range (and the options) of a connection when the connection object
is made, from the context the server was created with, and a context set in the callback only
brings its certificate, key, chain and TLS 1.2 ciphers. A policy change could not be enforced
that way. So each change starts a new server with the new context on a duplicate of the same
listening socket, then closes the old server: the socket and its accept queue never go away,
every connection accepted from then on gets the new context, and connections already accepted
finish under the old one. It also costs no Python callback during handshakes.

Why the event loop's own TLS transport: a hand-written one on ``add_reader`` with OpenSSL doing
the socket I/O was measured too. It cost the same CPU per handshake and, unlike the loops'
transports, sent the TLS alert of a refused handshake ("protocol version") instead of just
closing; but uvloop closes an ``add_reader`` poller silently when its socket reports an error
(a client's reset), so such a connection is never told and its descriptor number stays broken
for the next accept (MagicStack/uvloop#552). The loops' transports have no such hole.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl

from certgate.tls.handshakes import HandshakeTracker


class BindError(Exception):
    """The address cannot be listened on; the message says why, in an operator's words."""


class Listener:
    """The TLS listener of one address on the HTTPS port."""

    def __init__(self, address: str, port: int, sock: socket.socket, backlog: int) -> None:
        self.address = address
        self.port = port
        self.fingerprint: str | None = None
        self.context: ssl.SSLContext | None = None
        self._socket = sock
        self._backlog = backlog
        self._server: asyncio.AbstractServer | None = None

    @classmethod
    def bind(cls, address: str, port: int, backlog: int, reuse_port: bool = False) -> Listener:
        """Bind and listen (accepting starts with :meth:`serve`), or raise :class:`BindError`.

        ``reuse_port`` lets the worker processes of one ``certgate serve`` each bind the
        address; the kernel then spreads new connections over them.
        """
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise BindError(f"{address!r} is not an IPv4 or IPv6 address") from None
        where = f"[{address}]:{port}" if ip.version == 6 else f"{address}:{port}"
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # Rebinding right after a restart must not wait for TIME_WAIT connections.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            raise BindError(f"cannot listen on {where}: {_explain(error, address, port)}") from None
        return cls(address, port, sock, backlog)

    @property
    def serving(self) -> bool:
        return self._server is not None

    async def serve(
        self,
        context: ssl.SSLContext,
        fingerprint: str,
        protocol_factory: HandshakeTracker,
        handshake_timeout: float,
    ) -> None:
        """Present ``context`` to every connection accepted from now on."""
        if context is self.context:
            self.fingerprint = fingerprint
            return
        loop = asyncio.get_running_loop()
        duplicate = self._socket.dup()
        try:
            server = await loop.create_server(
                protocol_factory,
                sock=duplicate,
                ssl=context,
                backlog=self._backlog,
                ssl_handshake_timeout=handshake_timeout,
            )
        except BaseException:
            duplicate.close()
            raise
        previous, self._server = self._server, server
        self.context = context
        self.fingerprint = fingerprint
        if previous is not None:
            # Stops accepting on the old duplicate only; its connections go on.
            previous.close()

    def close(self) -> None:
        """Stop accepting; connections already accepted may finish."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self._socket.close()
        self.context = None
        self.fingerprint = None


def _explain(error: OSError, address: str, port: int) -> str:
    if error.errno == errno.EADDRNOTAVAIL:
        return f"the address {address} is not configured on this host"
    if error.errno == errno.EADDRINUSE:
        return f"port {port} on {address} is already in use by another program"
    if error.errno == errno.EACCES:
        return f"permission denied (port {port} needs root or CAP_NET_BIND_SERVICE)"
    return error.strerror or str(error)
