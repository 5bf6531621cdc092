"""The protocol every accepted connection starts with, until its TLS handshake is done.

It exists for two reasons: ``close()`` must know which handshakes are still in flight to let
them finish, and the application protocol should only be created for connections that
completed a handshake (scanners and failed handshakes never reach it). Once the handshake is
done it hands the TLS transport to the application protocol and drops out of the data path.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class HandshakeTracker:
    """The protocol factory given to the listeners; knows the handshakes in flight."""

    def __init__(self, protocol_factory: ProtocolFactory) -> None:
        self._protocol_factory = protocol_factory
        # Weak: a connection whose handshake fails is dropped by the loop without any
        # callback to its protocol, and then simply disappears from this set.
        self._pending: weakref.WeakSet[_Handshake] = weakref.WeakSet()

    def __call__(self) -> asyncio.BaseProtocol:
        handshake = _Handshake(self._protocol_factory, self._pending)
        self._pending.add(handshake)
        return handshake

    @property
    def in_flight(self) -> int:
        """Connections accepted whose handshake has neither completed nor failed yet."""
        return len(self._pending)


class _Handshake(asyncio.Protocol):
    __slots__ = ("__weakref__", "_pending", "_protocol_factory")

    def __init__(
        self, protocol_factory: ProtocolFactory, pending: weakref.WeakSet[_Handshake]
    ) -> None:
        self._protocol_factory = protocol_factory
        self._pending = pending

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Called by the TLS layer once the handshake succeeded.
        self._pending.discard(self)
        protocol = self._protocol_factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._pending.discard(self)
