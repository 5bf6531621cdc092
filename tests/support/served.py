"""What a listener presents, seen as a TLS client sees it (Python's ssl module): the leaf, its
fingerprint, the protocol and cipher agreed. The openssl CLI's view (the whole chain sent) is
in ``tests.support.openssl``."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.support.polling import eventually


@dataclass(frozen=True)
class Handshake:
    der: bytes  # the leaf presented
    version: str  # "TLSv1.3"
    cipher: str

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the leaf, lower-case hex: as certgate shows it."""
        return hashlib.sha256(self.der).hexdigest()

    @property
    def common_name(self) -> str:
        subject = x509.load_der_x509_certificate(self.der).subject
        return str(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def client_context(
    root: Path | None = None,
    *,
    check_hostname: bool = False,
    version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A client that trusts ``root`` alone (a handshake verifies only if the listener sends the
    intermediate), or, without a root, accepts whatever is presented. ``version`` pins the
    protocol version offered."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = check_hostname
    if root is None:
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=str(root))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


def handshake(
    address: str,
    port: int,
    context: ssl.SSLContext | None = None,
    *,
    server_name: str | None = None,
    timeout: float = 10.0,
) -> Handshake:
    """One full handshake with ``address:port``; raises if it fails or does not verify."""
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        (context or client_context()).wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        cipher = tls.cipher()
        version = tls.version() or ""
    assert der is not None
    return Handshake(der, version, cipher[0] if cipher else "")


def handshake_succeeds(
    address: str, port: int, context: ssl.SSLContext | None = None, *, timeout: float = 10.0
) -> bool:
    """Whether a handshake with ``address:port`` completes (refused, reset or failed: no)."""
    try:
        handshake(address, port, context, timeout=timeout)
    except OSError:  # ssl.SSLError and socket timeouts included
        return False
    return True


def served_fingerprint(address: str, port: int) -> str:
    """The SHA-256 fingerprint of the leaf the listener at ``address:port`` presents."""
    return handshake(address, port).fingerprint


def wait_until_served(address: str, port: int, fingerprint: str, timeout: float = 10.0) -> None:
    """Changes are live "at once": the listener swaps within milliseconds of the commit."""
    seen: list[str] = []

    def presented() -> bool:
        seen.append(served_fingerprint(address, port))
        return seen[-1] == fingerprint

    try:
        eventually(presented, timeout=timeout)
    except AssertionError:
        raise AssertionError(
            f"{address}:{port} presents {seen[-1]}, not {fingerprint}, after {timeout:g} s"
        ) from None


@dataclass
class HandshakeLoad:
    """What ``handshake_load`` saw: every handshake done, and each one that failed (where,
    and why)."""

    done: int = 0
    failures: list[str] = field(default_factory=list)


@contextmanager
def handshake_load(targets: Sequence[tuple[str, int]]) -> Iterator[HandshakeLoad]:
    """A thread doing real, full TLS handshakes with each of ``targets`` in turn, one after
    the other, until the block ends; a listener that cannot be reached or fails a handshake
    is a failure, recorded with its reason."""
    load = HandshakeLoad()
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            for address, port in targets:
                try:
                    handshake(address, port, timeout=10)
                except OSError as error:
                    load.failures.append(f"{address}:{port}: {error!r}")
                load.done += 1

    thread = threading.Thread(target=run, name="handshake-load", daemon=True)
    thread.start()
    try:
        yield load
    finally:
        stop.set()
        thread.join(timeout=30)


@dataclass(frozen=True)
class AlpnAnswer:
    """What a client offering ALPN protocols (an ACME CA's ``acme-tls/1``) was answered."""

    der: bytes  # the leaf presented
    protocol: str | None  # the protocol the listener selected
    #: whether the listener then ended the connection unasked (None: not waited for)
    closed: bool | None

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)


def alpn_handshake(
    address: str,
    port: int,
    server_name: str | None,
    protocols: tuple[str, ...] = ("acme-tls/1",),
    *,
    version: ssl.TLSVersion | None = None,
    wait_for_close: bool = True,
    timeout: float = 10.0,
) -> AlpnAnswer:
    """One handshake offering ``protocols`` with ``server_name`` as SNI, as a TLS-ALPN-01
    validator makes it (no certificate check); raises ``ssl.SSLError`` when refused.
    ``wait_for_close``: read until the listener ends the connection (or ``timeout``)."""
    context = client_context(version=version)
    context.set_alpn_protocols(list(protocols))
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        protocol = tls.selected_alpn_protocol()
        closed = None
        if wait_for_close:
            try:
                closed = tls.recv(1) == b""
            except TimeoutError:
                closed = False
    assert der is not None
    return AlpnAnswer(der, protocol, closed)
