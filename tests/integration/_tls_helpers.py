"""Helpers for the tls tests: a test PKI made with cryptography, a TlsServer running on its own
event loop thread, TLS clients (Python's ssl and the openssl CLI as an independent peer).

Every test server listens on loopback addresses only: all of 127.0.0.0/8 is loopback on
Linux, so 127.0.0.2, 127.0.0.3, ... stand for distinct appliance addresses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certgate.tls import ListenerPlan, ListenerStatus, ServedCertificate, TlsPolicy, TlsServer

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
T = TypeVar("T")


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    name: str  # the leaf's common name
    served: ServedCertificate  # leaf + intermediate, as certgate is handed it
    leaf_only: ServedCertificate  # the same leaf without its intermediate

    @property
    def fingerprint(self) -> str:
        return self.served.fingerprint


@dataclass(frozen=True)
class Pki:
    root_pem: Path  # the only trust anchor clients get
    intermediate_name: str
    root_name: str
    leaves: Mapping[str, Leaf]

    def __getitem__(self, name: str) -> Leaf:
        return self.leaves[name]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, leaves: Mapping[str, str]) -> Pki:
    """Root -> intermediate -> one leaf per ``{common name: "p256" | "rsa"}``."""
    root_name, intermediate_name = "certgate test root", "certgate test intermediate"
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _issue(root_name, root_key, root_name, root_key, ca=True)
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = _issue(intermediate_name, intermediate_key, root_name, root_key, ca=True)
    pem = serialization.Encoding.PEM
    made: dict[str, Leaf] = {}
    for leaf_name, kind in leaves.items():
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "rsa"
            else ec.generate_private_key(ec.SECP256R1())
        )
        leaf = _issue(leaf_name, key, intermediate_name, intermediate_key, ca=False)
        key_pem = key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fingerprint = leaf.fingerprint(hashes.SHA256()).hex()
        made[leaf_name] = Leaf(
            leaf_name,
            ServedCertificate(
                fingerprint, leaf.public_bytes(pem) + intermediate.public_bytes(pem), key_pem
            ),
            ServedCertificate(fingerprint, leaf.public_bytes(pem), key_pem),
        )
    root_pem = directory / "root.pem"
    root_pem.write_bytes(root.public_bytes(pem))
    return Pki(root_pem, intermediate_name, root_name, made)


# --- the server under test -------------------------------------------------------------------


class Echo(asyncio.Protocol):
    """The plaintext application: echoes what it receives, so a test can tell that an
    established connection still works."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class ServerThread:
    """A TlsServer on its own event loop thread, driven synchronously from the test."""

    def __init__(
        self,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop,
        protocol_factory: Callable[[], asyncio.BaseProtocol] = Echo,
        **options: Any,
    ) -> None:
        self.loop = loop_factory()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

        async def create() -> TlsServer:
            return TlsServer(protocol_factory, **options)

        self.server = self.call(create())

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def apply(self, plan: ListenerPlan) -> list[ListenerStatus]:
        return self.call(self.server.apply(plan))

    def status(self) -> list[ListenerStatus]:
        async def read() -> list[ListenerStatus]:
            return self.server.status()

        return self.call(read())

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.call(self.server.close(grace=0.5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    """Wait until ``condition()`` holds; fail the test if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def plan(
    port: int, assignments: Mapping[str, ServedCertificate], policy: TlsPolicy | None = None
) -> ListenerPlan:
    return ListenerPlan(port, policy or TlsPolicy(), dict(assignments))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- clients ---------------------------------------------------------------------------------


def verifying_context(root_pem: Path) -> ssl.SSLContext:
    """Trusts the test root only: verification succeeds only if the server sends the
    intermediate. Host names are not the subject of these tests."""
    context = ssl.create_default_context(cafile=str(root_pem))
    context.check_hostname = False
    return context


@dataclass(frozen=True)
class Handshake:
    fingerprint: str
    common_name: str
    version: str
    cipher: str


def handshake(address: str, port: int, context: ssl.SSLContext, timeout: float = 10) -> Handshake:
    """One full handshake; raises if it fails or the chain does not verify."""
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=None) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        common_name = (
            x509.load_der_x509_certificate(der)
            .subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]
            .value
        )
        cipher = tls.cipher()
        return Handshake(
            hashlib.sha256(der).hexdigest(),
            str(common_name),
            tls.version() or "",
            cipher[0] if cipher else "",
        )


def s_client(address: str, port: int, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``openssl s_client`` to ``address:port``, sending nothing; stdout and stderr merged."""
    host = f"[{address}]" if ":" in address else address
    return subprocess.run(
        [OPENSSL, "s_client", "-connect", f"{host}:{port}", "-servername", "x", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=20,
        check=False,
    )


# --- load from other processes ----------------------------------------------------------------

#: What a load client records of one handshake: address, started, finished (CLOCK_MONOTONIC,
#: shared by all processes), and the fingerprint presented, or "" with the error.
Record = tuple[str, float, float, str, str]


def load_clients(
    address: str,
    port: int,
    root_pem: str,
    threads: int,
    stop: Any,  # multiprocessing.Event
    results: Any,  # multiprocessing.Queue
) -> None:
    """Run in a separate process: ``threads`` handshake loops on ``address`` until ``stop``,
    then put the list of records on ``results``. Outside the test process so that the
    clients do not compete for the server's interpreter lock."""
    context = verifying_context(Path(root_pem))
    records: list[Record] = []

    def loop() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                fingerprint, error = handshake(address, port, context).fingerprint, ""
            except Exception as failure:  # every failure is a finding
                fingerprint, error = "", repr(failure)
            records.append((address, started, time.monotonic(), fingerprint, error))

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(records)
