"""Worker scaling: full TLS handshakes per second of ``certgate serve --workers N`` vs nginx
with ``worker_processes N``, for N = 1 .. the cores of this machine.

Printed, never asserted. Unlike bench_handshake.py (one pinned core, a bare TLS server), this
runs the real product: ``certgate serve`` on a fresh data directory with the benchmark
certificate imported and assigned, each connection getting the web app's HTTP protocol after
its handshake. The servers and the ``openssl s_time -new`` load generators share all cores,
as they would on an appliance; the figures are handshakes per second over the run and the
servers' CPU time (all workers) per handshake. With as many server workers as cores the load
generator competes for the same cores, so on a small machine throughput cannot grow by N:
the CPU per handshake, and how evenly the workers share the load, show what scales.

Run: ``.venv/bin/python bench/bench_workers.py`` (``--help`` for options; about 2 minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _nginx import Material, cpu_seconds, free_port, make_material, running_nginx, s_time

ADDRESS = "127.0.0.2"
CERTGATE = str(Path(sys.executable).with_name("certgate"))
KINDS = {"rsa": "RSA-2048", "p256": "P-256"}


def certgate(data_dir: Path, *args: str) -> str:
    return subprocess.run(
        [CERTGATE, *args],
        env={**os.environ, "CERTGATE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@contextlib.contextmanager
def certgate_serve(
    material: Material, directory: Path, workers: int
) -> Iterator[tuple[list[int], int]]:
    """``certgate serve --workers N`` presenting ``material`` on ADDRESS; yields worker pids."""
    data_dir = directory / f"data-{material.chain.stem}-{workers}"
    certgate(data_dir, "init")
    entries = json.loads(
        certgate(data_dir, "cert", "import", str(material.chain), str(material.key), "--json")
    )["entries"]
    [leaf] = [e for e in entries if e["fingerprint_sha256"] == material.fingerprint]
    certgate(data_dir, "ip", "add", ADDRESS)
    certgate(data_dir, "ip", "assign", ADDRESS, "--cert", str(leaf["id"]))
    port = free_port(ADDRESS)
    log = (data_dir / "serve.log").open("w")
    process = subprocess.Popen(
        [CERTGATE, "serve", "--https-port", str(port), "--workers", str(workers)],
        env={**os.environ, "CERTGATE_DATA_DIR": str(data_dir)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        pids = [process.pid]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = (data_dir / "serve.log").read_text()
            if text.count("listening on") >= workers:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"certgate serve --workers {workers} did not start")
        if workers > 1:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            pids = [int(pid) for pid in children.read_text().split()]
        yield pids, port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def measure(
    pids: list[int], port: int, seconds: float, clients: int
) -> tuple[float, float, list[float]]:
    """(handshakes per second, server CPU µs per handshake, each worker's share of the CPU)."""
    before = [cpu_seconds(pid) for pid in pids]
    started = time.monotonic()
    done = s_time(ADDRESS, port, seconds, clients, pin=False)
    elapsed = time.monotonic() - started
    used = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
    if done == 0:
        raise RuntimeError(f"no handshake completed on port {port}")
    total = sum(used) or 1e-9
    return done / elapsed, sum(used) / done * 1e6, [u / total for u in used]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="seconds per measurement")
    parser.add_argument("--clients", type=int, default=8, help="s_time processes (default 8)")
    parser.add_argument(
        "--max-workers", type=int, default=len(os.sched_getaffinity(0)), help="default: cores"
    )
    args = parser.parse_args()
    from certgate.tls import DEFAULT_TLS12_CIPHERS

    rows: list[tuple[str, str, int, float, float, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="certgate-bench-") as temporary:
        directory = Path(temporary)
        for kind, label in KINDS.items():
            material = make_material(directory, kind, kind)
            for workers in range(1, args.max_workers + 1):
                with certgate_serve(material, directory, workers) as (pids, port):
                    measure(pids, port, 1, args.clients)  # warm-up
                    rows.append(
                        (
                            "certgate",
                            label,
                            workers,
                            *measure(pids, port, args.seconds, args.clients),
                        )
                    )
                port = free_port(ADDRESS)
                with running_nginx(
                    material, ADDRESS, port, DEFAULT_TLS12_CIPHERS, workers, pin=False
                ) as pids:
                    measure(pids, port, 1, args.clients)
                    rows.append(
                        ("nginx", label, workers, *measure(pids, port, args.seconds, args.clients))
                    )
                print(f"{label} with {workers} worker(s) done", file=sys.stderr)

    print(
        f"full TLS 1.3 handshakes, {args.clients} s_time clients, "
        f"all on {len(os.sched_getaffinity(0))} cores"
    )
    print(
        f"{'server':<9} {'key':<9} {'workers':>7} {'handshakes/s':>13} {'CPU µs/hs':>10}"
        "  CPU share per worker"
    )
    for name, label, workers, rate, cpu, shares in rows:
        share = " ".join(f"{s:.0%}" for s in shares)
        print(f"{name:<9} {label:<9} {workers:>7} {rate:>13.0f} {cpu:>10.0f}  {share}")


if __name__ == "__main__":
    main()
