"""Cluster membership: every ``certgate serve`` is a named node that writes a heartbeat into
the store (its version, start, last beat and what each of its listeners presents), so any
node, the CLI and the pages can say which nodes are alive and where one presents another
certificate than the one assigned (drift).

A reconciler's report, not a command: the heartbeat is written at start, after every change
the node applies, and every ``HEARTBEAT_INTERVAL`` seconds; a node is alive while it keeps
to its own interval (its last beat is at most ``MISSED_BEATS`` intervals old). A node that
stops cleanly says so (``stopped``); one that dies (SIGKILL, power) shows as ``lost``. The
write skips when the store's write lock is busy (``Store.touch``): a late beat is retried by
the next one, and no beat ever waits behind an import.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from certgate import __version__
from certgate.errors import AlreadyServingError, ConflictError, NotFoundError
from certgate.limits import BOOT_ID_MAX, NODE_HOST_MAX, NODE_NAME_MAX
from certgate.pki.diagnostics import format_time
from certgate.service.appliance import Appliance
from certgate.service.networking import AddressView, list_addresses
from certgate.store import master_key, nodes
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.models import MasterKeyRow, NodeRow
from certgate.text import check_name

log = logging.getLogger("certgate.nodes")

#: Seconds between two heartbeats (``$CERTGATE_HEARTBEAT_INTERVAL`` may ask for another).
HEARTBEAT_INTERVAL = 5.0
HEARTBEAT_ENV = "CERTGATE_HEARTBEAT_INTERVAL"
#: A node is alive while its last beat is at most this many of its intervals old.
MISSED_BEATS = 3
#: Unique to one boot of one machine: two nodes with it run on one host, whatever its name
#: (a failover pair cloned from one image may share its host name, even its machine-id).
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


class NodeState(StrEnum):
    ALIVE = "alive"  # its heartbeat is on time
    STOPPED = "stopped"  # it stopped cleanly
    LOST = "lost"  # its heartbeat stopped without a clean stop: it died or cannot write


@dataclass(frozen=True)
class NodeListener:
    address: str
    port: int
    state: str
    fingerprint: str | None
    error: str | None
    #: for a floating address: whether the node holds it (it is on the node's host); None
    #: for a pinned one (bound only where it is) and in a heartbeat that did not say
    held: bool | None = None


@dataclass(frozen=True)
class Drift:
    """An address the node serves (floating, or pinned to it) where it presents another
    certificate than the assigned one, or none."""

    address: str
    assigned_fingerprint: str
    assigned_name: str
    presented_fingerprint: str | None  # None: the node does not serve the address


@dataclass(frozen=True)
class NodeView:
    name: str
    version: str
    started_at: dt.datetime
    last_seen: dt.datetime
    state: NodeState
    alive_within: float  # seconds: alive while last seen at most this long ago
    listeners: list[NodeListener]  # HTTPS
    drift: list[Drift]  # only for a node that is alive
    #: the generation of the master key it runs with (None: not known, or none of the store's)
    master_key_generation: int | None = None
    #: it runs with a key that ``certgate key rotate`` replaced: it loads nothing new
    master_key_stale: bool = False
    #: its plain HTTP listeners (ACME http-01, the redirect): none without an HTTP port, and
    #: none said by a node from before they were
    http_listeners: list[NodeListener] = field(default_factory=list)
    #: whether its heartbeat lists them (False: a node of an earlier version, which does not)
    http_said: bool = True
    #: the host it runs on (None: a node from before it was recorded)
    host: str | None = None
    #: its host's boot id: which nodes share a host (None: not recorded)
    boot_id: str | None = None

    @property
    def holds(self) -> list[str]:
        """The floating addresses this node holds now: it answers them (alive nodes only)."""
        if not self.alive:
            return []
        return [listener.address for listener in self.listeners if listener.held]

    @property
    def alive(self) -> bool:
        return self.state is NodeState.ALIVE


def node_name(text: str | None) -> str:
    """The node's name as given (``--node``), or the host's name."""
    return check_name(text if text is not None else socket.gethostname(), "node", NODE_NAME_MAX)


def heartbeat_interval() -> float:
    value = os.environ.get(HEARTBEAT_ENV, "")
    try:
        return max(0.1, float(value)) if value else HEARTBEAT_INTERVAL
    except ValueError:
        return HEARTBEAT_INTERVAL


def heartbeat(
    app: Appliance,
    name: str,
    started_at: dt.datetime,
    interval: float,
    listeners: Sequence[Mapping[str, Any]],
    http_listeners: Sequence[Mapping[str, Any]] = (),
    host: tuple[str, str | None] | None = None,
) -> bool:
    """Record that the node runs, on which host (``host``: name and boot id; this one's by
    default), and what its HTTPS and plain HTTP listeners present; False when skipped (store
    busy)."""
    values = _beat_values(app, started_at, interval, listeners, http_listeners, host)
    return app.store.touch(lambda repository: nodes.beat(repository, name, values))


def _beat_values(
    app: Appliance,
    started_at: dt.datetime,
    interval: float,
    listeners: Sequence[Mapping[str, Any]] = (),
    http_listeners: Sequence[Mapping[str, Any]] = (),
    host: tuple[str, str | None] | None = None,
) -> dict[str, Any]:
    host_name, boot_id = host or (socket.gethostname(), current_boot_id())
    return {
        "host": host_name[:NODE_HOST_MAX],
        "boot_id": boot_id,
        "version": __version__,
        "started_at": started_at,
        "last_seen": app.now(),
        "interval": interval,
        "stopped_at": None,
        "listeners": [_listener_document(listener) for listener in listeners],
        "http_listeners": [_listener_document(listener) for listener in http_listeners],
        "master_key_id": app.sealer.key_id,
    }


def claim_name(app: Appliance, name: str) -> None:
    """Refuse to start a node under a name a node of another host is using: both would
    write one heartbeat row, so the node list, Status and the floating addresses' holders
    would flip between them (cloned hosts share a host name, the default name). A row of
    another boot that is still alive may also be this host's own, from before a quick
    reboot: its heartbeat is watched until it beats again (another node: refused) or its
    time runs out (up to ``MISSED_BEATS`` of its intervals). A restart on the same boot is
    no conflict, nor is a node that stopped or was lost."""
    mine = current_boot_id()
    seen: dt.datetime | None = None
    while True:
        row = _held_or_claimed(app, name)
        if row is None or mine is None or row.boot_id is None or row.boot_id == mine:
            return
        if _state(app, row) is not NodeState.ALIVE:
            return
        if seen is not None and row.last_seen > seen:
            raise AlreadyServingError(
                f"node name {name!r} is in use by the 'certgate serve' on host "
                f"{row.host or 'unknown'!r} (boot {row.boot_id[:8]}, last heartbeat at "
                f"{format_time(row.last_seen)}): give this node its own name with --node"
            )
        if seen is None:
            log.info(
                "node %r last beat on another boot (host %r) at %s: waiting for its next "
                "heartbeat or its end",
                name,
                row.host,
                format_time(row.last_seen),
            )
        seen = row.last_seen
        time.sleep(min(row.interval, 1.0))


def _held_or_claimed(app: Appliance, name: str) -> NodeRow | None:
    """The row under ``name``, or None when there was none and this node's first heartbeat
    now holds it: of two starts that found none at the same moment, the one whose row was
    written second reads the other's, and is judged by it."""
    with app.store.reading() as repository:
        row = nodes.node(repository, name)
    if row is not None:
        return row
    try:
        with app.store.transaction() as repository:
            row = nodes.node(repository, name, for_update=True)
            if row is None:
                nodes.beat(repository, name, _beat_values(app, app.now(), heartbeat_interval()))
            return row
    except ConflictError:  # the other start's row, written meanwhile
        return _held_or_claimed(app, name)


@functools.cache  # one per boot: a reboot ends the process
def current_boot_id() -> str | None:
    try:
        return BOOT_ID_FILE.read_text().strip()[:BOOT_ID_MAX] or None
    except OSError:
        return None


def stopped(app: Appliance, name: str, started_at: dt.datetime, interval: float) -> None:
    """The node stopped cleanly: it presents nothing any more."""
    now = app.now()
    values = {
        "version": __version__,
        "started_at": started_at,
        "last_seen": now,
        "interval": interval,
        "stopped_at": now,
        "listeners": [],
        "http_listeners": [],
    }
    with app.store.transaction() as repository:
        nodes.beat(repository, name, values)


def _listener_document(listener: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("address", "port", "state", "fingerprint", "error", "held")
    return {key: listener.get(key) for key in keys}


def list_nodes(app: Appliance) -> list[NodeView]:
    """Every node that has run on this store, by name, with its state and drift."""
    assigned = list_addresses(app)
    with app.store.reading() as repository:
        generations = _generations(master_key.record(repository))
        return [_view(app, row, assigned, generations) for row in nodes.all_nodes(repository)]


def remove_node(app: Appliance, name: str, actor: Actor = APPLIANCE) -> None:
    """Forget a node that is stopped or lost (retired, renamed); an alive one is refused:
    its next heartbeat would register it again. So is one with addresses pinned to it: they
    are served by nobody, and Status would say so of a node that never ran (a warning)."""
    name = node_name(name)
    with app.store.transaction(actor) as repository:
        row = nodes.node(repository, name, for_update=True)  # judged on its latest beat
        if row is None:
            raise NotFoundError(f"no node is named {name!r} ('certgate node list' lists them)")
        if _state(app, row) is NodeState.ALIVE:
            raise ConflictError(
                f"node {name!r} is alive (its last heartbeat was at "
                f"{format_time(row.last_seen)}): stop its 'certgate serve' first"
            )
        pinned = [
            address.address
            for address in repository.ip_addresses(for_update=True)
            if address.node == name
        ]
        if pinned:  # forgotten, it would read as a node that never ran: served by nobody
            raise ConflictError(
                f"{', '.join(pinned)} {'is' if len(pinned) == 1 else 'are'} pinned to node "
                f"{name!r}: give {'it' if len(pinned) == 1 else 'them'} to another node or to "
                "every node first ('certgate ip set ADDRESS --node NAME' or '--floating')"
            )
        repository.delete(row)
        repository.audit(AuditAction.NODE_REMOVE, name)


def _state(app: Appliance, row: NodeRow) -> NodeState:
    if row.stopped_at is not None:
        return NodeState.STOPPED
    if (app.now() - row.last_seen).total_seconds() <= MISSED_BEATS * row.interval:
        return NodeState.ALIVE
    return NodeState.LOST


def _generations(record: MasterKeyRow) -> dict[str, tuple[int, bool]]:
    """Key id -> (its generation, whether it is current), for the store's keys."""
    found = {
        str(entry.get("key_id")): (int(entry.get("generation", 0)), False)
        for entry in record.retired or []
    }
    if record.key_id is not None:
        found[record.key_id] = (record.generation, True)
    return found


def _view(
    app: Appliance,
    row: NodeRow,
    assigned: Sequence[AddressView],
    generations: Mapping[str, tuple[int, bool]],
) -> NodeView:
    state = _state(app, row)
    # a node (or a store) from before key ids were recorded cannot be told stale
    untold = row.master_key_id is None or not generations
    generation, current = generations.get(row.master_key_id or "", (None, untold))
    listeners = [NodeListener(**_listener_document(entry)) for entry in row.listeners or []]
    http_listeners = [
        NodeListener(**_listener_document(entry)) for entry in row.http_listeners or []
    ]
    return NodeView(
        name=row.name,
        version=row.version,
        started_at=row.started_at,
        last_seen=row.last_seen,
        state=state,
        alive_within=MISSED_BEATS * row.interval,
        listeners=listeners,
        drift=_drift(row.name, listeners, assigned) if state is NodeState.ALIVE else [],
        master_key_generation=generation,
        master_key_stale=state is NodeState.ALIVE and not current,
        http_listeners=http_listeners,
        http_said=row.http_listeners is not None,
        host=row.host,
        boot_id=row.boot_id,
    )


def _drift(
    node: str, listeners: Sequence[NodeListener], assigned: Sequence[AddressView]
) -> list[Drift]:
    """Only the addresses this node should serve: another node's pinned address is not
    expected here."""
    presented = {
        listener.address: listener.fingerprint
        for listener in listeners
        if listener.state == "listening"
    }
    return [
        Drift(
            address.address,
            address.certificate_fingerprint,
            address.certificate_name,
            presented.get(address.address),
        )
        for address in assigned
        if address.served_by(node)
        and presented.get(address.address) != address.certificate_fingerprint
    ]
