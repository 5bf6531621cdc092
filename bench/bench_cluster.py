"""From a commit made by the CLI against node A to the first handshake on node B that
presents the new certificate, two nodes on one PostgreSQL store; polling as the baseline.

Printed, never asserted. Three ``certgate serve`` nodes share one PostgreSQL store (a schema
of its own, dropped afterwards; separate data directories, one master key): A, where the CLI
runs; B, which follows the store by LISTEN/NOTIFY (the default); and C, which reads the
revision every 10 ms instead (``CERTGATE_REVISION_WATCH=poll``, what every node did before:
the baseline, in the same run). Client threads make full handshakes in a loop on B and on C
(the load). ``certgate ip assign`` (the CLI, its own process) flips 127.0.0.2 between two
certificates 20 times on A's data directory. The commit's time is its audit event's (written
in the committing transaction before the guard's checks and the commit: 10-70 ms early on the
loaded 2-core machine, so the figures err long). The CLI process's own exit competes for the
same cores: the same flips made in-process gave a p50 about half as long.
For each flip and node: time from the commit to the first handshake that *started* after
it and presented the new certificate. Failed handshakes over the run are counted. Before the
load, each node's idle CPU use (following the store) is printed too.
Targets: p50 < 1 s (issue 12), 0 failed handshakes.

Run: ``.venv/bin/python bench/bench_cluster.py`` (about a minute; PostgreSQL at
``$CERTGATE_TEST_POSTGRES_URL``, by default the tests' server).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import select

from _nginx import cpu_seconds, free_port, wait_listening
from bench_commit_swap import Clients, first_seen, two_certificates
from bench_import import postgres_schema
from certgate.service.appliance import Appliance
from certgate.store.models import AuditEventRow
from certgate.store.sealing import MASTER_KEY_FILE

ADDRESS = "127.0.0.2"
CERTGATE = str(Path(sys.executable).with_name("certgate"))


@contextmanager
def node(data_dir: Path, url: str, **extra: str) -> Iterator[tuple[int, int]]:
    """``certgate serve`` on a free port; yields (port, pid)."""
    port = free_port()
    environment = {**os.environ, "CERTGATE_DATA_DIR": str(data_dir)}
    environment |= {"CERTGATE_DATABASE_URL": url, **extra}
    log = (data_dir / "serve.log").open("w")
    server = subprocess.Popen(
        [CERTGATE, "serve", "--https-port", str(port)], env=environment, stdout=log, stderr=log
    )
    try:
        wait_listening(ADDRESS, port, timeout=30)
        yield port, server.pid
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def commit_time(app: Appliance) -> float:
    """The wall-clock time of the newest audit event: the last commit's, within a few ms."""
    with app.store.reading() as repository:
        at = repository.session.scalar(select(AuditEventRow.at).order_by(AuditEventRow.id.desc()))
    assert at is not None
    return at.timestamp()


def summary(name: str, latencies: list[float]) -> str:
    valid = sorted(value for value in latencies if value == value)
    if not valid:
        return f"{name}: no new certificate seen"
    p95 = valid[min(len(valid) - 1, int(len(valid) * 0.95))]
    return (
        f"{name}: seen {len(valid)}/{len(latencies)}, commit -> first new-certificate "
        f"handshake p50 {statistics.median(valid):.1f} ms  p95 {p95:.1f} ms  "
        f"max {valid[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between commits")
    parser.add_argument("--threads", type=int, default=3, help="client threads per node")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle measurement")
    arguments = parser.parse_args()

    top = Path(tempfile.mkdtemp(prefix="certgate-cluster-"))
    dirs = {name: top / name for name in "abc"}
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, top, ignore_errors=True)
        url = stack.enter_context(postgres_schema())
        cli_env = {**os.environ, "CERTGATE_DATA_DIR": str(dirs["a"]), "CERTGATE_DATABASE_URL": url}
        subprocess.run([CERTGATE, "init"], env=cli_env, check=True, capture_output=True)
        subprocess.run([CERTGATE, "ip", "add", ADDRESS], env=cli_env, check=True)
        for name in "bc":  # a node joins with a copy of the master key
            dirs[name].mkdir(mode=0o700)
            shutil.copy2(dirs["a"] / MASTER_KEY_FILE, dirs[name] / MASTER_KEY_FILE)
        app = Appliance.open(dirs["a"], url)
        stack.callback(app.close)
        ids = two_certificates(app)
        stack.enter_context(node(dirs["a"], url))
        port_b, pid_b = stack.enter_context(node(dirs["b"], url))
        port_c, pid_c = stack.enter_context(node(dirs["c"], url, CERTGATE_REVISION_WATCH="poll"))
        time.sleep(2.0)
        before = {pid: cpu_seconds(pid) for pid in (pid_b, pid_c)}
        time.sleep(arguments.idle)
        idle = {pid: (cpu_seconds(pid) - before[pid]) / arguments.idle for pid in before}
        latencies: dict[str, list[float]] = {"B (LISTEN/NOTIFY)": [], "C (polling, 10 ms)": []}
        with (
            Clients(port_b, arguments.threads, ADDRESS, time.time) as on_b,
            Clients(port_c, arguments.threads, ADDRESS, time.time) as on_c,
        ):
            time.sleep(1.0)
            for flip in range(arguments.commits):
                target = ids[flip % 2]
                subprocess.run(
                    [CERTGATE, "ip", "assign", ADDRESS, "--cert", str(target.id), "--confirm"],
                    env=cli_env,
                    check=True,
                    capture_output=True,
                )
                committed = commit_time(app)
                time.sleep(arguments.interval)
                for clients, name in ((on_b, "B (LISTEN/NOTIFY)"), (on_c, "C (polling, 10 ms)")):
                    seen = first_seen(clients.records, committed, target.fingerprint_sha256)
                    latencies[name].append((seen - committed) * 1000)
        handshakes = len(on_b.records) + len(on_c.records)
        failures = on_b.failures + on_c.failures
    print(f"idle node CPU: B (LISTEN/NOTIFY) {idle[pid_b]:.1%} of a core, ", end="")
    print(f"C (polling every 10 ms) {idle[pid_c]:.1%}")
    print(
        f"commits by the CLI on A: {arguments.commits}, handshakes on B and C: {handshakes}, "
        f"failed handshakes: {len(failures)}"
    )
    for name, values in latencies.items():
        print(summary(name, values))
    for failure in failures[:5]:
        print("failure:", failure)


if __name__ == "__main__":
    main()
