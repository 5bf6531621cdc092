"""One address's listening socket, and the context the front end presents on it.

Why a context per listener that is swapped instead of an ``sni_callback`` that swaps
``ssl_object.context``: OpenSSL fixes the version range (and the options) of a connection when
the connection object is made, from the context it is made with, and a context set in the
callback only brings its certificate, key, chain and TLS 1.2 ciphers. A policy change could not
be enforced that way. So each change hands the front end the new context for the same listening
socket: the socket and its accept queue never go away, every connection accepted from then on
gets the new context, and connections already accepted finish under the old one.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the extension is loaded where it starts: tls/server.py
    from certgate.tls._front import Context, Front


class BindError(Exception):
    """The address cannot be listened on; the message says why, in an operator's words.
    ``errno`` is the system's reason (``EADDRINUSE``: something else holds the port)."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class Listener:
    """The TLS listener of one address on the HTTPS port."""

    def __init__(self, address: str, port: int, sock: socket.socket) -> None:
        self.address = address
        self.port = port
        self.fingerprint: str | None = None
        self.context: Context | None = None
        self.freebind = False  # bound with IP_FREEBIND (a floating address)
        self._socket = sock
        self._front: Front | None = None
        self._front_id: int | None = None

    @classmethod
    def bind(
        cls,
        address: str,
        port: int,
        backlog: int,
        reuse_port: bool = False,
        freebind: bool = False,
    ) -> Listener:
        """Bind and listen (accepting starts with :meth:`serve`), or raise :class:`BindError`.

        ``reuse_port`` lets the worker processes of one ``certgate serve`` each bind the
        address; the kernel then spreads new connections over them. ``freebind``: bind even
        when the address is not on this host (yet).
        """
        sock = listening_socket(address, port, backlog, reuse_port, freebind)
        listener = cls(address, port, sock)
        listener.freebind = freebind
        return listener

    @property
    def serving(self) -> bool:
        return self._front_id is not None

    def serve(self, front: Front, context: Context, fingerprint: str) -> None:
        """Present ``context`` to every connection accepted from now on."""
        if self._front_id is None:
            self._front_id = front.listen(self._socket.fileno(), context)
            self._front = front
        elif context is not self.context:
            front.set_context(self._front_id, context)
        self.context = context
        self.fingerprint = fingerprint

    @property
    def front_id(self) -> int | None:
        """The front end's name for this listener, once it serves."""
        return self._front_id

    def close(self) -> None:
        """Stop accepting; connections already accepted may finish."""
        if self._front is not None and self._front_id is not None:
            with contextlib.suppress(KeyError, RuntimeError):  # the front end closed first
                self._front.unlisten(self._front_id)
        self._front = None
        self._front_id = None
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


#: Linux's socket option (``IPPROTO_IP`` level, for IPv4 and IPv6 sockets alike) that binds
#: an address the host does not have (yet); Python names it from 3.12 on.
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


def on_this_host(address: str) -> bool:
    """Whether the host has ``address`` now: a plain bind to it (no ``IP_FREEBIND``, an
    ephemeral port, closed at once) succeeds. For a floating address, whether this node holds
    it (keepalived/VRRP moved it here)."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except OSError as error:
        return error.errno != errno.EADDRNOTAVAIL
    except ValueError:
        return False
    return True


def no_longer_here(address: str, freebind: bool, floating: bool) -> bool:
    """Whether a listener bound with ``IP_FREEBIND`` (``freebind``) must be bound again because
    its address is pinned now (not ``floating``) and is not on this host: bound plainly, it
    fails and says so, instead of listening where nothing arrives."""
    return freebind and not floating and not on_this_host(address)


def listening_socket(
    address: str, port: int, backlog: int, reuse_port: bool = False, freebind: bool = False
) -> socket.socket:
    """A non-blocking socket listening on ``address:port`` (IPv6 only for an IPv6 address),
    or :class:`BindError` saying why not. Also the plain HTTP listeners' (``tls/plain.py``).

    ``freebind`` (a floating address) sets ``IP_FREEBIND``: the bind succeeds while another
    host holds the address, and connections are accepted the moment it arrives here (moved
    by keepalived/VRRP or the cloud), with no rebind and no ``net.ipv4.ip_nonlocal_bind``.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise BindError(f"{address!r} is not an IPv4 or IPv6 address") from None
    where = f"[{address}]:{port}" if ip.version == 6 else f"{address}:{port}"
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        # out of descriptors (a flood of clients), or no IPv6 in this kernel: this address fails
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as error:
        raise BindError(f"cannot listen on {where}: {_explain(error, address, port)}") from None
    try:
        # Rebinding right after a restart must not wait for TIME_WAIT connections.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if freebind:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.bind((address, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise BindError(
            f"cannot listen on {where}: {_explain(error, address, port)}", error.errno
        ) from None
    return sock
