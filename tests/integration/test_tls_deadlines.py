"""Attacks on a running ``certgate serve``, as nginx is attacked every day: half requests,
requests that trickle in, bodies that stop, garbage inside TLS, responses nobody reads, a FIN
right after a request, a SIGTERM while clients hold connections. Each is closed or answered
within its deadline (short ones, set by ``tls set`` here), the server answers other clients
throughout, and its descriptors come back to where they started."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import resource
import select
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.served import client_context
from tests.support.server import (
    CERTGATE,
    RunningAppliance,
    run_cli,
    running_appliance,
    wait_for_tls,
)

#: The deadlines the attacked appliance runs with (seconds), and the slack a busy machine gets.
DEADLINE = 1.0
SLACK = 5.0
SHORT = tuple(
    arg
    for name in ("handshake", "header", "body", "send", "keepalive")
    for arg in (f"--{name}-timeout", str(DEADLINE))
)


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAppliance]:
    data_dir = tmp_path_factory.mktemp("deadlines") / "data"
    with running_appliance(data_dir, address="127.0.0.13", tls_settings=SHORT) as running:
        yield running


def connect(appliance: RunningAppliance, timeout: float = 10) -> ssl.SSLSocket:
    raw = socket.create_connection((appliance.address, appliance.port), timeout=timeout)
    try:
        return client_context().wrap_socket(raw)
    except BaseException:
        raw.close()
        raise


def refused(appliance: RunningAppliance) -> bool:
    try:
        socket.create_connection((appliance.address, appliance.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def ended_within(tls: ssl.SSLSocket, seconds: float) -> bool:
    """Whether the server ends the connection (close_notify, FIN or reset) within ``seconds``,
    whatever it sends before."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        tls.settimeout(left)
        try:
            if not tls.recv(65536):
                return True
        except TimeoutError:
            return False
        except (OSError, ssl.SSLError):
            return True
    return False


def read_to_end(tls: ssl.SSLSocket, timeout: float = 30) -> bytes:
    tls.settimeout(timeout)
    received = bytearray()
    with contextlib.suppress(ConnectionResetError, ssl.SSLEOFError):
        while chunk := tls.recv(65536):
            received += chunk
    return bytes(received)


def answers(appliance: RunningAppliance) -> bool:
    """Another client, meanwhile, gets a page."""
    try:
        with httpx.Client(verify=client_context(), timeout=5) as client:
            return client.get(f"{appliance.base_url}/api/v1/openapi.json").status_code == 200
    except httpx.HTTPError:
        return False


def descriptors(appliance: RunningAppliance) -> int:
    return len(os.listdir(f"/proc/{appliance.process.pid}/fd"))


@contextlib.contextmanager
def descriptors_come_back(appliance: RunningAppliance) -> Iterator[int]:
    """Yields the server's descriptor count before; checks it gets back there after."""
    assert answers(appliance)  # the server's own connections (database, ...) are open
    before = descriptors(appliance)
    yield before
    eventually(lambda: descriptors(appliance) <= before, timeout=3 * SLACK, what="descriptors back")


def test_half_requests_are_closed_at_the_header_deadline(appliance: RunningAppliance) -> None:
    with descriptors_come_back(appliance):
        clients = [connect(appliance) for _ in range(20)]
        try:
            for tls in clients:
                tls.sendall(b"GET /appliance/login HTTP/1.1\r\nHost: x\r\n")  # no blank line
            assert answers(appliance)
            started = time.monotonic()
            for tls in clients:
                assert ended_within(tls, DEADLINE + SLACK - (time.monotonic() - started))
        finally:
            for tls in clients:
                tls.close()


def test_a_header_that_trickles_in_is_closed_at_its_deadline_all_the_same(
    appliance: RunningAppliance,
) -> None:
    """Data arriving does not extend the header's deadline (slowloris)."""
    with descriptors_come_back(appliance), connect(appliance) as tls:
        started = time.monotonic()
        tls.sendall(b"GET /appliance/login HTTP/1.1\r\n")
        ended = False
        while not ended and time.monotonic() - started < DEADLINE + SLACK:
            try:
                tls.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            if select.select([tls], [], [], 0.2)[0]:
                ended = ended_within(tls, 0.1)
        assert time.monotonic() - started < DEADLINE + SLACK


def test_a_body_that_stops_arriving_is_closed_at_the_body_deadline(
    appliance: RunningAppliance,
) -> None:
    with descriptors_come_back(appliance), connect(appliance) as tls:
        tls.sendall(
            b"POST /appliance/login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
            b"username=a"
        )
        assert answers(appliance)
        assert ended_within(tls, DEADLINE + SLACK)


def test_garbage_inside_tls_is_answered_400_at_once(appliance: RunningAppliance) -> None:
    """Bytes that cannot begin a request get their 400 without waiting for a line's end
    (the answer comes, so it is not the header deadline that ended them)."""
    noise = random.Random(13)
    samples = [noise.randbytes(300) for _ in range(20)]
    samples += [b"R\n", b"GET\x00/ HTTP/1.1", b"GET / HTTP/1.1x", b"hello world, how are you"]
    with descriptors_come_back(appliance):
        for sample in samples:
            with connect(appliance) as tls:
                tls.sendall(sample)
                answer = read_to_end(tls, timeout=DEADLINE + SLACK)
                assert answer.startswith(b"HTTP/1.1 400 "), (sample, answer)
        assert answers(appliance)


def test_a_request_header_over_16_kib_is_answered_431_however_it_arrives(
    appliance: RunningAppliance,
) -> None:
    """nginx refuses a header too long for its buffers; so does certgate, whether the
    header comes in pieces or in one read (h11 alone took a 100 KB one whole), with a
    problem document naming the limit."""
    line = b"X-Pad: " + b"a" * 90 + b"\r\n"
    large = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n" + line * 1000 + b"\r\n"
    small = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n" + line * 80 + b"\r\n"
    with descriptors_come_back(appliance):
        for request, status in ((large, b"431"), (small, b"200")):
            with connect(appliance) as tls:
                tls.sendall(request)  # 100 KB: several records, read by Python at once
                answer = read_to_end(tls, timeout=DEADLINE + SLACK)
                assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
            if status == b"431":
                head, _, body = answer.partition(b"\r\n\r\n")
                assert b"content-type: application/problem+json" in head.lower()
                assert json.loads(body)["type"].endswith("/header-too-large")
                assert b"16 KiB" in body
        assert answers(appliance)


def test_unread_pipelined_responses_are_cut_at_the_send_deadline(
    appliance: RunningAppliance,
) -> None:
    request = f"GET /api/v1/openapi.json HTTP/1.1\r\nHost: {appliance.address}\r\n\r\n".encode()
    with descriptors_come_back(appliance) as before:
        clients = [connect(appliance) for _ in range(5)]
        try:
            for tls in clients:
                tls.sendall(request * 64)  # and never reads
            assert answers(appliance)
            # The server lets them go: its descriptors come back with the clients still open.
            eventually(lambda: descriptors(appliance) <= before, timeout=DEADLINE + SLACK)
        finally:
            for tls in clients:
                tls.close()


def test_an_idle_connection_is_closed_at_the_keepalive_deadline(
    appliance: RunningAppliance,
) -> None:
    with descriptors_come_back(appliance), connect(appliance) as tls:
        tls.sendall(b"GET /appliance/login HTTP/1.1\r\nHost: x\r\n\r\n")
        tls.settimeout(10)
        assert tls.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert ended_within(tls, DEADLINE + SLACK)


@pytest.mark.parametrize("page", ["/appliance/status", "/api/v1/status"])
def test_a_fin_right_after_a_request_still_gets_the_response(
    appliance: RunningAppliance, page: str
) -> None:
    """The client's TCP FIN (no close_notify) ends its input only: the page, which takes
    the server a database round trip and a template, is still sent whole."""
    token = json.loads(
        run_cli(appliance.data_dir, "token", "create", "--name", "fin", "--json").stdout
    )["token"]
    authorization = f"Authorization: Bearer {token}"
    with httpx.Client(verify=client_context(), timeout=10) as client:  # the database pool warms
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get(appliance.base_url + page, headers=headers).status_code == 200
    with descriptors_come_back(appliance):
        for _ in range(5):
            with connect(appliance) as tls:
                tls.sendall(f"GET {page} HTTP/1.1\r\nHost: x\r\n{authorization}\r\n\r\n".encode())
                with socket.fromfd(tls.fileno(), socket.AF_INET, socket.SOCK_STREAM) as same:
                    same.shutdown(socket.SHUT_WR)
                answer = read_to_end(tls)
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 "), answer[:200]
                length = next(
                    int(line.split(b":")[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                )
                assert len(body) == length


# --- stopping ----------------------------------------------------------------------------------


def _serve(data_dir: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    log = (data_dir / "serve-again.log").open("w")
    return subprocess.Popen(
        [CERTGATE, "serve", "--https-port", str(port), *options],
        env={**os.environ, "CERTGATE_DATA_DIR": str(data_dir)},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_ends_within_its_grace_whatever_the_clients_do(
    tmp_path: Path, workers: str
) -> None:
    """Clients that never read, a half request, an idle keep-alive connection: SIGTERM stops
    accepting at once, the process exits within the grace, and a new serve starts at once."""
    grace = 2.0
    settings = ("--send-timeout", "600", "--header-timeout", "600", "--keepalive-timeout", "600")
    with running_appliance(
        tmp_path / "data",
        address="127.0.0.14",
        serve_options=("--workers", workers),
        tls_settings=(*settings, "--shutdown-grace", str(grace)),
    ) as running:
        request = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
        holding = [connect(running) for _ in range(6)]
        for index, tls in enumerate(holding):
            if index % 3 == 0:
                tls.sendall(request * 64)  # never reads
            elif index % 3 == 1:
                tls.sendall(b"GET / HTTP/1.1\r\n")  # half a request
            else:
                tls.sendall(request)  # then idles
                tls.settimeout(10)
                assert tls.recv(100).startswith(b"HTTP/1.1 200 ")
        stopped = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        eventually(lambda: refused(running), timeout=grace, what="no longer accepting")
        assert running.process.wait(timeout=grace + SLACK + 5) == 0
        assert time.monotonic() - stopped < grace + SLACK + 5
        for tls in holding:
            tls.close()
        again = _serve(running.data_dir, running.port)
        try:
            wait_for_tls(running.address, running.port)  # the lock was released
        finally:
            again.terminate()
            assert again.wait(timeout=grace + SLACK) == 0


def _whole_responses(data: bytes) -> int:
    """How many HTTP responses ``data`` holds; fails if it ends inside one."""
    count = 0
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        assert separator and head.startswith(b"HTTP/1.1 200 "), data[:200]
        length = next(
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        assert len(rest) >= length, f"response {count + 1} cut short"
        data = rest[length:]
        count += 1
    return count


def test_requests_in_flight_at_sigterm_are_answered_whole(tmp_path: Path) -> None:
    """A client in the middle of pipelined responses when SIGTERM arrives: the response in
    flight is finished (never cut), then its connection closes, and serve exits."""
    grace = 10.0
    with running_appliance(
        tmp_path / "data",
        address="127.0.0.16",
        tls_settings=("--shutdown-grace", str(grace)),
    ) as running:
        tls = connect(running)
        tls.sendall(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 64)
        started = tls.recv(65536)  # the answers have begun
        running.process.send_signal(signal.SIGTERM)
        received = bytearray(started)
        tls.settimeout(grace + SLACK)
        with contextlib.suppress(ConnectionResetError, ssl.SSLEOFError):
            while chunk := tls.recv(16384):  # a slow reader: the stop finds responses in flight
                received += chunk
                time.sleep(0.002)
        assert 1 <= _whole_responses(bytes(received)) <= 64
        assert running.process.wait(timeout=grace + SLACK) == 0


# --- descriptors ----------------------------------------------------------------------------


def serve_with_descriptors(data_dir: Path, address: str, port: int, limit: int) -> RunningAppliance:
    """``certgate serve`` on ``port`` with a hard descriptor limit of ``limit`` (soft: half)."""

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit // 2, limit))

    with (data_dir / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [CERTGATE, "serve", "--https-port", str(port)],
            env={**os.environ, "CERTGATE_DATA_DIR": str(data_dir)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=limited,
        )
    return RunningAppliance(data_dir, address, port, "", process)


def hold_half_requests(running: RunningAppliance) -> list[ssl.SSLSocket]:
    """Half requests until the server takes no more (or 30: each holds three of its
    descriptors, more than enough)."""
    clients: list[ssl.SSLSocket] = []
    for _ in range(30):
        try:
            tls = connect(running, timeout=2)
            tls.sendall(b"GET / HTTP/1.1\r\n")
            clients.append(tls)
        except OSError:
            break
    return clients


def test_running_out_of_descriptors_is_logged_and_survived(tmp_path: Path) -> None:
    """The soft descriptor limit is raised to the hard one at start; when even that runs out,
    the server says so as nginx does, keeps answering once the holders are let go, and does
    not spin meanwhile."""
    data_dir = tmp_path / "data"
    address = "127.0.0.15"
    run_cli(data_dir, "init", "--no-address")
    run_cli(data_dir, "ip", "add", address)
    header = 5.0  # long enough for all the clients to connect before the first is let go
    run_cli(data_dir, "tls", "set", "--header-timeout", str(header))
    port = free_port()
    limit = 64  # about 25 in use when idle
    running = serve_with_descriptors(data_dir, address, port, limit)
    process = running.process
    clients: list[ssl.SSLSocket] = []
    try:
        wait_for_tls(address, port)
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
        assert line.split()[3:5] == [str(limit), str(limit)]
        clients = hold_half_requests(running)
        # The front end fails to accept, or to make a connection's socket pair, whichever
        # comes first; either is logged in nginx's words.
        eventually(
            lambda: re.search(
                r"(accept|socketpair)\(\) failed \(24: Too many open files\)", running.log_text()
            ),
            timeout=10,
        )
        eventually(lambda: answers(running), timeout=header + SLACK)
    finally:
        for tls in clients:
            tls.close()
        process.terminate()
        assert process.wait(timeout=30) == 0


def test_an_address_added_while_out_of_descriptors_waits_and_the_others_serve_on(
    tmp_path: Path,
) -> None:
    """A commit that adds an address while every descriptor is held (a flood of clients):
    its listener cannot be made now; serve said "internal error" and exited, taking every
    address down. It is bound once descriptors are free again."""
    data_dir = tmp_path / "data"
    first, second = "127.0.0.16", "127.0.0.17"
    run_cli(data_dir, "init", "--no-address")
    run_cli(data_dir, "ip", "add", first)
    port = free_port()
    running = serve_with_descriptors(data_dir, first, port, 64)
    process = running.process
    clients: list[ssl.SSLSocket] = []
    try:
        wait_for_tls(first, port)
        clients = hold_half_requests(running)  # held for the header deadline (60 s)
        eventually(lambda: "(24: Too many open files)" in running.log_text(), timeout=10)
        run_cli(data_dir, "ip", "add", second)
        seen = (  # the new address cannot be bound, or the store cannot even be read
            f"cannot listen on {second}:{port}: Too many open files",
            "keeping the current listeners",
        )
        eventually(
            lambda: process.poll() is not None or any(s in running.log_text() for s in seen),
            timeout=10,
            what="the commit seen",
        )
        assert process.poll() is None, running.log_text()
        for tls in clients:
            tls.close()
        wait_for_tls(second, port)
        wait_for_tls(first, port)
    finally:
        for tls in clients:
            tls.close()
        process.terminate()
        assert process.wait(timeout=30) == 0
