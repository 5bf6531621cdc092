"""Helpers for the tls tests: leaves as a TlsServer is handed them (``tests.support.pki``'s CA),
a TlsServer running on its own event loop thread, and handshake load from other processes.
Clients are in ``tests.support.served`` (Python's ssl) and ``tests.support.openssl``
(``s_client``); addresses and ports in ``tests.support.net``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import uvloop
from cryptography.hazmat.primitives import hashes, serialization

from certgate.pki.tls_alpn import challenge_certificate
from certgate.tls import (
    Deadlines,
    ListenerPlan,
    ListenerStatus,
    ServedCertificate,
    TlsPolicy,
    TlsServer,
)
from tests.support.pki import TestCA, fingerprint, pem
from tests.support.served import client_context, handshake

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


def make_pki(directory: Path, leaves: Mapping[str, str]) -> Pki:
    """Root -> intermediate -> one leaf per ``{common name: "p256" | "rsa"}``, each as the
    ServedCertificate a TlsServer is handed."""
    root_name, intermediate_name = "certgate test root", "certgate test intermediate"
    ca = TestCA.make(root_name=root_name, intermediate_name=intermediate_name)
    made: dict[str, Leaf] = {}
    for leaf_name, kind in leaves.items():
        key, leaf = ca.leaf(leaf_name, kind)
        served = ServedCertificate(fingerprint(leaf), pem(leaf, ca.intermediate), pem(key))
        made[leaf_name] = Leaf(
            leaf_name, served, ServedCertificate(served.fingerprint, pem(leaf), served.key_pem)
        )
    root_pem = directory / "root.pem"
    root_pem.write_bytes(pem(ca.root))
    return Pki(root_pem, intermediate_name, root_name, made)


def served_challenge(name: str, key_authorization: str) -> ServedCertificate:
    """A TLS-ALPN-01 challenge certificate as serve plans it (``pki/tls_alpn.py``)."""
    certificate, key = challenge_certificate(name, key_authorization, dt.datetime.now(dt.UTC))
    return ServedCertificate(
        certificate.fingerprint(hashes.SHA256()).hex(),
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


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


def plan(
    port: int,
    assignments: Mapping[str, ServedCertificate],
    policy: TlsPolicy | None = None,
    deadlines: Deadlines | None = None,
    challenges: Mapping[str, ServedCertificate] | None = None,
) -> ListenerPlan:
    return ListenerPlan(
        port,
        policy or TlsPolicy(),
        dict(assignments),
        deadlines=deadlines or Deadlines(),
        challenges=dict(challenges or {}),
    )


# --- clients ---------------------------------------------------------------------------------


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
    context = client_context(Path(root_pem))
    records: list[Record] = []

    def loop() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                presented, error = handshake(address, port, context).fingerprint, ""
            except Exception as failure:  # every failure is a finding
                presented, error = "", repr(failure)
            records.append((address, started, time.monotonic(), presented, error))

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(records)
