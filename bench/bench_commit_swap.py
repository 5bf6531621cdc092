"""From a committed assignment to the first handshake that presents the new certificate.

Printed, never asserted. A real ``certgate serve`` process serves 127.0.0.2 while client
threads (Python's ssl, full handshakes) connect in a loop. This process, a different one as
the CLI would be, flips the address between two certificates 20 times through the service
layer (``networking.assign``: the same call ``certgate ip assign`` makes), on the same data
directory. For each flip: time from the commit returning to the first handshake that
*started* after the commit and presented the new certificate. Failed handshakes over the
whole run are counted (target 0). Targets: p50 < 50 ms, 0 failures. Before the clients
start, the server's CPU use while idle (watching the store for commits) is printed too.

Run: ``.venv/bin/python bench/bench_commit_swap.py`` (about 30 seconds).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _nginx import cpu_seconds
from certgate.pki.names import SubjectFields
from certgate.service import certificates, networking
from certgate.service.appliance import Appliance

ADDRESS = "127.0.0.2"
CERTGATE = str(Path(sys.executable).with_name("certgate"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Clients:
    """Handshake loops recording (started, finished, leaf fingerprint or error)."""

    def __init__(
        self,
        port: int,
        threads: int,
        address: str = ADDRESS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port = port
        self.address = address
        self.clock = clock
        self.records: list[tuple[float, float, str]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def _loop(self) -> None:
        while not self.stop.is_set():
            started = self.clock()
            try:
                with (
                    socket.create_connection((self.address, self.port), timeout=10) as raw,
                    self.context.wrap_socket(raw) as tls,
                ):
                    der = tls.getpeercert(binary_form=True) or b""
            except OSError as error:
                self.failures.append(f"{type(error).__name__}: {error}")
                continue
            self.records.append((started, self.clock(), hashlib.sha256(der).hexdigest()))


def first_seen(records: list[tuple[float, float, str]], after: float, fingerprint: str) -> float:
    """When the first handshake that started after ``after`` presented ``fingerprint``."""
    finished = [end for start, end, seen in records if start >= after and seen == fingerprint]
    return min(finished, default=float("nan"))


def two_certificates(app: Appliance) -> list[certificates.Created]:
    """Two self-signed certificates to flip an address between."""
    return [
        certificates.create(
            app,
            certificates.CreateForm(name, SubjectFields(common_name=f"{name}.example.com")),
            "self-signed",
        )
        for name in ("blue", "green")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swaps", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between swaps")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle measurement")
    arguments = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="certgate-commit-swap-"))
    environment = {**os.environ, "CERTGATE_DATA_DIR": str(data_dir)}
    subprocess.run([CERTGATE, "init"], env=environment, check=True, capture_output=True)
    subprocess.run([CERTGATE, "ip", "add", ADDRESS], env=environment, check=True)
    app = Appliance.open(data_dir)
    ids = two_certificates(app)
    port = free_port()
    log = (data_dir / "serve.log").open("w")
    server = subprocess.Popen(
        [CERTGATE, "serve", "--https-port", str(port)], env=environment, stdout=log, stderr=log
    )
    latencies: list[float] = []
    try:
        time.sleep(2.0)
        before = cpu_seconds(server.pid)
        time.sleep(arguments.idle)
        idle = (cpu_seconds(server.pid) - before) / arguments.idle
        with Clients(port, arguments.threads) as clients:
            time.sleep(1.0)
            for swap in range(arguments.swaps):
                target = ids[swap % 2]
                networking.assign(app, [ADDRESS], target.id, confirm=True)
                committed = time.monotonic()
                time.sleep(arguments.interval)
                seen = first_seen(clients.records, committed, target.fingerprint_sha256)
                latencies.append((seen - committed) * 1000)
        handshakes, failures = len(clients.records), clients.failures
    finally:
        server.terminate()
        server.wait(10)
        app.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    valid = sorted(value for value in latencies if value == value)
    print(f"idle server CPU: {idle:.1%} of a core (watching the store every 10 ms)")
    print(
        f"swaps: {arguments.swaps}, seen: {len(valid)}, handshakes: {handshakes}, "
        f"failed handshakes: {len(failures)}"
    )
    if valid:
        p95 = valid[min(len(valid) - 1, int(len(valid) * 0.95))]
        print(
            f"commit -> first new-certificate handshake: p50 {statistics.median(valid):.1f} ms"
            f"  p95 {p95:.1f} ms  max {valid[-1]:.1f} ms"
        )
    for failure in failures[:5]:
        print("failure:", failure)


if __name__ == "__main__":
    main()
