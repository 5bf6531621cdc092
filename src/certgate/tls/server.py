"""The data plane: keeps one TLS listener per address in line with the plan it is handed.

``apply`` reconciles; it never raises for one address that cannot be served, because the
other addresses must go on serving: each address's outcome is in the returned statuses.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from certgate.tls.contexts import ContextCache, ContextError, ContextKey, context_key
from certgate.tls.counts import FrontCounts
from certgate.tls.handoff import Handoff, ProtocolFactory
from certgate.tls.listener import BindError, Listener, no_longer_here
from certgate.tls.native import front_class
from certgate.tls.plan import Deadlines, ListenerPlan, ListenerStatus
from certgate.tls.tickets import next_rotation, ticket_keys

if TYPE_CHECKING:
    from certgate.tls._front import Context, Front

log = logging.getLogger("certgate.tls")


class TlsServer:
    """TLS listeners presenting, on each address, the certificate the plan assigns to it.

    The TLS layer runs in the front end's native thread (``_front.c``): accepting, handshakes
    and records. ``protocol_factory`` makes the plaintext application protocol run over each
    connection; it is called once a client completed its handshake and sent data, so scanners,
    failed handshakes and clients that never speak never reach it. The plan's ``deadlines``
    bound each phase: a client must complete its handshake within ``handshake`` seconds, send
    its first data within ``header``, and, whenever a write to it waits for room, take some of
    it within ``send`` (the application is handed the rest with each connection).
    ``reuse_port`` binds with ``SO_REUSEPORT``, so that several worker processes serve the
    same addresses. Every method runs on the event loop thread.
    """

    def __init__(
        self,
        protocol_factory: ProtocolFactory,
        *,
        backlog: int = 1024,
        reuse_port: bool = False,
        ticket_secret: bytes | None = None,
    ) -> None:
        self._protocol_factory = protocol_factory
        self._deadlines = Deadlines()
        self._front: Front | None = None
        self._handoff: Handoff | None = None
        self._served: dict[int, Context] = {}  # front listener id -> context
        self._backlog = backlog
        self._reuse_port = reuse_port
        self._contexts = ContextCache()
        self._challenge_contexts = ContextCache(retired=0)
        self._challenges: dict[str, Context] = {}  # what the front end answers acme-tls/1 with
        self._listeners: dict[str, Listener] = {}
        self._statuses: dict[str, ListenerStatus] = {}
        self._plan: ListenerPlan | None = None  # the last one applied
        self._lock = asyncio.Lock()
        self._closed = False
        # Session tickets resume in every process given the same secret; without one, in
        # this process only.
        self._ticket_secret = ticket_secret or os.urandom(32)
        self._rotation: asyncio.TimerHandle | None = None

    async def apply(self, plan: ListenerPlan) -> list[ListenerStatus]:
        """Make the listeners match ``plan``; returns the status of every planned address.

        When it returns, every connection accepted afterwards gets the planned certificate and
        policy. Connections accepted before finish as they started, including those on an
        address that was removed. Addresses that failed before are retried.
        """
        async with self._lock:
            if self._closed:
                raise RuntimeError("this TlsServer is closed")
            front = self._start(plan.deadlines)
            self._set_deadlines(front, plan.deadlines)
            contexts = await self._contexts.prepare(plan.assignments.values(), plan.policy)
            previous = self._listeners
            changing = self._changing(plan)
            kept = {a: listener for a, listener in previous.items() if a not in changing}
            statuses = {a: status for a, status in self._statuses.items() if a not in changing}
            try:
                self._reconcile(front, plan, contexts, previous, kept, statuses, changing)
            except BaseException:
                # Cancelled or broken half-way: keep what ran before, drop what was new.
                for address, listener in kept.items():
                    if previous.get(address) is not listener:
                        listener.close()
                raise
            for address in changing:  # the contexts the hand-off reports, kept in place
                old, new = previous.get(address), kept.get(address)
                if old is not None and old is not new and old.front_id is not None:
                    self._served.pop(old.front_id, None)
                if new is not None and new.front_id is not None and new.context is not None:
                    self._served[new.front_id] = new.context
            # Only now, so that a port change never leaves a gap on an address.
            for address in changing:
                replaced = previous.get(address)
                if replaced is not None and kept.get(address) is not replaced:
                    replaced.close()
            self._listeners = kept
            self._statuses = statuses
            self._plan = plan
            await self._apply_challenges(front, plan)
            return self.status()

    async def _apply_challenges(self, front: Front, plan: ListenerPlan) -> None:
        """Hand the front end the TLS-ALPN-01 challenge contexts when they changed."""
        policy = plan.policy.for_challenges() if plan.challenges else plan.policy
        built = await self._challenge_contexts.prepare(plan.challenges.values(), policy)
        table: dict[str, Context] = {}
        for name, certificate in plan.challenges.items():
            context = built[context_key(certificate)]
            if isinstance(context, ContextError):
                log.error("cannot answer the TLS-ALPN-01 challenge of %s: %s", name, context)
            else:
                table[name] = context
        if table != self._challenges:
            front.set_challenges(list(table.items()))
            self._challenges = table

    def _changing(self, plan: ListenerPlan) -> set[str]:
        """The addresses ``plan`` changes: every one on a new port or policy; else those
        whose certificate or refusal changed, came or went, and those not fully served (they
        are retried). A commit that moves one address of 1,000 reconciles one listener."""
        last = self._plan
        everything = {*self._listeners, *self._statuses, *plan.assignments, *plan.refused}
        if last is None or last.port != plan.port or last.policy != plan.policy:
            return everything
        changing = {a for a, status in self._statuses.items() if status.error is not None}
        changing.update(everything - plan.assignments.keys() - plan.refused.keys())  # gone
        for address, certificate in plan.assignments.items():
            before = last.assignments.get(address)
            if before is not certificate and before != certificate:
                changing.add(address)
        changing.update(a for a, reason in plan.refused.items() if last.refused.get(a) != reason)
        # floating before, pinned now: bound again plainly if the address is not here
        changing.update(
            a
            for a, listener in self._listeners.items()
            if listener.freebind and a not in plan.freebind
        )
        return changing

    def _start(self, deadlines: Deadlines) -> Front:
        """The front end, started on the first plan (it needs the running loop)."""
        if self._front is None:
            front = front_class()(deadlines.handshake, deadlines.header, deadlines.send)
            handoff = Handoff(front, self._protocol_factory, self._served)
            handoff.start(asyncio.get_running_loop())
            self._front, self._handoff = front, handoff
            self._deadlines = deadlines
            self._rotate_ticket_keys()
        return self._front

    def _set_deadlines(self, front: Front, deadlines: Deadlines) -> None:
        """New deadlines apply to the phases that start from now on."""
        if deadlines != self._deadlines:
            front.set_timeouts(deadlines.handshake, deadlines.header, deadlines.send)
            self._deadlines = deadlines
        if self._handoff is not None:
            self._handoff.deadlines = deadlines

    def set_ticket_secret(self, secret: bytes) -> None:
        """Derive the ticket keys from ``secret`` from now on (the master key was rotated):
        tickets made under the old keys no longer resume; they get a full handshake."""
        self._ticket_secret = secret
        if self._rotation is not None:
            self._rotation.cancel()
            self._rotation = None
        self._rotate_ticket_keys()

    def _rotate_ticket_keys(self) -> None:
        """Give the front end the ticket keys of this period, and come back at the next."""
        if self._front is None or self._closed:
            return
        now = time.time()
        self._front.set_ticket_keys(ticket_keys(self._ticket_secret, now))
        delay = next_rotation(now) - now
        self._rotation = asyncio.get_running_loop().call_later(delay, self._rotate_ticket_keys)

    def _reconcile(
        self,
        front: Front,
        plan: ListenerPlan,
        contexts: dict[ContextKey, Context | ContextError],
        previous: dict[str, Listener],
        kept: dict[str, Listener],
        statuses: dict[str, ListenerStatus],
        changing: set[str],
    ) -> None:
        """Bring each planned address of ``changing`` up to date, in the plan's order (of
        two ways to write one address, the first binds and the second is told why not);
        fills ``kept`` with the listeners in use and ``statuses`` with what each one does."""
        for address, reason in plan.refused.items():
            if address not in changing:
                continue
            listener = previous.get(address)
            if listener is not None and listener.port == plan.port and listener.serving:
                kept[address] = listener  # what it presented before goes on being served
                statuses[address] = ListenerStatus(
                    address,
                    plan.port,
                    "listening",
                    f"{reason}; still presenting {listener.fingerprint}",
                    listener.fingerprint,
                )
            else:
                statuses[address] = _failed(address, plan.port, reason)
        for address, certificate in plan.assignments.items():
            if address not in changing:
                continue
            built = contexts[context_key(certificate)]
            listener = previous.get(address)
            if listener is not None and (
                listener.port != plan.port
                or no_longer_here(address, listener.freebind, address in plan.freebind)
            ):
                listener = None  # bound again; the old listener closes afterwards
            if listener is None:
                if isinstance(built, ContextError):
                    statuses[address] = _failed(address, plan.port, str(built))
                    continue
                try:
                    listener = Listener.bind(
                        address,
                        plan.port,
                        self._backlog,
                        self._reuse_port,
                        address in plan.freebind,
                    )
                except BindError as error:
                    ours = [*previous.values(), *kept.values()]
                    why = _bind_problem(error, address, plan.port, ours)
                    statuses[address] = _failed(address, plan.port, why)
                    continue
            kept[address] = listener
            problem: str | None = None
            if isinstance(built, ContextError):
                problem = f"{built}; still presenting {listener.fingerprint}"
            else:
                try:
                    listener.serve(front, built, certificate.fingerprint)
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

    def status(self) -> list[ListenerStatus]:
        """The planned addresses, IPv4 before IPv6, in numeric order."""
        return sorted(self._statuses.values(), key=_address_order)

    def counts(self) -> FrontCounts:
        """The front end's handshakes since it started, and the connections it holds now."""
        front = self._front
        if front is None:
            return FrontCounts()
        return FrontCounts(front.handshakes_completed, front.handshakes_failed, front.connections)

    async def close(
        self, grace: float | None = None, finish: Callable[[], None] | None = None
    ) -> None:
        """Stop: no new connection from this moment; handshakes in flight may finish and
        reach the application; ``finish`` tells the application to end its connections once
        their requests in flight are answered. After ``grace`` seconds (the deadlines'
        ``shutdown_grace`` by default) every connection left is ended, and this returns.
        Without ``finish``, established connections are left to the application.
        """
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._rotation is not None:
                self._rotation.cancel()
            for listener in self._listeners.values():
                listener.close()
            self._listeners = {}
            self._statuses = {}
            self._plan = None
            self._contexts.clear()
            self._challenge_contexts.clear()
            if finish is not None:
                finish()
            front, handoff = self._front, self._handoff
            if front is None or handoff is None:
                return
            seconds = self._deadlines.shutdown_grace if grace is None else grace
            deadline = time.monotonic() + seconds
            while front.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            handoff.stop()  # what completed meanwhile still reaches the application
            front.close()  # ends the handshakes still in flight
            if finish is None:
                return
            while front.connections and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            front.abort()  # whatever is left: clients that do not read, requests still running
            ended = time.monotonic() + 1.0
            while front.connections and time.monotonic() < ended:
                await asyncio.sleep(0.01)


def _bind_problem(error: BindError, address: str, port: int, ours: Iterable[Listener]) -> str:
    """A port taken by one of this server's own listeners is not "another program"'s: the
    same address written another way, or a wildcard that takes the port on every address."""
    if error.errno != errno.EADDRINUSE:
        return str(error)
    try:
        wanted = ipaddress.ip_address(address)
    except ValueError:
        return str(error)
    where = f"[{address}]:{port}" if wanted.version == 6 else f"{address}:{port}"
    for listener in ours:
        held = ipaddress.ip_address(listener.address)
        if listener.port != port or held.version != wanted.version:
            continue
        if held == wanted:
            why = "the same address written another way"
        elif held.is_unspecified or wanted.is_unspecified:
            why = "a wildcard address takes the port on every address"
        else:
            continue
        return (
            f"cannot listen on {where}: the port is already taken by certgate's own "
            f"listener on {listener.address} ({why})"
        )
    return str(error)


def _failed(address: str, port: int, error: str) -> ListenerStatus:
    return ListenerStatus(address, port, "failed", error, None)


def _address_order(status: ListenerStatus) -> tuple[int, int, str]:
    return _address_key(status.address)


@functools.lru_cache(maxsize=8192)
def _address_key(address: str) -> tuple[int, int, str]:
    """Parsed once per address: parsing 1,000 of them took longer than the rest of a swap."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (9, 0, address)
    return (ip.version, int(ip), address)
