"""``certgate serve``: the appliance's TLS listeners, in one process or several workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from certgate.cli.context import Options
from certgate.cli.output import VisibleFormatter, echo
from certgate.cli.supervisor import CANNOT_SERVE, SUPERVISOR_VARIABLE, Supervisor
from certgate.errors import NothingToServeError, StoreUnavailableError
from certgate.service.appliance import DATA_DIR_ENV, DATABASE_URL_ENV

if TYPE_CHECKING:  # imported when serving: the web stack costs other commands ~0.3 s
    from certgate.service.appliance import Appliance
    from certgate.service.serving import ApplianceServer, Worker

log = logging.getLogger("certgate.serve")
#: How often a worker checks that its supervisor still runs (it stops when orphaned).
ORPHAN_CHECK_INTERVAL = 0.5


def _worker_count(context: click.Context, parameter: click.Parameter, value: str) -> int:
    """A number of worker processes, or ``auto``: one per CPU this process may run on."""
    text = value.strip().lower()
    if text == "auto":
        return len(os.sched_getaffinity(0))
    if text.isdigit() and 1 <= int(text) <= 256:
        return int(text)
    raise click.BadParameter(f"{value!r} is not a number of workers from 1 to 256, nor 'auto'")


@click.command()
@click.option(
    "--https-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port of the TLS listeners (default: the setting, 8443).",
)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port of the plain HTTP listeners on every address: ACME http-01 answers and a "
    "redirect to HTTPS (default: the setting, none; 0: none).",
)
@click.option(
    "--workers",
    metavar="N|auto",
    default="1",
    callback=_worker_count,
    show_default=True,
    help="Serving processes sharing every address (SO_REUSEPORT), to use more cores; "
    "'auto' starts one per CPU.",
)
@click.option(
    "--node",
    "node",
    metavar="NAME",
    default=None,
    help="This server's node name in the cluster (default: the host name); see "
    "'certgate node list'.",
)
@click.option("--worker-index", type=int, default=None, hidden=True)
@click.pass_obj
def serve(
    options: Options,
    https_port: int | None,
    http_port: int | None,
    workers: int,
    node: str | None,
    worker_index: int | None,
) -> None:
    """Run the appliance: a TLS listener on every configured address."""
    # SIGHUP stops nothing, from the first moment: its handler (a re-read) comes with the
    # event loop, and a SIGHUP before it (a log rotation during a start) must not end serve.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from certgate.service.appliance import COUNTS_FILE
    from certgate.service.nodes import node_name
    from certgate.service.serving import serving_lock
    from certgate.service.tls_settings import shutdown_grace
    from certgate.tls.counts import reset_counts

    prefix = "" if worker_index is None or workers == 1 else f"[worker {worker_index}] "
    logging.basicConfig(level=logging.INFO)
    for handler in logging.getLogger().handlers:  # names in log lines reach a terminal too
        handler.setFormatter(VisibleFormatter(f"%(asctime)s %(levelname)s {prefix}%(message)s"))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    name = node_name(node)
    _raise_descriptor_limit()
    if worker_index is not None:  # started by a supervisor, which holds the lock
        _run_worker(options, https_port, http_port, worker_index, workers, name)
        return
    with options.appliance(store_may_be_away=_has_cached_state(options)) as app, serving_lock(app):
        _claim_name(app, name)
        reset_counts(app.data_dir / COUNTS_FILE)  # this serve's /metrics counters from zero
        if workers == 1:
            _serve_in_this_process(app, https_port, http_port, name)
            return
        # -I: never import code from the working directory (nor PYTHON* variables)
        command = [sys.executable, "-I", "-m", "certgate", "serve", "--workers", str(workers)]
        command += ["--node", name]
        if https_port is not None:
            command += ["--https-port", str(https_port)]
        if http_port is not None:
            command += ["--http-port", str(http_port)]
        environment = {**os.environ, DATA_DIR_ENV: str(options.data_dir)}
        if options.database_url:  # by environment: a command line is visible to every user
            environment[DATABASE_URL_ENV] = options.database_url
        code = Supervisor(command, workers, environment, lambda: shutdown_grace(app)).run()
    if code:
        sys.exit(code)


def _claim_name(app: Appliance, name: str) -> None:
    """Refused when an alive node of another host has the name; not judged while the store
    is away (the serve starts on its saved state, as it would have)."""
    from certgate.service.nodes import claim_name

    with contextlib.suppress(StoreUnavailableError):
        claim_name(app, name)


SWITCH_INTERVAL = 0.001  # seconds: see _serve_in_this_process


def _raise_descriptor_limit() -> None:
    """Take every descriptor the system allows this process (the soft limit up to the hard
    one, as nginx's worker_rlimit_nofile): each connection holds three (its TCP socket and
    both ends of its socket pair), so the common soft limit of 1,024 is ~330 connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        try:
            hard = int(Path("/proc/sys/fs/nr_open").read_text())
        except (OSError, ValueError):
            return
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as error:
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, hard, error)
            return
        log.info("descriptor limit raised from %d to %d", soft, hard)


def _run_worker(
    options: Options,
    https_port: int | None,
    http_port: int | None,
    index: int,
    count: int,
    node: str,
) -> None:
    from certgate.service.serving import Worker

    supervisor = _supervisor_pid()
    if supervisor is None or os.getppid() != supervisor:
        raise click.UsageError("--worker-index is for the workers 'certgate serve' starts")
    with options.appliance(store_may_be_away=_has_cached_state(options)) as app:
        try:
            _serve_in_this_process(
                app, https_port, http_port, node, Worker(index, count), supervisor
            )
        except NothingToServeError as error:
            # Every worker reads the same plan: restarting this one would fail again.
            echo(f"error: {error}", err=True)
            sys.exit(CANNOT_SERVE)


def _has_cached_state(options: Options) -> bool:
    """A serve with a cached state starts while the store cannot be reached, and serves
    that state (``service/served_state.py``); without one it says "store unavailable"."""
    from certgate.service.served_state import state_path

    return state_path(options.data_dir).is_file()


def _supervisor_pid() -> int | None:
    value = os.environ.get(SUPERVISOR_VARIABLE, "")
    return int(value) if value.isdigit() else None


def _serve_in_this_process(
    app: Appliance,
    https_port: int | None,
    http_port: int | None,
    node: str,
    worker: Worker | None = None,
    supervisor: int | None = None,
) -> None:
    import uvloop

    from certgate.service.acme_renewal import RenewalSchedule
    from certgate.service.notices import NoticeSchedule
    from certgate.service.serving import ApplianceServer, PlainHttp
    from certgate.web.server import asgi_protocol_factory, challenge_protocol_factory

    protocols = asgi_protocol_factory(app)
    plain = challenge_protocol_factory(app, lambda: server.https_port())
    server = ApplianceServer(
        app,
        protocols,
        https_port,
        worker,
        protocols.finish,
        PlainHttp(plain, plain.finish, http_port, plain.set_deadlines),
        node,
    )
    # Expiry notices: one process checks (the first worker); the store's claims keep every
    # notice to one mail even so (another node, a 'certgate notify' beside it).
    # ACME renewals likewise: the leases in the store keep each to one renewer.
    first = worker is None or worker.index == 0
    schedules = [NoticeSchedule(app), RenewalSchedule(app)] if first else []
    for schedule in schedules:
        schedule.start()
    try:
        # A thread doing CPU work (the views of 100,000 certificates after an import) holds
        # the GIL up to the switch interval each time the event loop asks for it, at every
        # step of every request: 1 ms instead of 5 (bench_responsiveness, API p99 during a
        # 100,000-certificate import: 334/347 ms against 425/377 ms, max 550 against 810).
        sys.setswitchinterval(SWITCH_INTERVAL)
        uvloop.run(_serve(server, supervisor))  # the event loop the benchmark measures
    finally:
        for schedule in schedules:
            schedule.stop()


async def _serve(server: ApplianceServer, supervisor: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    loop.add_signal_handler(signal.SIGHUP, server.reread)
    watch = None if supervisor is None else asyncio.create_task(_orphaned(stop, supervisor))
    try:
        await server.run(stop)
    finally:
        if watch is not None:
            watch.cancel()


async def _orphaned(stop: asyncio.Event, supervisor: int) -> None:
    """A worker whose supervisor is gone (its parent is another process now) must not serve
    on unsupervised: a new ``certgate serve`` would share its addresses."""
    while not stop.is_set():
        if os.getppid() != supervisor:
            log.warning("supervisor gone; stopping")
            stop.set()
            return
        await asyncio.sleep(ORPHAN_CHECK_INTERVAL)
