"""Handshake benchmark: server CPU per full TLS 1.3 handshake, certgate's TlsServer vs nginx.

Printed, never asserted. Each server runs pinned to core 0 (certgate: one process, its TLS
front-end thread and its uvloop thread; nginx: Debian's package, one worker, same certificate
chain, same ciphers, both sending two TLS 1.3 session tickets per full handshake);
``openssl s_time -new`` processes pinned to core 1 make full handshakes (never resumed) to it.
The figure is the server process's CPU time (utime + stime of all its threads, from /proc)
over the run divided by the connections completed.
Rounds alternate between the servers so that drift on the machine hits all of them; the median
round is printed. ``--with-request`` adds a second table where each connection also GETs a
3-byte page over HTTP/1.0 (nginx: ``return 200``; certgate: a protocol answering the same on
the Python side), which is what the data path through Python costs, and a third where each
connection after a client's first resumes its session with a ticket (``s_time -reuse``; the
GET is what makes s_time read the ticket).

Run: ``.venv/bin/python bench/bench_handshake.py`` (``--help`` for options; about 2 minutes,
4 with ``--with-request``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _nginx import (
    SERVER_CPU,
    Material,
    cpu_seconds,
    free_port,
    make_material,
    running_nginx,
    s_time,
    wait_listening,
)

ADDRESS = "127.0.0.2"
KINDS = {"rsa": "RSA-2048", "p256": "P-256"}


class _Answer(asyncio.Protocol):
    """The plaintext protocol: made only when a client sends a request, answered like nginx's
    ``return 200 "ok\\n"``; an HTTP/1.0 request (s_time's ``-www``) then closes, an HTTP/1.1
    one is kept alive (bench_memory.py)."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.received = b""

    def data_received(self, data: bytes) -> None:
        self.received += data
        head, found, self.received = self.received.partition(b"\r\n\r\n")
        if not found:
            self.received = head
            return
        self.transport.write(self.RESPONSE)
        if head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0"):
            self.transport.close()


def serve(chain: Path, key: Path, fingerprint: str, port: int) -> None:
    """The certgate side: a TlsServer on uvloop with one address, until SIGTERM."""
    import uvloop

    from certgate.tls import ListenerPlan, ServedCertificate, TlsPolicy, TlsServer

    async def main() -> None:
        server = TlsServer(_Answer)
        certificate = ServedCertificate(fingerprint, chain.read_bytes(), key.read_bytes())
        statuses = await server.apply(ListenerPlan(port, TlsPolicy(), {ADDRESS: certificate}))
        assert statuses[0].state == "listening", statuses
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("ready", flush=True)
        await stop.wait()
        await server.close()

    uvloop.run(main())


@contextlib.contextmanager
def certgate_server(material: Material, port: int) -> Iterator[subprocess.Popen[str]]:
    """This script's ``--serve`` in its own process, pinned to the server core."""
    process = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(SERVER_CPU),
            sys.executable,
            __file__,
            "--serve",
            str(material.chain),
            str(material.key),
            material.fingerprint,
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the certgate server did not start")
        wait_listening(ADDRESS, port)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: What a connection does: (table title, request path or None, resume the session).
Mode = tuple[str, str | None, bool]
FULL: Mode = ("full TLS 1.3 handshake", None, False)
WITH_REQUEST: Mode = ("handshake + one HTTP/1.0 GET", "/", False)
RESUMED: Mode = ("resumed TLS 1.3 handshake (ticket) + one HTTP/1.0 GET", "/", True)


def measure(
    pids: list[int], port: int, seconds: float, clients: int, mode: Mode = FULL
) -> tuple[float, float]:
    """Server CPU microseconds per completed connection (handshake, and the request if any),
    and of that the first process's main thread (certgate: the event loop, Python's side of
    the hand-off; the rest is the front end's thread)."""
    _, request, resume = mode
    before = sum(cpu_seconds(pid) for pid in pids)
    main_before = cpu_seconds(pids[0], pids[0])
    done = s_time(ADDRESS, port, seconds, clients, request=request, resume=resume)
    after = sum(cpu_seconds(pid) for pid in pids)
    main_after = cpu_seconds(pids[0], pids[0])
    if done == 0:
        raise RuntimeError(f"no handshake completed on port {port}")
    return (after - before) / done * 1e6, (main_after - main_before) / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds per measurement")
    parser.add_argument("--clients", type=int, default=4, help="s_time processes (default 4)")
    parser.add_argument(
        "--with-request",
        action="store_true",
        help="also measure connections that GET a page over HTTP/1.0 after the handshake, "
        "and resumed ones that do",
    )
    parser.add_argument(
        "--serve", nargs=4, metavar=("CHAIN", "KEY", "FP", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        chain, key, fingerprint, port = args.serve
        serve(Path(chain), Path(key), fingerprint, int(port))
        return
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two cores: one for the server, one for the load generator")

    from certgate.tls import DEFAULT_TLS12_CIPHERS

    with tempfile.TemporaryDirectory(prefix="certgate-bench-") as temporary:
        materials = {kind: make_material(Path(temporary), kind, kind) for kind in KINDS}
        results: dict[tuple[str, str, str], list[float]] = {}
        loop_share: dict[tuple[str, str], list[float]] = {}  # certgate's event loop
        with contextlib.ExitStack() as stack:
            targets: list[tuple[str, str, list[int], int]] = []
            for kind, material in materials.items():
                port = free_port(ADDRESS)
                process = stack.enter_context(certgate_server(material, port))
                targets.append((kind, "certgate", [process.pid], port))
                port = free_port(ADDRESS)
                workers = stack.enter_context(
                    running_nginx(material, ADDRESS, port, DEFAULT_TLS12_CIPHERS)
                )
                targets.append((kind, "nginx", workers, port))
            modes = [FULL, WITH_REQUEST, RESUMED] if args.with_request else [FULL]
            for _kind, _name, pids, port in targets:  # warm-up: caches, page faults
                measure(pids, port, 1, args.clients)
            for round_number in range(args.rounds):
                for mode in modes:
                    for kind, name, pids, port in targets:
                        figure, loop = measure(pids, port, args.seconds, args.clients, mode)
                        results.setdefault((kind, name, mode[0]), []).append(figure)
                        if name == "certgate":
                            loop_share.setdefault((kind, mode[0]), []).append(loop)
                print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)

    for what, _, _ in modes:
        print(f"server CPU per {what} (µs, median of rounds; lower is better)")
        print(
            f"{'key':<9} {'certgate':>9} {'(loop)':>7} {'nginx':>9} {'nginx/certgate':>15}"
            "   rounds certgate | nginx"
        )
        for kind, label in KINDS.items():
            ours_all = results[(kind, "certgate", what)]
            theirs_all = results[(kind, "nginx", what)]
            ours, theirs = statistics.median(ours_all), statistics.median(theirs_all)
            spread = " ".join(f"{v:.0f}" for v in ours_all)
            spread += " | " + " ".join(f"{v:.0f}" for v in theirs_all)
            loop = statistics.median(loop_share[(kind, what)])
            print(
                f"{label:<9} {ours:>9.0f} {loop:>7.0f} {theirs:>9.0f} {theirs / ours:>15.2f}   "
                f"{spread}"
            )
    print("(loop): of certgate's figure, its event loop thread's (Python); the rest is the")
    print("front end's thread. target (handshakes): nginx/certgate >= 0.90")


if __name__ == "__main__":
    main()
