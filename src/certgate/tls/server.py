"""The data plane: keeps one TLS listener per address in line with the plan it is handed.

``apply`` reconciles; it never raises for one address that cannot be served, because the
other addresses must go on serving: each address's outcome is in the returned statuses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time

from certgate.tls.contexts import ContextCache, ContextError, ContextKey, context_key
from certgate.tls.handshakes import HandshakeTracker, ProtocolFactory
from certgate.tls.listener import BindError, Listener
from certgate.tls.plan import ListenerPlan, ListenerStatus


class TlsServer:
    """TLS listeners presenting, on each address, the certificate the plan assigns to it.

    ``protocol_factory`` makes the plaintext application protocol run over each connection;
    it is called once per completed handshake. ``reuse_port`` binds with ``SO_REUSEPORT``, so
    that several worker processes serve the same addresses. Every method runs on the event
    loop thread.
    """

    def __init__(
        self,
        protocol_factory: ProtocolFactory,
        *,
        handshake_timeout: float = 10.0,
        backlog: int = 1024,
        reuse_port: bool = False,
    ) -> None:
        self._tracker = HandshakeTracker(protocol_factory)
        self._handshake_timeout = handshake_timeout
        self._backlog = backlog
        self._reuse_port = reuse_port
        self._contexts = ContextCache()
        self._listeners: dict[str, Listener] = {}
        self._statuses: dict[str, ListenerStatus] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    async def apply(self, plan: ListenerPlan) -> list[ListenerStatus]:
        """Make the listeners match ``plan``; returns the status of every planned address.

        When it returns, every connection accepted afterwards gets the planned certificate and
        policy. Connections accepted before finish as they started, including those on an
        address that was removed. Addresses that failed before are retried.
        """
        async with self._lock:
            if self._closed:
                raise RuntimeError("this TlsServer is closed")
            contexts = await self._contexts.prepare(plan.assignments.values(), plan.policy)
            previous = self._listeners
            kept: dict[str, Listener] = {}
            try:
                statuses = await self._reconcile(plan, contexts, previous, kept)
            except BaseException:
                # Cancelled or broken half-way: keep what ran before, drop what was new.
                for address, listener in kept.items():
                    if previous.get(address) is not listener:
                        listener.close()
                raise
            # Only now, so that a port change never leaves a gap on an address.
            for address, listener in previous.items():
                if kept.get(address) is not listener:
                    listener.close()
            self._listeners = kept
            self._statuses = statuses
            return self.status()

    async def _reconcile(
        self,
        plan: ListenerPlan,
        contexts: dict[ContextKey, ssl.SSLContext | ContextError],
        previous: dict[str, Listener],
        kept: dict[str, Listener],
    ) -> dict[str, ListenerStatus]:
        """Bring each planned address up to date; fills ``kept`` with the listeners in use."""
        statuses: dict[str, ListenerStatus] = {}
        for address, certificate in plan.assignments.items():
            built = contexts[context_key(certificate, plan.policy)]
            listener = previous.get(address)
            if listener is not None and listener.port != plan.port:
                listener = None  # a port change rebinds; the old listener closes afterwards
            if listener is None:
                if isinstance(built, ContextError):
                    statuses[address] = _failed(address, plan.port, str(built))
                    continue
                try:
                    listener = Listener.bind(address, plan.port, self._backlog, self._reuse_port)
                except BindError as error:
                    statuses[address] = _failed(address, plan.port, str(error))
                    continue
            kept[address] = listener
            problem: str | None = None
            if isinstance(built, ContextError):
                problem = f"{built}; still presenting {listener.fingerprint}"
            else:
                try:
                    await listener.serve(
                        built, certificate.fingerprint, self._tracker, self._handshake_timeout
                    )
                except OSError as error:
                    problem = f"cannot start serving: {error.strerror or error}"
            if listener.serving:
                statuses[address] = ListenerStatus(
                    address, plan.port, "listening", problem, listener.fingerprint
                )
            else:
                del kept[address]
                listener.close()
                statuses[address] = _failed(address, plan.port, problem or "not serving")
        return statuses

    def status(self) -> list[ListenerStatus]:
        """The planned addresses, IPv4 before IPv6, in numeric order."""
        return sorted(self._statuses.values(), key=_address_order)

    async def close(self, grace: float = 2.0) -> None:
        """Stop accepting on every address, then give handshakes in flight up to ``grace``
        seconds to finish. Established connections are left to the application protocol."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            for listener in self._listeners.values():
                listener.close()
            self._listeners = {}
            self._statuses = {}
            self._contexts.clear()
            deadline = time.monotonic() + grace
            while self._tracker.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.01)


def _failed(address: str, port: int, error: str) -> ListenerStatus:
    return ListenerStatus(address, port, "failed", error, None)


def _address_order(status: ListenerStatus) -> tuple[int, int, str]:
    try:
        ip = ipaddress.ip_address(status.address)
    except ValueError:
        return (9, 0, status.address)
    return (ip.version, int(ip), status.address)
