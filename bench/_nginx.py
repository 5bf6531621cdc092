"""Shared pieces of the TLS benchmarks: test certificates, an nginx to compare against, the
openssl CLI as load generator and per-process CPU accounting.

Everything runs on loopback addresses of this machine and stops by itself.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVER_CPU = 0  # the server under test runs here ...
CLIENT_CPU = 1  # ... and the load generator here


@dataclass(frozen=True)
class Material:
    """A leaf (with its intermediate) signed by a root, as PEM files and bytes."""

    fingerprint: str
    chain: Path
    key: Path
    root: Path

    @property
    def chain_pem(self) -> bytes:
        return self.chain.read_bytes()

    @property
    def key_pem(self) -> bytes:
        return self.key.read_bytes()


def make_material(directory: Path, name: str, kind: str) -> Material:
    """Root -> intermediate -> leaf ``name`` with an RSA-2048 (``rsa``) or P-256 leaf key."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def issue(
        subject: str, key: object, issuer: str, issuer_key: object, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())  # type: ignore[attr-defined]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]

    root_key = ec.generate_private_key(ec.SECP256R1())
    root = issue(f"{name} root", root_key, f"{name} root", root_key, True)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = issue(f"{name} intermediate", inter_key, f"{name} root", root_key, True)
    leaf_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    leaf = issue(name, leaf_key, f"{name} intermediate", inter_key, False)
    pem = serialization.Encoding.PEM
    chain = directory / f"{name}.pem"
    chain.write_bytes(leaf.public_bytes(pem) + inter.public_bytes(pem))
    key = directory / f"{name}.key"  # benchmark material only; the product never writes keys
    key.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    root_path = directory / f"{name}-root.pem"
    root_path.write_bytes(root.public_bytes(pem))
    return Material(leaf.fingerprint(hashes.SHA256()).hex(), chain, key, root_path)


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def wait_listening(address: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {address}:{port}")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time so far of one process (all its threads), or of one of its
    threads (from /proc/PID/stat, /proc/PID/task/TID/stat)."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextmanager
def running_nginx(
    material: Material,
    address: str,
    port: int,
    ciphers: str,
    workers: int = 1,
    pin: bool = True,
    tickets: bool = True,
) -> Iterator[list[int]]:
    """Debian's nginx on ``address:port`` with its own prefix under /tmp; yields worker pids.

    Configured for the same TLS work as certgate: TLS 1.2-1.3, the same TLS 1.2 ciphers and
    TLS 1.3 session tickets (nginx's default, and certgate's: two per full handshake).
    ``pin`` runs it on the server core only; otherwise its workers may use every core.
    """
    prefix = Path(
        subprocess.run(
            ["mktemp", "-d", "/tmp/certgate-nginx.XXXXXX"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (prefix / "logs").mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen {address}:{port} ssl backlog=1024;
        ssl_certificate {material.chain};
        ssl_certificate_key {material.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {ciphers};
        ssl_session_tickets {"on" if tickets else "off"};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
    )
    pinning = ["taskset", "-c", str(SERVER_CPU)] if pin else []
    master = subprocess.Popen(
        [*pinning, NGINX, "-c", str(conf), "-p", str(prefix)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(address, port)
        workers_pids: list[int] = []
        deadline = time.monotonic() + 10
        while len(workers_pids) < workers and time.monotonic() < deadline:
            children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
            workers_pids = [int(pid) for pid in children]
            time.sleep(0.05)
        yield workers_pids
    finally:
        master.send_signal(signal.SIGQUIT)
        try:
            master.wait(timeout=10)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
        shutil.rmtree(prefix, ignore_errors=True)


def s_time(
    address: str,
    port: int,
    seconds: float,
    clients: int,
    pin: bool = True,
    request: str | None = None,
    resume: bool = False,
) -> int:
    """Full TLS 1.3 handshakes (``-new``: never resumed) from ``clients`` openssl s_time
    processes for ``seconds``, on the client core (``pin``) or on any; returns how many
    completed. With ``request`` (a path), each connection also GETs it over HTTP/1.0. With
    ``resume`` (needs ``request``: a TLS 1.3 ticket arrives after the handshake, and s_time
    reads only when it requests), every connection after each client's first resumes its
    session (``-reuse``)."""
    pinning = ["taskset", "-c", str(CLIENT_CPU)] if pin else []
    processes = [
        subprocess.Popen(
            [
                *pinning,
                OPENSSL,
                "s_time",
                "-connect",
                f"{address}:{port}",
                "-reuse" if resume else "-new",
                "-tls1_3",
                "-time",
                str(max(1, round(seconds))),
                *(["-www", request] if request else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(clients)
    ]
    total = resumed = 0
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 60)
        found = re.search(r"(\d+) connections in [\d.]+ real seconds", out)
        total += int(found.group(1)) if found else 0
        # s_time prints one character per connection: "r" for a resumed one.
        resumed += sum(line.count("r") for line in re.findall(r"^[*r123]+$", out, re.M))
    if resume and total and resumed < 0.9 * total:
        raise RuntimeError(f"only {resumed} of {total} connections resumed on port {port}")
    return total
