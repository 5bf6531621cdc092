"""Start a real ``certgate serve`` process on a loopback address for end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certgate.store.sealing import MASTER_KEY_FILE
from tests.support.net import free_port
from tests.support.pki import TestChain, fingerprint, pem
from tests.support.polling import eventually
from tests.support.served import handshake_succeeds

CERTGATE = str(Path(sys.executable).with_name("certgate"))


def run_cli(
    data_dir: Path, *args: str, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CERTGATE_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        [CERTGATE, *args],
        env=environment,
        capture_output=True,
        text=True,
        check=check,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@dataclass
class RunningAppliance:
    data_dir: Path
    address: str
    port: int
    admin_password: str
    process: subprocess.Popen[bytes]
    database_url: str | None = None

    @property
    def env(self) -> dict[str, str]:
        """What ``run_cli`` needs besides the data directory to reach the same store."""
        return {"CERTGATE_DATABASE_URL": self.database_url} if self.database_url else {}

    @property
    def log_path(self) -> Path:
        return self.data_dir / "serve.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def base_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"https://{host}:{self.port}"


def import_with_key(
    running: RunningAppliance, tmp_path: Path, chain: TestChain, *, with_chain: bool = False
) -> int:
    """Import ``chain``'s leaf with its private key (``with_chain``: and its intermediate and
    root) through the CLI; returns the leaf's id."""
    bundle = tmp_path / "site.pem"
    bundle.write_bytes(pem(chain.leaf, *(chain.chain if with_chain else ()), chain.leaf_key))
    imported = run_cli(running.data_dir, "cert", "import", str(bundle), "--json", **running.env)
    entries = json.loads(imported.stdout)["entries"]
    leaf = fingerprint(chain.leaf)
    [certificate] = [entry for entry in entries if entry["fingerprint_sha256"] == leaf]
    return int(certificate["id"])


def node_list(running: RunningAppliance) -> dict[str, dict[str, Any]]:
    """``certgate node list --json`` on ``running``'s store: each node's document by name."""
    listed = json.loads(run_cli(running.data_dir, "node", "list", "--json", **running.env).stdout)
    return {node["name"]: node for node in listed}


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if it has not ended within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_tls(address: str, port: int, timeout: float = 20.0) -> None:
    """Until a TLS handshake with ``address:port`` succeeds (the server has started)."""
    eventually(
        lambda: handshake_succeeds(address, port, timeout=1),
        timeout=timeout,
        what=f"certgate serve listens on {address}:{port}",
    )


@contextmanager
def running_appliance(
    data_dir: Path,
    address: str = "127.0.0.2",
    admin_password: str = "correct horse battery",
    serve_options: tuple[str, ...] = (),
    database_url: str | None = None,
    tls_settings: tuple[str, ...] = (),
    first_start: bool = False,
    port: int | None = None,
) -> Iterator[RunningAppliance]:
    """``certgate init`` + ``ip add ADDRESS`` (+ ``tls set TLS_SETTINGS``) + ``serve`` on a
    free port (or ``port``); stopped with SIGTERM.

    ``database_url``: the store (PostgreSQL) instead of the SQLite file of ``data_dir``.
    ``first_start``: no ``ip add``; ``certgate init`` configures the address (127.0.0.1).
    """
    database = {"CERTGATE_DATABASE_URL": database_url} if database_url else {}
    if first_start:  # what a new administrator does: init configures 127.0.0.1 itself
        run_cli(data_dir, "init", CERTGATE_ADMIN_PASSWORD=admin_password, **database)
    else:
        run_cli(
            data_dir, "init", "--no-address", CERTGATE_ADMIN_PASSWORD=admin_password, **database
        )
        run_cli(data_dir, "ip", "add", address, check=False, **database)
    if tls_settings:
        run_cli(data_dir, "tls", "set", *tls_settings, **database)
    with serving(data_dir, address, admin_password, serve_options, database_url, port) as running:
        yield running


@contextmanager
def joined_node(
    first: RunningAppliance,
    data_dir: Path,
    serve_options: tuple[str, ...] = (),
    database_url: str | None = None,
) -> Iterator[RunningAppliance]:
    """A second node of ``first``'s cluster, joined as an administrator does (a copy of
    ``first``'s master key, ``certgate init --join``), serving the same PostgreSQL store on
    a port of its own (``database_url``: reaching it another way, as another role, say)."""
    assert first.database_url, "nodes share a PostgreSQL store"
    copied = data_dir.with_name(data_dir.name + ".master.key")
    copied.write_bytes((first.data_dir / MASTER_KEY_FILE).read_bytes())
    copied.chmod(0o600)
    url = database_url or first.database_url
    join = ("init", "--join", "--master-key-file", str(copied))
    run_cli(data_dir, *join, CERTGATE_DATABASE_URL=url)
    copied.unlink()
    with serving(data_dir, first.address, first.admin_password, serve_options, url) as running:
        yield running


NODE_A, NODE_B = ("--node", "node-a"), ("--node", "node-b")


@contextmanager
def two_nodes(
    directory: Path, database_url: str
) -> Iterator[tuple[RunningAppliance, RunningAppliance]]:
    """Nodes ``node-a`` (``directory``/a, which initialised the store) and ``node-b``
    (``directory``/b, joined to it), both serving 127.0.0.2 from one PostgreSQL store."""
    with (
        running_appliance(
            directory / "a", "127.0.0.2", database_url=database_url, serve_options=NODE_A
        ) as a,
        joined_node(a, directory / "b", serve_options=NODE_B) as b,
    ):
        yield a, b


@contextmanager
def serving(
    data_dir: Path,
    address: str,
    admin_password: str,
    serve_options: tuple[str, ...] = (),
    database_url: str | None = None,
    port: int | None = None,
) -> Iterator[RunningAppliance]:
    """``certgate serve`` on an initialised data directory, on a free port (or ``port``),
    until SIGTERM."""
    database = {"CERTGATE_DATABASE_URL": database_url} if database_url else {}
    port = port or free_port()
    # The server's log goes to a file: a pipe nobody reads would stall a chatty server.
    log = (data_dir / "serve.log").open("w")
    process = subprocess.Popen(
        [CERTGATE, "serve", "--https-port", str(port), *serve_options],
        env={**os.environ, "CERTGATE_DATA_DIR": str(data_dir), **database},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_tls(address, port)
        yield RunningAppliance(data_dir, address, port, admin_password, process, database_url)
    finally:
        stop(process)
        log.close()
