"""The plain HTTP listeners: one per appliance address on the HTTP port, when one is set.

They carry nothing but what the application protocol they are handed says (ACME http-01
answers and a redirect to HTTPS, ``web/challenge.py``): no TLS, no front end, asyncio's own
server on a socket bound like a TLS listener's. Reconciled like the TLS listeners: ``apply``
takes the whole desired state (addresses, port) and returns a status per address; one
address that cannot be bound stops only itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from certgate.tls.listener import BindError, listening_socket, no_longer_here
from certgate.tls.plan import ListenerStatus

log = logging.getLogger("certgate.serve")
BACKLOG = 128


class PlainListeners:
    def __init__(
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], reuse_port: bool = False
    ) -> None:
        self._factory = protocol_factory
        self._reuse_port = reuse_port
        self._servers: dict[str, asyncio.Server] = {}
        self._port = 0
        self._failed: dict[str, str] = {}
        self._freebind: set[str] = set()  # the addresses bound with IP_FREEBIND

    async def apply(
        self, addresses: Iterable[str], port: int, freebind: frozenset[str] = frozenset()
    ) -> list[ListenerStatus]:
        """Listen on ``port`` of each address (none when ``port`` is 0); stop elsewhere.
        Addresses in ``freebind`` are bound with ``IP_FREEBIND`` (floating addresses)."""
        wanted = set(addresses) if port else set()
        if port != self._port:
            await self._close(set(self._servers))
            self._port = port
        await self._close(set(self._servers) - wanted)
        await self._close(
            {a for a in self._servers if no_longer_here(a, a in self._freebind, a in freebind)}
        )
        self._failed = {address: why for address, why in self._failed.items() if address in wanted}
        loop = asyncio.get_running_loop()
        for address in sorted(wanted - set(self._servers)):
            try:
                sock = listening_socket(
                    address, port, BACKLOG, self._reuse_port, address in freebind
                )
            except BindError as error:
                self._failed[address] = str(error)
                continue
            self._failed.pop(address, None)
            self._servers[address] = await loop.create_server(self._factory, sock=sock)
            if address in freebind:
                self._freebind.add(address)
        return self.status()

    def status(self) -> list[ListenerStatus]:
        statuses = [
            ListenerStatus(address, self._port, "listening", None, None)
            for address in self._servers
        ]
        statuses += [
            ListenerStatus(address, self._port, "failed", why, None)
            for address, why in self._failed.items()
        ]
        return sorted(statuses, key=lambda status: status.address)

    async def close(self) -> None:
        await self._close(set(self._servers))
        self._failed.clear()

    async def _close(self, addresses: set[str]) -> None:
        for address in addresses:
            server = self._servers.pop(address)
            self._freebind.discard(address)
            server.close()
        # Connections in flight end by themselves (deadlines, one small answer each).
