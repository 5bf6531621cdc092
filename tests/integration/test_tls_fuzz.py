"""A bounded fuzz run against the front end over real sockets: random first bytes, mutated
ClientHellos (TLS 1.2 and 1.3 offers, and TLS-ALPN-01 validators' whose server name and
ALPN extensions the front end reads itself) and mutated records after a completed handshake. Each
case is one connection; afterwards a well-behaved client is still served and the front end
holds no connection. ``scripts/test-asan`` runs it against the AddressSanitizer + UBSan build,
where a memory error aborts the run.

Bounded by case counts (``CERTGATE_FUZZ_CASES`` scales them, default 1.0) and seeded
(``CERTGATE_FUZZ_SEED``; the seed is in the failure message) so that a failure replays.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from certgate.tls import Deadlines
from tests.integration._tls_helpers import Pki, ServerThread, make_pki, plan, served_challenge
from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.served import client_context, handshake

A = "127.0.0.2"
SCALE = float(os.environ.get("CERTGATE_FUZZ_CASES", "1.0"))
SEED = int(os.environ.get("CERTGATE_FUZZ_SEED", str(time.time_ns() % 2**32)))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), {"fuzz.test": "p256", "rsa.test": "rsa"})


@pytest.fixture
def server(pki: Pki) -> Iterator[tuple[ServerThread, int]]:
    running = ServerThread()
    port = free_port()
    served = {A: pki["fuzz.test"].served, "127.0.0.3": pki["rsa.test"].served}
    deadlines = Deadlines(handshake=2.0, header=2.0, send=2.0)
    challenges = {"fuzz.test": served_challenge("fuzz.test", "token.thumbprint")}
    running.apply(plan(port, served, deadlines=deadlines, challenges=challenges))
    yield running, port
    running.close()


def _send(port: int, payload: bytes, address: str = A) -> None:
    """Send ``payload`` as the first bytes of a connection, end it, and read what comes back
    (an alert, perhaps) until the server closes or a second passes."""
    try:
        with socket.create_connection((address, port), timeout=1.0) as raw:
            raw.sendall(payload)
            raw.shutdown(socket.SHUT_WR)
            while raw.recv(65536):
                pass
    except OSError:
        pass  # reset, refused mid-way, timeout: all fine, the server decides


def _mutate(rng: random.Random, data: bytes) -> bytes:
    """One of: bit flips, random bytes, a cut, a repeated slice, a corrupted length field."""
    buffer = bytearray(data)
    if len(buffer) < 8:  # cut short by an earlier mutation: grow it again
        buffer += rng.randbytes(8)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        for _ in range(rng.randint(1, 16)):
            buffer[rng.randrange(len(buffer))] = rng.randrange(256)
    elif kind == 2:
        del buffer[rng.randrange(1, len(buffer)) :]
    elif kind == 3:
        start = rng.randrange(len(buffer))
        piece = buffer[start : start + rng.randint(1, 64)]
        at = rng.randrange(len(buffer))
        buffer[at:at] = piece * rng.randint(1, 8)
    else:  # a length: the record's (3..4), the handshake's (6..8) or any two bytes
        at = rng.choice([3, 6, rng.randrange(len(buffer) - 1)])
        buffer[at : at + 2] = rng.choice([b"\x00\x00", b"\xff\xff", b"\x40\x01", b"\x00\x01"])
    return bytes(buffer)


def _client_hello(context: ssl.SSLContext, server_name: str = "fuzz.test") -> bytes:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def _established(
    port: int, context: ssl.SSLContext
) -> tuple[socket.socket, ssl.SSLObject, ssl.MemoryBIO]:
    """A completed handshake whose records the test writes itself."""
    raw = socket.create_connection((A, port), timeout=5)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing)
    while True:
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            data = raw.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake") from None
            incoming.write(data)
    raw.sendall(outgoing.read())
    return raw, client, outgoing


def _cases(count: int) -> int:
    return max(1, round(count * SCALE))


def _run(what: str, count: int, case: Callable[[random.Random, int], None]) -> None:
    rng = random.Random(f"{SEED}:{what}")
    for index in range(_cases(count)):
        try:
            case(rng, index)
        except Exception as error:  # the seed and case make it replayable
            raise AssertionError(f"{what} case {index} (CERTGATE_FUZZ_SEED={SEED})") from error


def _still_sound(running: ServerThread, port: int) -> None:
    assert handshake(A, port).common_name == "fuzz.test", f"CERTGATE_FUZZ_SEED={SEED}"
    front = running.server._front
    assert front is not None
    eventually(lambda: front.connections == 0, timeout=10, what="every fuzz connection ended")


def test_random_first_bytes(server: tuple[ServerThread, int]) -> None:
    running, port = server

    def case(rng: random.Random, index: int) -> None:
        size = rng.choice([1, 5, rng.randint(1, 64), rng.randint(64, 4096)])
        head = rng.choice([b"", b"\x16\x03\x01", b"\x16\x03\x03", b"\x17\x03\x03", b"\x15\x03\x03"])
        _send(port, head + rng.randbytes(size))

    _run("first bytes", 500, case)
    _still_sound(running, port)


def test_mutated_client_hellos(server: tuple[ServerThread, int]) -> None:
    running, port = server
    validator = client_context()  # a TLS-ALPN-01 validator: its SNI and ALPN parsed first
    validator.set_alpn_protocols(["acme-tls/1"])
    hellos = [
        _client_hello(client_context()),
        _client_hello(client_context(version=ssl.TLSVersion.TLSv1_2)),
        _client_hello(client_context(version=ssl.TLSVersion.TLSv1_3)),
        _client_hello(validator),
        _client_hello(validator, "other.test"),
    ]

    def case(rng: random.Random, index: int) -> None:
        hello = rng.choice(hellos)
        for _ in range(rng.choice([1, 1, 2, 4])):
            hello = _mutate(rng, hello)
        _send(port, hello, rng.choice([A, "127.0.0.3"]))

    _run("client hello", 1000, case)
    _still_sound(running, port)


def test_mutated_records_after_the_handshake(server: tuple[ServerThread, int]) -> None:
    running, port = server
    contexts = [
        client_context(version=ssl.TLSVersion.TLSv1_2),
        client_context(version=ssl.TLSVersion.TLSv1_3),
    ]

    def case(rng: random.Random, index: int) -> None:
        raw, client, outgoing = _established(port, rng.choice(contexts))
        with raw:
            client.write(rng.randbytes(rng.choice([1, 100, 5000, 20000])))
            records = outgoing.read()
            if rng.random() < 0.3:
                client.write(b"x")  # a good record first, then the bad one
                raw.sendall(outgoing.read())
            raw.sendall(_mutate(rng, records))
            raw.settimeout(1.0)
            try:
                raw.shutdown(socket.SHUT_WR)
                while raw.recv(65536):
                    pass
            except OSError:
                pass

    _run("records", 300, case)
    _still_sound(running, port)
