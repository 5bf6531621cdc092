"""Memory benchmark: server memory per open TLS connection, certgate's TlsServer vs nginx.

Printed, never asserted. Both servers run as in bench_handshake.py (certgate: the bench
server process, its TLS front end and a Python protocol that answers ``GET`` like nginx's
``return 200 "ok\\n"``; nginx: Debian's package, one worker). This script opens N TLS
connections to each and keeps them open, in two states:

- ``idle``: handshake done, nothing sent (a browser's pre-connection); these live in the
  front end only;
- ``after a request``: the same connections after one HTTP/1.1 GET and its answer, kept alive;
  these are held by the front end and by the application side in Python.

The figure is the growth of the server's resident memory (VmRSS of the certgate process; of
nginx's worker) divided by N, against the same server with no connection, measured in the same
run.

Run: ``.venv/bin/python bench/bench_memory.py`` (``--help`` for options; under a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import socket
import ssl
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _nginx import free_port, make_material, running_nginx
from bench_handshake import ADDRESS, KINDS, certgate_server

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_connections(port: int, count: int, root: Path) -> list[ssl.SSLSocket]:
    context = ssl.create_default_context(cafile=str(root))
    context.check_hostname = False
    connections = []
    for _ in range(count):
        raw = socket.create_connection((ADDRESS, port), timeout=10)
        connections.append(context.wrap_socket(raw))
    return connections


def request_on_each(connections: list[ssl.SSLSocket]) -> None:
    for tls in connections:
        tls.sendall(REQUEST)
        answer = b""
        while not answer.endswith(b"\r\n\r\nok\n"):
            chunk = tls.recv(4096)
            if not chunk:
                raise RuntimeError("the server closed a kept-alive connection")
            answer += chunk


def measure(pid: int, port: int, count: int, root: Path) -> tuple[float, float]:
    """KiB per connection: idle after the handshake, and kept alive after one request."""
    baseline = resident_kib(pid)
    connections = open_connections(port, count, root)
    try:
        idle = (resident_kib(pid) - baseline) / count
        request_on_each(connections)
        served = (resident_kib(pid) - baseline) / count
    finally:
        for tls in connections:
            tls.close()
    return idle, served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000, help="N (default 2000)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * args.connections + 256  # this process's and, inherited, the servers'
    if hard != resource.RLIM_INFINITY and hard < wanted:
        sys.exit(f"needs {wanted} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))

    from certgate.tls import DEFAULT_TLS12_CIPHERS

    rows = []
    with tempfile.TemporaryDirectory(prefix="certgate-bench-") as temporary:
        for kind, label in KINDS.items():
            material = make_material(Path(temporary), kind, kind)
            with contextlib.ExitStack() as stack:
                port = free_port(ADDRESS)
                process = stack.enter_context(certgate_server(material, port))
                ours = measure(process.pid, port, args.connections, material.root)
                port = free_port(ADDRESS)
                [worker] = stack.enter_context(
                    running_nginx(material, ADDRESS, port, DEFAULT_TLS12_CIPHERS)
                )
                theirs = measure(worker, port, args.connections, material.root)
            rows.append((label, ours, theirs))
            print(f"{label} done", file=sys.stderr)

    print(f"server memory per open TLS connection (KiB; {args.connections} connections)")
    print(f"{'key':<9} {'state':<16} {'certgate':>9} {'nginx':>7}")
    for label, ours, theirs in rows:
        print(f"{label:<9} {'idle':<16} {ours[0]:>9.1f} {theirs[0]:>7.1f}")
        print(f"{label:<9} {'after a request':<16} {ours[1]:>9.1f} {theirs[1]:>7.1f}")


if __name__ == "__main__":
    main()
