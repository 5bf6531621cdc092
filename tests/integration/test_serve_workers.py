"""`certgate serve --workers N`: several processes serve every address (SO_REUSEPORT), all
follow each commit, a dead worker is replaced, and one data directory has one `serve`."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.pki import make_chain
from tests.support.polling import eventually
from tests.support.served import client_context, handshake
from tests.support.server import (
    CERTGATE,
    RunningAppliance,
    import_with_key,
    run_cli,
    running_appliance,
)

ADDRESS = "127.0.0.2"


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[RunningAppliance]:
    with running_appliance(tmp_path / "data", ADDRESS, serve_options=("--workers", "2")) as app:
        eventually(lambda: len(worker_pids(app)) == 2, timeout=20)
        eventually(lambda: listening_sockets(ADDRESS, app.port) == 2, timeout=20)
        yield app


def worker_pids(app: RunningAppliance) -> list[int]:
    """The worker processes of the supervisor ``app.process``."""
    children = Path(f"/proc/{app.process.pid}/task/{app.process.pid}/children")
    try:
        return [int(pid) for pid in children.read_text().split()]
    except FileNotFoundError:
        return []


def listening_sockets(address: str, port: int) -> int:
    """How many sockets listen on ``address:port`` (one per worker with SO_REUSEPORT)."""
    packed = socket.inet_aton(address)[::-1].hex().upper()
    wanted = f"{packed}:{port:04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
            count += 1
    return count


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not serving either.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_every_worker_serves_each_committed_assignment(
    two_workers: RunningAppliance, tmp_path: Path
) -> None:
    assert handshake(ADDRESS, two_workers.port).common_name == "certgate Appliance"
    site = import_with_key(two_workers, tmp_path, make_chain("workers.example.test"))
    run_cli(two_workers.data_dir, "ip", "assign", ADDRESS, "--cert", str(site), "--confirm")
    # Connections are spread over the workers by the kernel: 40 in a row reach both of
    # them (all on one would happen with probability 2**-39), and every one has the new leaf.
    eventually(
        lambda: (
            {handshake(ADDRESS, two_workers.port).common_name for _ in range(40)}
            == {"workers.example.test"}
        )
    )
    assert "certgate serve: 2 worker processes" in run_cli(two_workers.data_dir, "status").stdout


def test_a_killed_worker_is_replaced_and_the_address_keeps_answering(
    two_workers: RunningAppliance,
) -> None:
    victim = worker_pids(two_workers)[1]
    os.kill(victim, signal.SIGKILL)
    eventually(
        lambda: len(worker_pids(two_workers)) == 2 and victim not in worker_pids(two_workers),
        timeout=20,
    )
    eventually(lambda: listening_sockets(ADDRESS, two_workers.port) == 2, timeout=20)
    assert all(
        handshake(ADDRESS, two_workers.port).common_name == "certgate Appliance" for _ in range(20)
    )
    assert f"worker 1 (process {victim}) was killed by signal 9; restarting" in (
        two_workers.log_text()
    )


def test_sigterm_stops_every_worker_and_frees_the_data_directory(
    two_workers: RunningAppliance,
) -> None:
    workers = worker_pids(two_workers)
    two_workers.process.send_signal(signal.SIGTERM)
    assert two_workers.process.wait(timeout=20) == 0
    assert not any(alive(pid) for pid in workers)
    assert listening_sockets(ADDRESS, two_workers.port) == 0
    assert not (two_workers.data_dir / "listeners.json").exists()
    status = run_cli(two_workers.data_dir, "status")
    assert "No 'certgate serve' is running" in status.stdout


REREAD = "SIGHUP: reading the store again"


def test_sighup_rereads_the_store_in_every_worker_and_stops_nothing(
    two_workers: RunningAppliance,
) -> None:
    """As nginx takes it (and as a closed terminal or a log rotation sends it): no stop."""
    workers = worker_pids(two_workers)
    two_workers.process.send_signal(signal.SIGHUP)
    eventually(lambda: two_workers.log_text().count(REREAD) == 2, timeout=20)
    assert two_workers.process.poll() is None and worker_pids(two_workers) == workers
    assert handshake(ADDRESS, two_workers.port).common_name == "certgate Appliance"


def test_sighup_does_not_stop_a_single_process_serve(tmp_path: Path) -> None:
    with running_appliance(tmp_path / "data", ADDRESS) as running:
        running.process.send_signal(signal.SIGHUP)
        eventually(lambda: REREAD in running.log_text(), timeout=20)
        assert running.process.poll() is None
        assert handshake(ADDRESS, running.port).common_name == "certgate Appliance"


def test_workers_stop_by_themselves_when_their_supervisor_is_killed(
    two_workers: RunningAppliance,
) -> None:
    workers = worker_pids(two_workers)
    two_workers.process.kill()
    two_workers.process.wait()
    eventually(lambda: not any(alive(pid) for pid in workers), timeout=10)
    eventually(lambda: listening_sockets(ADDRESS, two_workers.port) == 0)


def _workers_of(data_dir: Path) -> list[int]:
    """Worker processes of a ``certgate serve`` on ``data_dir``, wherever their parent is."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            environment = (entry / "environ").read_bytes()
        except (OSError, ValueError):
            continue
        if b"--worker-index" in command and f"CERTGATE_DATA_DIR={data_dir}".encode() in (
            environment
        ):
            found.append(int(entry.name))
    return [pid for pid in found if alive(pid)]


@pytest.mark.parametrize("after", [0.3, 1.0])
def test_workers_stop_when_the_supervisor_is_killed_while_they_start(
    tmp_path: Path, after: float
) -> None:
    data_dir = tmp_path / "data"
    run_cli(data_dir, "init", "--no-address")
    run_cli(data_dir, "ip", "add", ADDRESS)
    supervisor = subprocess.Popen(
        [CERTGATE, "serve", "--https-port", str(free_port()), "--workers", "2"],
        env={**os.environ, "CERTGATE_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(after)
    supervisor.kill()
    supervisor.wait()
    eventually(lambda: not _workers_of(data_dir), timeout=20)


def test_a_second_serve_on_the_same_data_directory_is_refused(
    two_workers: RunningAppliance,
) -> None:
    second = run_cli(
        two_workers.data_dir,
        "serve",
        "--https-port",
        str(free_port()),
        "--workers",
        "2",
        check=False,
    )
    assert second.returncode == 1
    assert (
        f"certgate serve is already running on {two_workers.data_dir} "
        f"(process {two_workers.process.pid})" in second.stderr
    )
    assert "Traceback" not in second.stderr
    assert handshake(ADDRESS, two_workers.port).common_name == "certgate Appliance"  # untouched


def test_the_worker_option_is_only_for_the_supervisor(tmp_path: Path) -> None:
    run_cli(tmp_path, "init", "--no-address")
    result = run_cli(tmp_path, "serve", "--worker-index", "0", check=False)
    assert result.returncode == 2
    assert "--worker-index is for the workers 'certgate serve' starts" in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "many", "257"])
def test_a_bad_worker_count_is_refused(tmp_path: Path, value: str) -> None:
    run_cli(tmp_path, "init", "--no-address")
    result = run_cli(tmp_path, "serve", "--workers", value, check=False)
    assert result.returncode == 2
    assert "is not a number of workers from 1 to 256, nor 'auto'" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_on_postgresql_follow_commits_from_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgresql_url: str
) -> None:
    monkeypatch.setenv("CERTGATE_DATABASE_URL", postgresql_url)
    with running_appliance(tmp_path / "data", ADDRESS, serve_options=("--workers", "2")) as app:
        eventually(lambda: listening_sockets(ADDRESS, app.port) == 2, timeout=20)
        site = import_with_key(app, tmp_path, make_chain("postgres.example.test"))
        run_cli(app.data_dir, "ip", "assign", ADDRESS, "--cert", str(site), "--confirm")
        eventually(
            lambda: (
                {handshake(ADDRESS, app.port).common_name for _ in range(40)}
                == {"postgres.example.test"}
            )
        )
        assert "cannot read the store's revision" not in app.log_text()


def _serving_worker(tls: socket.socket, pids: list[int]) -> int:
    """Which worker holds the server end of the client connection ``tls`` (looked for again
    for a while: on a loaded machine /proc may show the server end a moment late)."""
    return eventually(lambda: _holders(tls, pids), timeout=5, what="the connection's worker")[0]


def _holders(tls: socket.socket, pids: list[int]) -> list[int]:
    client_ip, client_port = tls.getsockname()[:2]
    remote = f"{socket.inet_aton(client_ip)[::-1].hex().upper()}:{client_port:04X}"
    inodes = {
        fields[9]
        for fields in (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
        if fields[2] == remote
    }
    holders: list[int] = []
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in {f"socket:[{inode}]" for inode in inodes}:
                    holders.append(pid)
            except OSError:
                continue
    return holders


def _get(
    port: int, pids: list[int], context: ssl.SSLContext, session: ssl.SSLSession | None
) -> tuple[ssl.SSLSession | None, bool, int]:
    """One HTTPS request; the session, whether it resumed, and the worker that served it."""
    with (
        socket.create_connection((ADDRESS, port), timeout=10) as raw,
        context.wrap_socket(raw, session=session) as tls,
    ):
        # asked before the request: once it is answered the worker may already have closed
        worker = _serving_worker(tls, pids)
        tls.sendall(b"GET /appliance/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert tls.recv(12) == b"HTTP/1.1 200"
        while tls.recv(65536):  # to the end: the tickets came before it
            pass
        return tls.session, tls.session_reused, worker


def test_a_tls_1_3_session_resumes_on_every_worker(two_workers: RunningAppliance) -> None:
    """The ticket keys are derived from the master key: a ticket made by one worker opens in
    the other (connections are spread by the kernel; 30 in a row reach both workers)."""
    pids = worker_pids(two_workers)
    context = client_context()
    session, reused, first = _get(two_workers.port, pids, context, None)
    assert not reused and session is not None and session.has_ticket
    resumed_on = set()
    for _ in range(30):
        _, reused, worker = _get(two_workers.port, pids, context, session)
        assert reused
        resumed_on.add(worker)
    assert resumed_on == set(pids), (first, resumed_on)
