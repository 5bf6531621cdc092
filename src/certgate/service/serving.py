"""The running appliance: turns the committed store into a listener plan and keeps the TLS
listeners on it, noticing commits from any process by watching the one-row revision."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy.exc import SQLAlchemyError

from certgate.errors import (
    AlreadyServingError,
    CertgateError,
    NothingToServeError,
    StaleMasterKeyError,
    StoreUnavailableError,
    internal_error,
)
from certgate.pki.chain import MAX_CHAIN_DEPTH
from certgate.pki.keys import private_key_to_pkcs8_pem
from certgate.pki.tls_alpn import challenge_certificate, server_name
from certgate.service import master_key, nodes, served_state
from certgate.service.appliance import COUNTS_FILE, LOCK_FILE, STATUS_FILE, Appliance
from certgate.service.keystore import get_private_key
from certgate.service.networking import check_address
from certgate.service.served_state import CachedState, SealedKey, ServedState
from certgate.service.stored import stored_certificate
from certgate.service.tls_settings import read_settings
from certgate.service.views import chain_rows
from certgate.store import acme as acme_queries
from certgate.store.models import CertificateRow
from certgate.store.repository import ChainLink, KnownLinks, Repository, ServedLink
from certgate.store.watch import RevisionWatch
from certgate.tls import Deadlines, ListenerPlan, ListenerStatus, ServedCertificate, TlsServer
from certgate.tls.counts import CountsSlot
from certgate.tls.listener import on_this_host
from certgate.tls.plain import PlainListeners

log = logging.getLogger("certgate.serve")
WATCH_INTERVAL = 0.01  # seconds between looks at the store's revision (store/watch.py)
#: ``poll``: follow a PostgreSQL store by reading its revision every WATCH_INTERVAL instead
#: of LISTEN/NOTIFY (for a connection pooler that does not pass LISTEN; the benchmark's
#: baseline). SQLite is always polled.
WATCH_ENV = "CERTGATE_REVISION_WATCH"
#: What the TLS session ticket keys are derived from the master key for: every worker and
#: node holding the same master key resumes the others' tickets.
TICKET_SECRET = "tls session tickets"
RETRY_INTERVAL = 1.0  # seconds before a plan that could not be read is read again
#: seconds between two binds of an address that failed to bind (the port taken by another
#: program, the address not on this host yet): retried until it listens, commit or not
BIND_RETRY_INTERVAL = 1.0
COUNTS_INTERVAL = 1.0  # seconds between publications of the front end's counts (/metrics)
#: Said when the plan has no address at all: the server runs on, listening nowhere, and
#: binds an address as soon as one is added.
NO_ADDRESS_MESSAGE = (
    "no IP address is configured, so certgate serve listens nowhere and /appliance cannot be "
    "reached: run 'certgate ip add 127.0.0.1' (or an address of this host); this server "
    "listens on it at once (https://127.0.0.1:%d/appliance)"
)


#: What a served certificate was made from: its leaf, the fingerprints of its chain and its
#: sealed key. The same stamp gives the same ``ServedCertificate`` (or the same refusal).
_Stamp = tuple[str, tuple[str, ...], bytes | None]


class PlanCache:
    """The served certificates of the last plan, by certificate id, with their stamps.

    A plan is re-read after every commit that wrote a served table, and on a large appliance
    most of those change one address or none (an import of certificates no address uses).
    Building each address's chain PEM and unsealing its key again cost ~0.4 ms per address
    (400 ms at 1,000 addresses, every commit); comparing stamps read from a few columns costs
    a few milliseconds, and only certificates whose stamp changed are built again. Kept
    ``ServedCertificate`` objects are the same objects, so the listeners' contexts (keyed by
    their bytes) are found again at no cost.
    """

    def __init__(self) -> None:
        self._served: dict[int, tuple[_Stamp, ServedCertificate | str]] = {}
        self._rows: KnownLinks = {}  # the last read's links, by their row
        self._above: set[ChainLink] = set()  # the certificates their chains go through
        self._stamped: dict[int, tuple[ServedLink, _Stamp]] = {}  # the leaf each was made of
        self._address_problems: dict[str, str | None] = {}
        self._send_root = False
        self._challenges: dict[tuple[str, str], ServedCertificate] = {}

    def challenges(self, app: Appliance, repository: Repository) -> dict[str, ServedCertificate]:
        """The TLS-ALPN-01 challenge certificates by the SNI a validator sends (an IP
        address's by its reverse-mapping name, RFC 8738 6); each made once per (identifier,
        key authorization), so an unchanged challenge is the same object in every plan."""
        wanted = acme_queries.tls_challenges(repository)
        kept = {
            (identifier, authorization): self._challenges.get((identifier, authorization))
            or _challenge_certificate(identifier, authorization, app.now())
            for identifier, authorization in wanted.items()
        }
        self._challenges = kept
        return {
            server_name(identifier): kept[identifier, authorization]
            for identifier, authorization in wanted.items()
        }

    def assignments(
        self, app: Appliance, repository: Repository, send_root: bool, node: str | None = None
    ) -> tuple[dict[str, ServedCertificate], dict[str, str], dict[str, SealedKey], frozenset[str]]:
        """Of the addresses ``node`` serves (floating, or pinned to it): address -> what it
        serves, address -> why it cannot be served, each served certificate's key as sealed
        in the store (by fingerprint, for the cached state), and the floating addresses;
        built again only where the stamp changed (every one when ``send_root`` changed)."""
        if send_root != self._send_root:
            self._served.clear()
            self._send_root = send_root
        links = repository.served_links(node, self._rows)
        stamps = self._stamps(repository, links)
        current: dict[int, tuple[_Stamp, ServedCertificate | str]] = {}
        for certificate_id, stamp in stamps.items():
            known = self._served.get(certificate_id)
            if known is not None and known[0] == stamp:
                current[certificate_id] = known
            else:
                outcome = _served_or_reason(app, repository, certificate_id, send_root)
                current[certificate_id] = (stamp, outcome)
        self._served = current
        served: dict[str, ServedCertificate] = {}
        refused: dict[str, str] = {}
        sealed: dict[str, SealedKey] = {}
        for link in links:
            problem = self._address_problem(link.address)
            outcome = current[link.certificate.id][1]
            if problem is not None:
                refused[link.address] = problem
            elif isinstance(outcome, str):
                refused[link.address] = outcome
            else:
                served[link.address] = outcome
                assert link.sealed_key is not None  # served: its key was unsealed
                key = SealedKey(link.certificate.public_key_fingerprint, link.sealed_key)
                sealed[outcome.fingerprint] = key
        floating = frozenset(link.address for link in links if link.node is None)
        return served, refused, sealed, floating

    def _address_problem(self, address: str) -> str | None:
        if address not in self._address_problems:
            try:
                check_address(address)
                self._address_problems[address] = None
            except CertgateError as error:
                problem = f"{error}: remove it with 'certgate ip remove'"
                self._address_problems[address] = problem
        return self._address_problems[address]

    def _stamps(self, repository: Repository, served: list[ServedLink]) -> dict[int, _Stamp]:
        """The stamp of each served certificate, from the columns that decide its chain and
        its key: one query per chain level above the leaves (usually one or two). While the
        certificates above are the same, a leaf read as before keeps its stamp: no chain is
        walked for the 999 addresses of 1,000 that a commit did not change."""
        leaves = {link.certificate.id: link for link in served}
        by_id = {link.certificate.id: link.certificate for link in served}
        by_fingerprint = {link.fingerprint: link for link in by_id.values()}
        above: set[ChainLink] = set()  # every certificate some chain goes through
        found = list(by_id.values())
        for _ in range(MAX_CHAIN_DEPTH):
            ids = {link.issuer_id for link in found if link.issuer_id is not None}
            fingerprints = {
                fingerprint
                for link in found
                if link.chain_mode == "manual"
                for fingerprint in link.manual_chain or ()
            }
            above.update(by_id[i] for i in ids & by_id.keys())  # a served one, or read already
            above.update(by_fingerprint[f] for f in fingerprints & by_fingerprint.keys())
            ids -= by_id.keys()
            fingerprints -= by_fingerprint.keys()
            if not ids and not fingerprints:
                break
            found = repository.chain_links(ids, fingerprints)
            above.update(found)
            for link in found:
                by_id[link.id] = link
                by_fingerprint[link.fingerprint] = link
        stamped = self._stamped if above == self._above else {}
        self._above = above
        stamps: dict[int, _Stamp] = {}
        for certificate_id, leaf in leaves.items():
            known = stamped.get(certificate_id)
            if known is not None and known[0] is leaf:
                stamps[certificate_id] = known[1]
                continue
            chain = chain_rows(leaf.certificate, by_id.get, by_fingerprint.get)
            issuers = tuple(link.fingerprint for link in chain)
            stamps[certificate_id] = (leaf.certificate.fingerprint, issuers, leaf.sealed_key)
        self._stamped = {i: (leaves[i], stamp) for i, stamp in stamps.items()}
        return stamps


def read_state(
    app: Appliance, cache: PlanCache | None = None, node: str | None = None
) -> ServedState:
    """Everything the listeners of ``node`` need, read in one transaction: the last
    committed state. With ``cache`` (the previous read's), only certificates that changed
    are built again. The node serves the floating addresses, bound with ``IP_FREEBIND`` so
    that whichever node holds one serves it, and those pinned to it; without a node, the
    floating ones only.

    A certificate that cannot be presented (its key cannot be unsealed: a damaged row, a
    wrong master key) refuses only the addresses that use it; every other address is planned.
    """
    cache = cache or PlanCache()
    with app.store.reading() as repository:
        settings = read_settings(repository)
        served, refused, sealed, floating = cache.assignments(
            app, repository, settings.send_root, node
        )
        challenges = cache.challenges(app, repository)
    return ServedState(settings, served, refused, sealed, challenges, floating)


def _challenge_certificate(
    identifier: str, key_authorization: str, now: dt.datetime
) -> ServedCertificate:
    """A TLS-ALPN-01 challenge certificate, with a key of its own made here (no store holds
    it)."""
    certificate, key = challenge_certificate(identifier, key_authorization, now)
    return ServedCertificate(
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        chain_pem=certificate.public_bytes(serialization.Encoding.PEM),
        key_pem=private_key_to_pkcs8_pem(key),
    )


def _served_or_reason(
    app: Appliance, repository: Repository, certificate_id: int, send_root: bool
) -> ServedCertificate | str:
    """The certificate ready to serve, or why it cannot be (naming it, never its key). A
    fault of another kind (a row damaged in a way not foreseen) refuses it alone too."""
    named = f"certificate {certificate_id}"
    try:
        row = repository.certificate(certificate_id)
        assert row is not None  # the foreign key guarantees it
        named = f"certificate {row.friendly_name!r} (id {row.id}, {row.fingerprint[:16]})"
        return _served(app, repository, row, send_root)
    except (StoreUnavailableError, SQLAlchemyError):
        raise  # the store, not this certificate: the whole read is tried again
    except CertgateError as error:
        return f"{named} cannot be presented: {error}"
    except Exception as error:
        log.exception("%s cannot be presented", named)
        return f"{named} cannot be presented: {internal_error(error)}"


def _served(
    app: Appliance, repository: Repository, row: CertificateRow, send_root: bool
) -> ServedCertificate:
    """The leaf, its issuers nearest first, and the root only if ``send_root``: a client
    that trusts the root has it already, and one that does not cannot trust it for being sent."""
    links = chain_rows(row, repository.certificate, repository.certificate_by_fingerprint)
    issuers = [stored_certificate(link) for link in links]
    if not send_root:
        issuers = [issuer for issuer in issuers if issuer.subject != issuer.issuer]
    pem = b"".join(
        certificate.public_bytes(serialization.Encoding.PEM)
        for certificate in [stored_certificate(row), *issuers]
    )
    key = get_private_key(repository, app.sealer, row.public_key_fingerprint)
    return ServedCertificate(
        fingerprint=row.fingerprint, chain_pem=pem, key_pem=private_key_to_pkcs8_pem(key)
    )


@dataclass(frozen=True)
class PlainHttp:
    """The plain HTTP listeners' protocol factory, its stop call, the port asked for
    on the command line (None: the stored setting's), and how its protocols are given the
    plan's deadlines (their connections come through no front end that would carry them)."""

    protocol_factory: Callable[[], asyncio.BaseProtocol]
    finish: Callable[[], None] | None = None
    port: int | None = None
    set_deadlines: Callable[[Deadlines], None] | None = None


@dataclass(frozen=True)
class Worker:
    """Which of the ``count`` processes of one ``certgate serve`` this one is.

    Every worker applies the same committed plan on its own listeners (bound with
    ``SO_REUSEPORT`` when there are several); the first one publishes the status file.
    """

    index: int
    count: int

    @property
    def publishes_status(self) -> bool:
        return self.index == 0


@contextmanager
def serving_lock(app: Appliance) -> Iterator[None]:
    """Held while ``certgate serve`` runs: a second one on the same data directory would
    bind the same addresses beside the first (with ``SO_REUSEPORT``) or fail half-way."""
    path = app.data_dir / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
            raise AlreadyServingError(
                f"certgate serve is already running on {app.data_dir} (process {holder})"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


class ApplianceServer:
    """``certgate serve``: apply the plan, then follow every committed change."""

    def __init__(
        self,
        app: Appliance,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        port_override: int | None = None,
        worker: Worker | None = None,
        finish: Callable[[], None] | None = None,
        http: PlainHttp | None = None,
        node: str | None = None,
    ) -> None:
        """``finish`` is called on stop: the application ends its connections once their
        requests are answered (the plan's shutdown grace bounds it). ``http``: the plain
        HTTP listeners' protocols and port (the setting's when its port is None). ``node``: the
        name this server's heartbeat is written under (``service/nodes.py``; by the first
        worker)."""
        self.app = app
        self.node = node
        self._beat_now = asyncio.Event()
        self.http = http
        self.plain = (
            None
            if http is None
            else PlainListeners(
                http.protocol_factory, reuse_port=(worker or Worker(0, 1)).count > 1
            )
        )
        self._http_statuses: list[ListenerStatus] = []
        self.finish = finish
        self.port_override = port_override
        self.worker = worker or Worker(0, 1)
        self.server = TlsServer(
            protocol_factory,
            reuse_port=self.worker.count > 1,
            ticket_secret=app.sealer.derive(TICKET_SECRET),
        )
        self.revision = -1
        self._cache = PlanCache()
        self._plan: ListenerPlan | None = None
        self._statuses: list[ListenerStatus] = []
        self._unread = False  # the last plan could not be read (logged once)
        self._cached: CachedState | None = None  # serving the cached state, not the store's
        self._key_problem: str | None = None  # this node's master key is stale
        self._key_said: str | None = None  # what was logged about its key last
        self._key_changed = False  # a new master key taken: the cached state is saved again
        self._wake: asyncio.Event | None = None  # set to look at the store now

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the committed state until ``stop`` is set, applying every new commit."""
        loop = asyncio.get_running_loop()
        wake = self._wake = asyncio.Event()
        watch = RevisionWatch(
            self.app.store.engine,
            lambda: loop.call_soon_threadsafe(wake.set),
            WATCH_INTERVAL,
            listen=os.environ.get(WATCH_ENV, "listen") != "poll",
        )
        stopping = asyncio.create_task(_set_when(stop, wake))
        counts = CountsSlot(self.app.data_dir / COUNTS_FILE, self.worker.index)
        publishing = asyncio.create_task(self._publish_counts(counts))
        beating: asyncio.Task[None] | None = None
        started, interval = self.app.now(), nodes.heartbeat_interval()
        try:
            if not await self._apply_if_changed():
                # the store cannot be reached, or this node's master key is stale: the state
                # it saved last (sealed with its own key) until then
                await self._apply_cached()
                if self._key_problem is not None:
                    loop.call_later(RETRY_INTERVAL, wake.set)  # until the new key is installed
            statuses = self.server.status()
            if statuses and not any(status.state == "listening" for status in statuses):
                raise NothingToServeError(
                    "certgate serve cannot serve any of its addresses (each one's reason is "
                    "logged above and shown by 'certgate status')"
                )
            if self.node is not None and self.worker.publishes_status:
                beating = asyncio.create_task(self._heartbeat(self.node, started, interval))
            watch.start()
            retry = self._retry_binds(loop, wake, None)
            while True:
                await wake.wait()
                wake.clear()
                if stop.is_set():
                    break
                if not await self._apply_if_changed():
                    loop.call_later(RETRY_INTERVAL, wake.set)
                retry = self._retry_binds(loop, wake, retry)
        finally:
            stopping.cancel()
            publishing.cancel()
            if beating is not None:
                beating.cancel()
            await asyncio.to_thread(watch.stop)
            if self.plain is not None:
                await self.plain.close()
                if self.http is not None and self.http.finish is not None:
                    self.http.finish()
            await self.server.close(finish=self.finish)
            counts.close()
            if self.worker.publishes_status:
                _status_path(self.app).unlink(missing_ok=True)
            if self.node is not None and self.worker.publishes_status:
                # also when it never beat (it could serve nothing): its name was claimed
                await _said_stopped(self.app, self.node, started, interval)

    def reread(self) -> None:
        """Read the store again now and build every certificate anew, as if it had changed
        (SIGHUP, as nginx reloads); the listeners serve on meanwhile."""
        log.info("SIGHUP: reading the store again")
        self.revision = -1
        self._cache = PlanCache()
        if self._wake is not None:
            self._wake.set()

    async def _heartbeat(self, node: str, started: dt.datetime, interval: float) -> None:
        """This node's heartbeat: now, after every change applied, and every ``interval``;
        with, for each floating address, whether this node holds it now."""
        failing = False
        while True:
            listeners = [dict(vars(status)) for status in self.server.status()]
            http_listeners = [dict(vars(status)) for status in self._http_statuses]
            floating = self._plan.freebind if self._plan is not None else frozenset()
            try:
                await asyncio.to_thread(
                    _beat, self.app, node, started, interval, listeners, http_listeners, floating
                )
            except (CertgateError, SQLAlchemyError) as error:
                if not failing:
                    log.error("cannot write this node's heartbeat (retrying): %s", error)
                failing = True
            else:
                failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat_now.wait(), interval)
            self._beat_now.clear()

    async def _publish_counts(self, slot: CountsSlot) -> None:
        """For /metrics, whichever worker a scrape reaches (tls/counts.py)."""
        while True:
            counts = self.server.counts()
            slot.publish(
                counts.handshakes_completed, counts.handshakes_failed, counts.connections_open
            )
            await asyncio.sleep(COUNTS_INTERVAL)

    def _retry_binds(
        self,
        loop: asyncio.AbstractEventLoop,
        wake: asyncio.Event,
        pending: asyncio.TimerHandle | None,
    ) -> asyncio.TimerHandle | None:
        """Wake the loop again soon while a planned address failed to bind (TLS or plain
        HTTP): nothing else would bind it before the next commit. Returns the timer."""
        if pending is not None:
            pending.cancel()
        if self._bind_failed():
            return loop.call_later(BIND_RETRY_INTERVAL, wake.set)
        return None

    def _bind_failed(self) -> bool:
        plan = self._plan
        if plan is None:
            return False
        if any(s.state == "failed" and s.address in plan.assignments for s in self._statuses):
            return True
        clash = plan.http_port == plan.port  # no plain listener is bound: nothing to retry
        return not clash and any(s.state == "failed" for s in self._http_statuses)

    async def _apply_if_changed(self) -> bool:
        """Apply the committed state if it changed; False when it could not be read, or this
        node's master key is stale (both retried: the listeners keep what they serve). With
        no change, the last plan is applied again while an address failed to bind."""
        try:
            revision = await asyncio.to_thread(self.app.store.revision)
            if revision == self.revision and self._key_problem is None:
                if self._plan is not None and self._bind_failed():
                    await self._apply(self._plan, revision, status_changed=False)
                return True
            following = await asyncio.to_thread(master_key.follow, self.app)
            if not self._key_followed(following):
                return False
            state = await asyncio.to_thread(read_state, self.app, self._cache, self.node)
            plan = state.plan(self.port_override, None if self.http is None else self.http.port)
        except (CertgateError, SQLAlchemyError) as error:
            if not self._unread:  # once, not once a second while the database is away
                log.error("keeping the current listeners: %s", error)
            self._unread = True
            # A store that cannot be reached now (restarting) is retried.
            return isinstance(error, CertgateError) and not isinstance(error, StoreUnavailableError)
        if self._unread or self._cached is not None:
            log.info("the store can be read again: serving revision %d", revision)
            self._unread = False
        leaving_cache, self._cached = self._cached is not None, None
        resealed, self._key_changed = self._key_changed, False  # the same plan, keys sealed anew
        if (
            await self._apply(plan, revision, status_changed=leaving_cache)
            or leaving_cache
            or resealed
        ):
            await self._save_state(state, revision)
        return True

    def _key_followed(self, following: master_key.Following) -> bool:
        """Say once when this node's master key goes stale (or is wrong) and when a new key
        file is picked up; False while it is stale: it opens nothing new, and the listeners
        keep what they present. A wrong key (none of the store's) is planned with: each
        certificate is refused with the reason, and a serve that can serve nothing exits."""
        stale = isinstance(following.problem, StaleMasterKeyError)
        said = str(following.problem) if following.problem is not None else None
        if said is not None and said != self._key_said:
            until = ". Loading nothing new until then: serving what was loaded before"
            log.error("%s%s", said, until if stale else "")
        self._key_said = said
        self._key_problem = said if stale else None
        if following.picked_up is not None:
            log.info("picked up the new master key (generation %d)", following.picked_up)
            self._cache = PlanCache()  # every certificate is built again with it
            self._key_changed = True
            # and the ticket keys derived from it, as every node that installs it does
            self.server.set_ticket_secret(self.app.sealer.derive(TICKET_SECRET))
        return not stale

    async def _apply_cached(self) -> None:
        """Serve the state this node saved last (``service/served_state.py``), until the
        store answers: the revision watch reconnects in the background, and its first read
        replaces it with the committed state."""
        cached = await asyncio.to_thread(
            served_state.load, self.app.data_dir, self.app.sealer, self.node
        )
        stale = self._key_problem is not None  # else the store cannot be reached
        if cached is None:
            log.error(
                "no cached state in %s: serving nothing until %s",
                self.app.data_dir,
                "the new master key is installed" if stale else "the store answers",
            )
            return
        log.warning(
            "%s: serving the cached state of revision %d, saved at %s (%s), and %s",
            "this node's master key is stale" if stale else "the store cannot be reached",
            cached.revision,
            cached.saved_at.isoformat(timespec="seconds"),
            served_state.state_path(self.app.data_dir),
            "looking for the new key" if stale else "reconnecting in the background",
        )
        self._cached = cached
        plan = cached.state.plan(self.port_override, None if self.http is None else self.http.port)
        await self._apply(plan, -1, status_changed=True)  # any revision read replaces it

    async def _save_state(self, state: ServedState, revision: int) -> None:
        """The state applied, for a start while the store is away (the first worker)."""
        if not self.worker.publishes_status:
            return
        try:
            await asyncio.to_thread(
                served_state.save, self.app.data_dir, state, revision, self.app.now(), self.node
            )
        except OSError as error:
            log.error("cannot save the served state for a start without the store: %s", error)

    async def _apply(self, plan: ListenerPlan, revision: int, *, status_changed: bool) -> bool:
        """Put the listeners on ``plan``; True when it differs from the last one applied.
        ``status_changed``: publish the status file even if no listener changed."""
        if (
            plan == self._plan
            and all(s.state == "listening" for s in self._statuses)
            and all(s.state == "listening" for s in self._http_statuses)
        ):
            self.revision = revision  # nothing served changed: the listeners do nothing
            if status_changed and self.worker.publishes_status:
                await self._publish_status(self._statuses, self._http_statuses)
            return False
        statuses = await self.server.apply(plan)
        http_statuses = await self._apply_http(plan)
        if self._plan is None or plan.refused != self._plan.refused:
            _report_refused(plan)
        for name in sorted(set(plan.challenges) - set(self._plan.challenges if self._plan else ())):
            log.info("answering the TLS-ALPN-01 challenge of %s (ALPN acme-tls/1)", name)
        if (
            not plan.assignments
            and not plan.refused
            and (self._plan is None or self._plan.assignments)
        ):
            log.warning(NO_ADDRESS_MESSAGE, plan.port)
        self.revision, self._plan = revision, plan
        before = set(self._statuses)
        changed = [status for status in statuses if status not in before]
        self._statuses = statuses
        _report(changed)  # what changed only: 1,000 lines per commit otherwise
        http_changed = [s for s in http_statuses if s not in set(self._http_statuses)]
        http_changed += [  # stopped listening: said too
            s for s in self._http_statuses if s.address not in {h.address for h in http_statuses}
        ]
        self._http_statuses = http_statuses
        _report([s for s in http_changed if s in http_statuses], "http")
        if changed or http_changed:
            self._beat_now.set()  # the cluster sees what this node presents at once
        if (changed or http_changed or status_changed) and self.worker.publishes_status:
            await self._publish_status(statuses, http_statuses)
        return True

    async def _publish_status(
        self, statuses: list[ListenerStatus], http_statuses: list[ListenerStatus]
    ) -> None:
        # Off the event loop: 1,000 listeners make a file of ~200 KB.
        try:
            await asyncio.to_thread(
                _write_status,
                self.app,
                statuses,
                self.worker.count,
                http_statuses,
                self.node,
                self._cached,
            )
        except OSError as error:  # out of descriptors, disk full: the listeners serve on
            log.error("cannot write the status file for 'certgate status': %s", error)

    async def _apply_http(self, plan: ListenerPlan) -> list[ListenerStatus]:
        """The plain HTTP listeners on the addresses served, when the plan has a port."""
        if self.plain is None or self.http is None:
            return []
        if self.http.set_deadlines is not None:
            self.http.set_deadlines(plan.deadlines)
        if plan.http_port == plan.port:  # serve --http-port/--https-port against the setting
            # Bound beside the HTTPS listeners (SO_REUSEPORT with several workers), they would
            # take a share of the HTTPS connections: none, and each address says why.
            await self.plain.apply((), 0)
            why = f"the HTTP port {plan.http_port} is the HTTPS port: no plain HTTP listener"
            return [
                ListenerStatus(address, plan.http_port, "failed", why, None)
                for address in sorted(plan.assignments)
            ]
        return await self.plain.apply(plan.assignments.keys(), plan.http_port, plan.freebind)

    def https_port(self) -> int:
        """The HTTPS port now (where the plain listeners redirect)."""
        return self._plan.port if self._plan is not None else (self.port_override or 443)


def _beat(
    app: Appliance,
    node: str,
    started: dt.datetime,
    interval: float,
    listeners: list[dict[str, object]],
    http_listeners: list[dict[str, object]],
    floating: frozenset[str],
) -> None:
    """One heartbeat. Each listening floating address says whether this node holds it
    (``held``): one bind to it without ``IP_FREEBIND``, a few microseconds, so that every face
    can say which node of a failover pair serves the shared address, and when none does."""
    for listener in listeners:
        address = str(listener["address"])
        if address in floating and listener["state"] == "listening":
            listener["held"] = on_this_host(address)
    nodes.heartbeat(app, node, started, interval, listeners, http_listeners)


async def _said_stopped(app: Appliance, node: str, started: dt.datetime, interval: float) -> None:
    """A clean stop is recorded, so the node shows as stopped rather than lost."""
    try:
        await asyncio.to_thread(nodes.stopped, app, node, started, interval)
    except (CertgateError, SQLAlchemyError) as error:
        log.error("cannot record that this node stopped: %s", error)


async def _set_when(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


def _report_refused(plan: ListenerPlan) -> None:
    """One line per reason (a certificate that cannot be presented), naming its addresses."""
    addresses: dict[str, list[str]] = {}
    for address, reason in plan.refused.items():
        addresses.setdefault(reason, []).append(address)
    for reason, where in addresses.items():
        log.error("not serving %s: %s", ", ".join(sorted(where)), reason)


def _report(statuses: list[ListenerStatus], kind: str = "") -> None:
    prefix = f"{kind} " if kind else ""
    for status in statuses:
        where = (
            f"[{status.address}]:{status.port}"
            if ":" in status.address
            else (f"{status.address}:{status.port}")
        )
        if status.state == "listening":
            if kind:
                log.info("%slistening on %s", prefix, where)
            else:
                log.info("listening on %s, presenting %s", where, (status.fingerprint or "")[:16])
        else:
            said = f"cannot listen on {where}: "  # a bind failure says so itself
            error = (status.error or "").removeprefix(said)
            log.error("%s%s%s", prefix, said, error)


def _status_path(app: Appliance) -> Path:
    return app.data_dir / STATUS_FILE


def _write_status(
    app: Appliance,
    statuses: list[ListenerStatus],
    workers: int,
    http_statuses: list[ListenerStatus] | None = None,
    node: str | None = None,
    cached: CachedState | None = None,
) -> None:
    """Publish what is being served for ``certgate status`` (atomic replace)."""
    path = _status_path(app)
    temporary = path.with_suffix(".tmp")
    report = {
        "pid": os.getpid(),
        "started": _started(os.getpid()),
        "workers": workers,
        "node": node,
        "listeners": [dict(vars(s)) for s in statuses],  # flat: asdict's deep copies cost
        "http_listeners": [dict(vars(s)) for s in http_statuses or ()],
        "cached_state": None
        if cached is None
        else {"revision": cached.revision, "saved_at": cached.saved_at.isoformat()},
    }
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(json.dumps(report, indent=1))
    temporary.replace(path)


def _started(pid: int) -> str | None:
    """When process ``pid`` started: the boot and the clock tick of its start (field 22 of
    Linux's ``/proc/PID/stat``, after the command name, which may hold anything); None where
    that cannot be read. A pid alone names another process after a serve died."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return f"{nodes.current_boot_id()}:{fields[19]}"
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class ServeReport:
    """What a running ``certgate serve`` publishes: its worker processes and listeners."""

    workers: int
    listeners: list[dict[str, object]]
    #: the plain HTTP listeners (ACME http-01, redirect): none when no HTTP port is set
    http_listeners: list[dict[str, object]] = dataclasses.field(default_factory=list)
    node: str | None = None  # the node name it runs as
    #: serving the cached state of this revision, saved then (the store could not be read)
    cached_revision: int | None = None
    cached_at: dt.datetime | None = None


def read_status(app: Appliance) -> ServeReport | None:
    """The report of a running ``certgate serve`` on this data directory, if any."""
    try:
        data = json.loads(_status_path(app).read_text())
        pid = int(data["pid"])
        os.kill(pid, 0)
        started = _started(pid)
        if started is not None and data.get("started") not in (None, started):
            return None  # its serve died (a power cut) and the pid went to another process
        node = data.get("node")
        cached = data.get("cached_state")
        return ServeReport(
            int(data.get("workers", 1)),
            list(data["listeners"]),
            list(data.get("http_listeners", ())),
            str(node) if node is not None else None,
            None if cached is None else int(cached["revision"]),
            None if cached is None else dt.datetime.fromisoformat(cached["saved_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def serving_without_store(app: Appliance) -> str | None:
    """What this data directory's running serve presents while the store cannot be read
    (said beside "store unavailable" on the pages); None when no serve runs here."""
    report = read_status(app)
    if report is None:
        return None
    if report.cached_revision is not None and report.cached_at is not None:
        return (
            f"this node's certgate serve presents the cached state of revision "
            f"{report.cached_revision}, saved at {report.cached_at.isoformat(timespec='seconds')}, "
            "until the store can be reached again"
        )
    return (
        "this node's certgate serve goes on presenting the last state it read, until the "
        "store can be reached again"
    )
