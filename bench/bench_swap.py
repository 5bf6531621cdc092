"""Swap benchmark: how soon a changed assignment is seen by clients, and what it breaks.

Printed, never asserted. A TlsServer (uvloop, on its own thread) serves one address while 32
client handshake loops (4 processes x 8 threads, Python's ssl, full handshakes) run against
it; the assignment flips between two certificates 20 times, 250 ms apart, by a coroutine on
the server's loop (as the service calls it). For each swap: the time ``apply()`` took, and
the time from ``apply()`` returning to the first handshake that completed presenting the new
certificate (which includes that handshake's own round trips under load). Failed handshakes
over the whole run are counted (the target is zero).

Run: ``.venv/bin/python bench/bench_swap.py`` (about 15 seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _nginx import free_port, make_material

ADDRESS = "127.0.0.2"
T = TypeVar("T")

#: address, started, finished (CLOCK_MONOTONIC, shared by processes), fingerprint, error
Record = tuple[str, float, float, str, str]


def client_process(port: int, root: str, threads: int, stop: Any, results: Any) -> None:
    """Handshake loops until ``stop``; then the records go on ``results``."""
    context = ssl.create_default_context(cafile=root)
    context.check_hostname = False
    records: list[Record] = []

    def loop() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                with (
                    socket.create_connection((ADDRESS, port), timeout=10) as raw,
                    context.wrap_socket(raw) as tls,
                ):
                    der = tls.getpeercert(binary_form=True) or b""
                records.append(
                    (ADDRESS, started, time.monotonic(), hashlib.sha256(der).hexdigest(), "")
                )
            except Exception as error:
                records.append((ADDRESS, started, time.monotonic(), "", repr(error)))

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(records)


class ServerThread:
    """A TlsServer on a uvloop event loop thread, driven from the main thread."""

    def __init__(self) -> None:
        import uvloop

        from certgate.tls import TlsServer

        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def create() -> TlsServer:
            return TlsServer(asyncio.Protocol)

        self.server = self.call(create())

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(120)

    def close(self) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between swaps")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="client threads per process")
    args = parser.parse_args()

    from certgate.tls import ListenerPlan, ServedCertificate, TlsPolicy

    with tempfile.TemporaryDirectory(prefix="certgate-swap-") as temporary:
        directory = Path(temporary)
        first = make_material(directory / "a", "first.test", "p256")
        second = make_material(directory / "b", "second.test", "rsa")
        certificates = [
            ServedCertificate(m.fingerprint, m.chain_pem, m.key_pem) for m in (first, second)
        ]
        roots = directory / "roots.pem"  # clients trust both roots, so either leaf verifies
        roots.write_bytes(first.root.read_bytes() + second.root.read_bytes())

        port = free_port(ADDRESS)
        server = ServerThread()
        policy = TlsPolicy()
        server.call(server.server.apply(ListenerPlan(port, policy, {ADDRESS: certificates[0]})))
        spawn = multiprocessing.get_context("spawn")
        stop, results = spawn.Event(), spawn.Queue()
        clients = [
            spawn.Process(
                target=client_process, args=(port, str(roots), args.threads, stop, results)
            )
            for _ in range(args.processes)
        ]
        swaps: list[tuple[float, float, str]] = []  # called, returned, fingerprint
        records: list[Record] = []

        async def swap_all() -> None:
            # On the server's own loop, as the service calls apply(): no thread hop measured.
            for n in range(args.swaps):
                target = certificates[(n + 1) % 2]
                called = time.monotonic()
                await server.server.apply(ListenerPlan(port, policy, {ADDRESS: target}))
                swaps.append((called, time.monotonic(), target.fingerprint))
                await asyncio.sleep(args.interval)

        try:
            for process in clients:
                process.start()
            time.sleep(1.5)  # every client loop running
            server.call(swap_all())
        finally:
            stop.set()
            for _ in clients:
                records.extend(results.get(timeout=60))
            for process in clients:
                process.join(30)
            server.close()

    run_start, run_end = swaps[0][0] - 1.0, swaps[-1][1] + args.interval
    during = [r for r in records if run_start <= r[1] <= run_end]
    failed = [r for r in during if r[4]]
    completions = sorted((r[2], r[3]) for r in records if not r[4])
    latencies, durations = [], []
    for called, returned, fingerprint in swaps:
        durations.append((returned - called) * 1000)
        first_new = next((t for t, f in completions if t >= returned and f == fingerprint), None)
        if first_new is not None:
            latencies.append((first_new - returned) * 1000)

    clients_total = args.processes * args.threads
    interval = args.interval * 1000
    print(f"{len(swaps)} swaps, {interval:.0f} ms apart, {clients_total} clients in flight")
    print(f"handshakes during the swaps: {len(during)}, failed: {len(failed)}")
    for record in failed[:5]:
        print(f"  failure: {record[4]}")
    print(
        "apply() duration:                          "
        f"p50 {statistics.median(durations):6.2f} ms   p95 {percentile(durations, 0.95):6.2f} ms"
    )
    if latencies:
        print(
            "apply() return -> first new-cert handshake: "
            f"p50 {statistics.median(latencies):6.2f} ms   "
            f"p95 {percentile(latencies, 0.95):6.2f} ms   "
            f"({len(latencies)}/{len(swaps)} swaps seen)"
        )


if __name__ == "__main__":
    main()
