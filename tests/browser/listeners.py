"""What a listener really presents, read as a client would: Python's ssl module for the
leaf, the openssl CLI (``s_client -showcerts``) for the whole chain sent."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import time

from tests.support.openssl import openssl

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def served_der(address: str, port: int, minimum: ssl.TLSVersion | None = None) -> bytes:
    """The DER of the certificate the listener at ADDRESS:PORT presents."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        context.minimum_version = context.maximum_version = minimum
    with (
        socket.create_connection((address, port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def served_fingerprint(address: str, port: int) -> str:
    return hashlib.sha256(served_der(address, port)).hexdigest()


def wait_until_served(address: str, port: int, fingerprint: str, timeout: float = 10.0) -> None:
    """Assignments are live "at once": the listener swaps within milliseconds of the commit."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = served_fingerprint(address, port)
        if seen == fingerprint:
            return
        time.sleep(0.05)
    raise AssertionError(f"{address}:{port} presents {seen}, not {fingerprint}")


def served_chain(address: str, port: int) -> list[bytes]:
    """Every certificate the listener sends (PEM, leaf first), as openssl s_client sees it."""
    output = openssl(
        "s_client", "-connect", f"{address}:{port}", "-showcerts", "-servername", "localhost",
        stdin=b"",
    )  # fmt: skip
    return _PEM.findall(output.encode())


def subjects_of(pems: list[bytes]) -> list[str]:
    """The subject of each PEM certificate, as ``openssl x509 -subject`` prints it."""
    return [
        openssl("x509", "-noout", "-subject", stdin=pem).strip().removeprefix("subject=").strip()
        for pem in pems
    ]


def sha256_of_pem(pem: bytes) -> str:
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    return hashlib.sha256(der).hexdigest()
