"""A PostgreSQL server of the test's own, so that it can be stopped and started again: the
installed server binaries (``initdb``, ``pg_ctl``) on a free port of 127.0.0.1, its data
directory and unix socket in a temporary directory, trust authentication, a database
``certgate``; and a streaming standby of it (``pg_basebackup``), promoted on failover. The
shared server of ``tests/conftest.py`` is never stopped.

``initdb`` refuses to run as root: as root (CI, the development machines) the server runs
as the ``postgres`` user that Debian's ``postgresql`` package makes (``scripts/setup --test``
installs it), in a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from tests.support.ci import missing
from tests.support.net import free_port

DATABASE = "certgate"
#: The server's own account when the tests run as root (initdb refuses root).
SERVER_USER = "postgres"
_INITDB = ("-E", "UTF8", "--no-sync", "--no-instructions")
_WAIT = ("-w", "-t", "60")  # pg_ctl waits until the server accepts connections (or is gone)


def server_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, else the
    newest ``/usr/lib/postgresql/*/bin``, else the PATH's."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            candidates.append(Path(done.stdout.strip()))
    candidates += [
        Path(found)
        for found in sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2])
        )[::-1]
    ]
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


class PostgresServer:
    """One server: ``url`` reaches its database while it runs; ``stop()`` and ``start()``."""

    def __init__(self, binaries: Path, root: Path) -> None:
        self.binaries = binaries
        self.root = root
        self.data = root / "data"
        self.socket_dir = root
        self.log = root / "server.log"
        self.port = free_port()
        self.user = _server_user()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def conninfo(self, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def initialise(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", *_INITDB)
        self.start()
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.socket_dir} -c fsync=off "
            "-c full_page_writes=off -c max_connections=100"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, *_WAIT, "start"
        )

    def replicate(self, primary: PostgresServer) -> None:
        """Become a streaming standby of ``primary`` (a copy of its data, then its WAL)."""
        source = ("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres")
        self._run("pg_basebackup", *source, "-D", str(self.data), "-R", "-c", "fast", "-N")
        self.start()

    def promote(self) -> None:
        """A standby becomes a primary (what a failover tool does when the primary is lost)."""
        self._run("pg_ctl", "-D", str(self.data), *_WAIT, "promote")

    def stop(self, mode: str = "fast") -> None:
        """``immediate``: every backend ends at once, as when the machine loses power."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, *_WAIT, "stop")

    def running(self) -> bool:
        done = self._run("pg_ctl", "-D", str(self.data), "status", check=False)
        return done.returncode == 0

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {}
        if self.user is not None:
            extra = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [str(self.binaries / program), *args],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=120,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
            **extra,
        )
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise AssertionError(f"{program} {' '.join(args)} failed: {done.stderr}\n{log}")
        return done


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        missing(f"the tests run as root and there is no {SERVER_USER!r} user for initdb")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A new PostgreSQL server with an empty database ``certgate``, removed afterwards."""
    binaries = server_binaries()
    if binaries is None:
        missing("no PostgreSQL server binaries (initdb, pg_ctl): install postgresql")
    root = Path(tempfile.mkdtemp(prefix="certgate-pg-"))
    server = PostgresServer(binaries, root)
    if server.user is not None:  # the server's own account owns its files
        os.chown(root, server.user.pw_uid, server.user.pw_gid)
    try:
        server.initialise()
        yield server
    finally:
        if server.running():
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def standby_of(primary: PostgresServer) -> Iterator[PostgresServer]:
    """A streaming replica of ``primary`` (``pg_basebackup -R``), read-only until
    ``promote()``: a PostgreSQL primary/standby pair, as a failover set-up runs one."""
    root = Path(tempfile.mkdtemp(prefix="certgate-pg-standby-"))
    server = PostgresServer(primary.binaries, root)
    if server.user is not None:
        os.chown(root, server.user.pw_uid, server.user.pw_gid)
    try:
        server.replicate(primary)
        yield server
    finally:
        if server.running():
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
