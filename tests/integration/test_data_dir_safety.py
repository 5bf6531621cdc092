"""No operator action destroys keys, and nothing in the data directory is open to others.

Without ``master.key`` every command says the master key is missing and ``init`` refuses to
make a new one beside sealed keys (which it would make unreadable for good); an unusable
master key or database is named with what to do, never "internal error"; whoever made the
data directory and whatever the umask, it ends up 0700 and every file in it 0600."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import Engine, event

from certgate.errors import StoreUnavailableError
from certgate.service import certificates, imports
from certgate.service.appliance import Appliance
from tests.integration.conftest import CERTGATE, Certgate, Run
from tests.support.net import free_port
from tests.support.pki import issue, name, new_key, pem
from tests.support.polling import eventually
from tests.support.server import wait_for_tls

#: Root may write any file: without CAP_DAC_OVERRIDE it obeys the modes like anyone else.
AS_A_USER = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
)
#: Commands of every kind (reads, writes, serve): each must name the missing master key.
COMMANDS = [
    ["cert", "list"],
    ["cert", "export", "1", "--key", "--unencrypted-private-key", "-o", "out.p12"],
    ["ip", "add", "127.0.0.9"],
    ["tls", "show"],
    ["user", "list"],
    ["status"],
    ["serve"],
]


def _single_error(run: Run) -> str:
    assert run.returncode == 1, run
    [line] = run.error_lines
    assert line.startswith("error: "), run.stderr
    return line


def _certgate(data_dir: Path, database_url: str | None) -> Callable[..., Run]:
    runner = Certgate(data_dir, subprocess=False)
    env = {"CERTGATE_DATABASE_URL": database_url} if database_url else {}
    return lambda *args, expect=0: runner(*args, expect=expect, env=env)


def test_without_its_master_key_every_command_says_so_and_init_refuses_a_new_one(
    tmp_path: Path, database_url: str | None
) -> None:
    data_dir = tmp_path / "data"
    certgate = _certgate(data_dir, database_url)
    certgate("init")
    master_key = data_dir / "master.key"
    kept = tmp_path / "master.key.backup"
    shutil.move(master_key, kept)
    for command in COMMANDS:
        line = _single_error(certgate(*command, expect=None))
        assert f"the master key file {master_key} is missing" in line, (command, line)
        assert "from your backup" in line, line
    refused = _single_error(certgate("init", expect=None))
    assert "'certgate init' will not make a new one" in refused
    assert not master_key.exists()
    shutil.move(kept, master_key)  # put back, every key opens again
    out = tmp_path / "factory.p12"
    certgate("cert", "export", "1", "--key", "--unencrypted-private-key", "-o", out)
    key, _, _ = pkcs12.load_key_and_certificates(out.read_bytes(), None)
    assert key is not None


def _master_key_is_a_directory(data_dir: Path) -> None:
    (data_dir / "master.key").unlink()
    (data_dir / "master.key").mkdir()


def _master_key_is_short(data_dir: Path) -> None:
    path = data_dir / "master.key"
    path.write_bytes(path.read_bytes()[:31])


def _master_key_is_open_to_others(data_dir: Path) -> None:
    (data_dir / "master.key").chmod(0o644)


def _database_is_damaged(data_dir: Path) -> None:
    (data_dir / "certgate.db").write_bytes(b"\x00certgate damaged\x00" * 512)


def _database_is_read_only(data_dir: Path) -> None:
    (data_dir / "certgate.db").chmod(0o400)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_master_key_is_a_directory, "the master key {dir}/master.key is a directory"),
        (_master_key_is_short, "the master key file {dir}/master.key is damaged"),
        (_master_key_is_open_to_others, "run 'chmod 600 {dir}/master.key'"),
        (_database_is_damaged, "the database {dir}/certgate.db is damaged"),
        (_database_is_read_only, "the database {dir}/certgate.db is read-only"),
    ],
)
def test_an_unusable_master_key_or_database_is_named_with_what_to_do(
    initialised_template: Path, tmp_path: Path, damage: Callable[[Path], None], says: str
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(initialised_template, data_dir)
    damage(data_dir)
    done = as_a_user(data_dir, "ip", "add", "127.0.0.9")
    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    assert says.format(dir=data_dir) in line, line
    assert "internal error" not in line


def _modes(data_dir: Path) -> dict[str, str]:
    return {
        path.name: oct(stat.S_IMODE(path.stat().st_mode))
        for path in [data_dir, *data_dir.iterdir()]
    }


def test_the_data_directory_is_private_whoever_made_it(tmp_path: Path) -> None:
    """``mkdir -m 755 d; certgate init`` under umask 022, then a running serve (SQLite's
    -wal and -shm files, the status file, the lock): nothing readable by others."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    env = {**os.environ, "CERTGATE_DATA_DIR": str(data_dir)}

    def run(*args: str) -> None:
        subprocess.run(
            [str(CERTGATE), *args], env=env, check=True, capture_output=True, umask=0o022
        )

    run("init")
    run("ip", "add", "127.0.0.2")
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    serving = subprocess.Popen(
        [str(CERTGATE), "serve", "--https-port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        umask=0o022,
    )
    try:
        wait_for_tls("127.0.0.2", port)
        eventually(lambda: (data_dir / "listeners.json").exists())
        present = _modes(data_dir)
    finally:
        serving.send_signal(signal.SIGTERM)
        serving.wait(timeout=30)
        log.close()
    expected = {"certgate.db-wal", "certgate.db-shm", "listeners.json", "serve.lock"}
    assert expected <= set(present), present
    assert present == {name: ("0o700" if name == "data" else "0o600") for name in present}, present


def test_init_where_it_cannot_write_names_the_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    locked.chmod(0o500)
    for data_dir in (locked, locked / "data"):
        done = as_a_user(data_dir, "init")
        assert done.returncode == 1, done
        [line] = done.stderr.splitlines()
        assert f"error: cannot make the data directory {data_dir}" in line, line
        assert "Permission denied" in line


def test_a_read_only_postgresql_store_is_named_with_what_to_do(
    tmp_path: Path, postgresql_url: str
) -> None:
    data_dir = tmp_path / "data"
    _certgate(data_dir, postgresql_url)("init")
    read_only = postgresql_url + "%20-cdefault_transaction_read_only%3Don"
    line = _single_error(_certgate(data_dir, read_only)("ip", "add", "127.0.0.9", expect=None))
    assert "is read-only (cannot execute INSERT in a read-only transaction)" in line, line
    assert "give certgate's database role write access" in line


def as_a_user(data_dir: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``certgate`` run on ``data_dir`` obeying the files' modes (``AS_A_USER``)."""
    return _run(data_dir, args, AS_A_USER)


def with_file_size_limit(
    limit: int, data_dir: Path, *args: str | Path
) -> subprocess.CompletedProcess[str]:
    """``certgate`` run where no file may grow past ``limit`` bytes: its writes then fail as
    on a full disk (with "File too large")."""

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return _run(data_dir, args, [], limited)


def _run(
    data_dir: Path,
    args: tuple[str | Path, ...],
    prefix: list[str],
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, str(CERTGATE), *map(str, args)],
        env={**os.environ, "CERTGATE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=preexec_fn,
    )


def _leaves(count: int) -> bytes:
    key = new_key()
    root = issue(name("Full Root"), key.public_key(), name("Full Root"), key, ca=True)
    return pem(root) + b"".join(
        pem(issue(name(f"h{index}.test"), key.public_key(), root.subject, key, ca=False))
        for index in range(count)
    )


def test_a_store_that_cannot_be_written_any_more_says_so_and_keeps_what_it_had(
    initialised_template: Path, tmp_path: Path
) -> None:
    """The disk refuses the write (here: a file size limit, as a full or failing disk would):
    the import says what to look at, not only SQLite's "disk I/O error", and nothing of it
    is stored."""
    data_dir = tmp_path / "data"
    shutil.copytree(initialised_template, data_dir)
    bundle = tmp_path / "many.pem"
    bundle.write_bytes(_leaves(300))

    done = with_file_size_limit(64 * 1024, data_dir, "cert", "import", bundle)
    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    assert f"the database {data_dir}/certgate.db could not be written or read (disk I/O" in line
    assert "check the disk that holds it (full, failing, or a file size limit)" in line, line
    listed = Certgate(data_dir, subprocess=False)("cert", "list", "--json")
    assert len(json.loads(listed.stdout)) == 1  # the factory certificate alone


def test_a_full_store_says_so_and_keeps_what_it_had(
    initialised_template: Path, tmp_path: Path
) -> None:
    """SQLite's "database or disk is full" (here: the file may grow no more): named with what
    to do, and the import left nothing behind."""
    data_dir = tmp_path / "data"
    shutil.copytree(initialised_template, data_dir)

    def no_more_pages(connection: Any, _record: Any) -> None:
        [pages] = connection.execute("PRAGMA page_count").fetchone()
        connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(Engine, "connect", no_more_pages)
    try:
        full = Appliance.open(data_dir, None)
        try:
            with pytest.raises(StoreUnavailableError) as refused:
                imports.import_files(full, [("many.pem", _leaves(300))])
        finally:
            full.close()
    finally:
        event.remove(Engine, "connect", no_more_pages)
    said = str(refused.value)
    assert "certgate.db is full (database or disk is full)" in said, said
    assert "free space on the disk that holds it" in said, said
    app = Appliance.open(data_dir, None)
    try:
        assert len(certificates.list_certificates(app)) == 1  # the factory certificate alone
    finally:
        app.close()


@pytest.mark.parametrize(
    "command",
    [
        ["cert", "export", "1", "--key", "--unencrypted-private-key"],
        ["support-package"],
    ],
    ids=["cert-export", "support-package"],
)
def test_a_file_the_audit_trail_cannot_record_is_not_written(
    certgate: Certgate, tmp_path: Path, command: list[str]
) -> None:
    """A read-only store: the export (a private key in it) or the support package could not
    be recorded in the audit trail, and said so, yet it was written, over the file already at
    that path. Recorded before it is written, as a backup is: refused, the file stays."""
    out = tmp_path / "out" / "file"
    out.parent.mkdir(mode=0o777)
    out.parent.chmod(0o777)
    out.write_bytes(b"the file of yesterday")
    out.chmod(0o666)
    (certgate.data_dir / "certgate.db").chmod(0o400)

    done = as_a_user(certgate.data_dir, *command, "-o", out)

    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    assert "is read-only" in line, line
    assert out.read_bytes() == b"the file of yesterday"
    assert [path.name for path in out.parent.iterdir()] == [out.name]
