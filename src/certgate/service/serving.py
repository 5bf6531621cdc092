"""The running appliance: turns the committed store into a listener plan and keeps the TLS
listeners on it, noticing commits from any process by watching the one-row revision."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.exc import SQLAlchemyError

from certgate.errors import (
    AlreadyServingError,
    CertgateError,
    NothingToServeError,
    StoreUnavailableError,
)
from certgate.service.appliance import LOCK_FILE, STATUS_FILE, Appliance
from certgate.service.keystore import get_private_key
from certgate.service.networking import check_address
from certgate.service.tls_settings import read_settings
from certgate.service.views import chain_rows
from certgate.store.models import CertificateRow
from certgate.store.repository import Repository
from certgate.store.watch import RevisionWatch
from certgate.tls import ListenerPlan, ListenerStatus, ServedCertificate, TlsServer

log = logging.getLogger("certgate.serve")
WATCH_INTERVAL = 0.01  # seconds between looks at the store's revision (store/watch.py)
RETRY_INTERVAL = 1.0  # seconds before a plan that could not be read is read again


def build_plan(app: Appliance, port_override: int | None = None) -> ListenerPlan:
    """Everything the listeners need, read in one transaction: the last committed state.

    A certificate that cannot be presented (its key cannot be unsealed: a damaged row, a
    wrong master key) refuses only the addresses that use it; every other address is planned.
    """
    with app.store.reading() as repository:
        settings = read_settings(repository)
        served: dict[str, ServedCertificate] = {}
        refused: dict[str, str] = {}
        cache: dict[int, ServedCertificate | str] = {}
        for address in repository.ip_addresses():
            try:
                check_address(address.address)
            except CertgateError as error:
                refused[address.address] = f"{error}: remove it with 'certgate ip remove'"
                continue
            if address.certificate_id not in cache:
                cache[address.certificate_id] = _served_or_reason(
                    app, repository, address.certificate_id
                )
            outcome = cache[address.certificate_id]
            if isinstance(outcome, str):
                refused[address.address] = outcome
            else:
                served[address.address] = outcome
        return ListenerPlan(
            port_override or settings.https_port, settings.policy(), served, refused
        )


def _served_or_reason(
    app: Appliance, repository: Repository, certificate_id: int
) -> ServedCertificate | str:
    """The certificate ready to serve, or why it cannot be (naming it, never its key)."""
    row = repository.certificate(certificate_id)
    assert row is not None  # the foreign key guarantees it
    try:
        return _served(app, repository, row)
    except (CertgateError, ValueError) as error:
        return (
            f"certificate {row.friendly_name!r} (id {row.id}, {row.fingerprint[:16]}) "
            f"cannot be presented: {error}"
        )


def _served(app: Appliance, repository: Repository, row: CertificateRow) -> ServedCertificate:
    links = chain_rows(row, repository.certificate, repository.certificate_by_fingerprint)
    pem = b"".join(
        x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
        for der in [row.der, *(link.der for link in links)]
    )
    key = get_private_key(repository, app.sealer, row.public_key_fingerprint)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ServedCertificate(fingerprint=row.fingerprint, chain_pem=pem, key_pem=key_pem)


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
    ) -> None:
        self.app = app
        self.port_override = port_override
        self.worker = worker or Worker(0, 1)
        self.server = TlsServer(
            protocol_factory,
            reuse_port=self.worker.count > 1,
            # every worker (and node) derives the same session ticket keys
            ticket_secret=app.sealer.derive("tls session tickets"),
        )
        self.revision = -1

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the committed state until ``stop`` is set, applying every new commit."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        watch = RevisionWatch(
            self.app.store.engine, lambda: loop.call_soon_threadsafe(wake.set), WATCH_INTERVAL
        )
        stopping = asyncio.create_task(_set_when(stop, wake))
        try:
            await self._apply_if_changed()
            statuses = self.server.status()
            if statuses and not any(status.state == "listening" for status in statuses):
                raise NothingToServeError(
                    "certgate serve cannot serve any of its addresses (each one's reason is "
                    "logged above and shown by 'certgate status')"
                )
            watch.start()
            while True:
                await wake.wait()
                wake.clear()
                if stop.is_set():
                    break
                if not await self._apply_if_changed():
                    loop.call_later(RETRY_INTERVAL, wake.set)
        finally:
            stopping.cancel()
            await asyncio.to_thread(watch.stop)
            await self.server.close()
            if self.worker.publishes_status:
                _status_path(self.app).unlink(missing_ok=True)

    async def _apply_if_changed(self) -> bool:
        """Apply the committed state if it changed; False when it could not be read."""
        try:
            revision = await asyncio.to_thread(self.app.store.revision)
            if revision == self.revision:
                return True
            plan = await asyncio.to_thread(build_plan, self.app, self.port_override)
        except (CertgateError, SQLAlchemyError) as error:
            log.error("keeping the current listeners: %s", error)
            # A store that cannot be reached now (restarting) is retried.
            return isinstance(error, CertgateError) and not isinstance(error, StoreUnavailableError)
        statuses = await self.server.apply(plan)
        self.revision = revision
        _report_refused(plan)
        _report(statuses)
        if self.worker.publishes_status:
            _write_status(self.app, statuses, self.worker.count)
        return True


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


def _report(statuses: list[ListenerStatus]) -> None:
    for status in statuses:
        where = (
            f"[{status.address}]:{status.port}"
            if ":" in status.address
            else (f"{status.address}:{status.port}")
        )
        if status.state == "listening":
            log.info("listening on %s, presenting %s", where, (status.fingerprint or "")[:16])
        else:
            log.error("cannot listen on %s: %s", where, status.error)


def _status_path(app: Appliance) -> Path:
    return app.data_dir / STATUS_FILE


def _write_status(app: Appliance, statuses: list[ListenerStatus], workers: int) -> None:
    """Publish what is being served for ``certgate status`` (atomic replace)."""
    path = _status_path(app)
    temporary = path.with_suffix(".tmp")
    report = {
        "pid": os.getpid(),
        "workers": workers,
        "listeners": [asdict(s) for s in statuses],
    }
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(json.dumps(report, indent=2))
    temporary.replace(path)


@dataclass(frozen=True)
class ServeReport:
    """What a running ``certgate serve`` publishes: its worker processes and listeners."""

    workers: int
    listeners: list[dict[str, object]]


def read_status(app: Appliance) -> ServeReport | None:
    """The report of a running ``certgate serve`` on this data directory, if any."""
    try:
        data = json.loads(_status_path(app).read_text())
        os.kill(int(data["pid"]), 0)
        return ServeReport(int(data.get("workers", 1)), list(data["listeners"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
