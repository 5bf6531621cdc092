"""Backup and restore: a backup taken while ``certgate serve`` runs, restored into an empty
data directory (and an empty PostgreSQL database), gives an appliance that presents the same
certificate on the same address; a wrong passphrase or a damaged file is refused and changes
nothing. The openssl-independent check is the fingerprint seen on the wire."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tarfile
from collections.abc import Callable
from contextlib import closing, nullcontext
from pathlib import Path

import pytest

from certgate.service import backup, nodes
from certgate.service.appliance import Appliance
from certgate.store.audit import APPLIANCE
from certgate.store.database import DATABASE_FILE, SCHEMA_HEAD
from certgate.store.sealing import MASTER_KEY_FILE
from certgate.store.snapshot import take_snapshot
from tests.conftest import postgresql_schema
from tests.integration.conftest import CERTGATE, Certgate
from tests.integration.test_data_dir_safety import AS_A_USER, as_a_user, with_file_size_limit
from tests.support.pki import make_chain
from tests.support.served import served_fingerprint
from tests.support.server import import_with_key, run_cli, running_appliance
from tests.support.terminal import on_a_terminal

PASSPHRASE = "backup passphrase for tests"


def _passphrase_file(directory: Path, text: str = PASSPHRASE) -> Path:
    path = directory / f"passphrase-{len(text)}"
    path.write_text(text + "\n")
    return path


def test_a_backup_taken_while_serving_restores_to_the_same_certificates_on_the_same_addresses(
    tmp_path: Path, database_url: str | None
) -> None:
    env = {"CERTGATE_DATABASE_URL": database_url} if database_url else {}
    source = tmp_path / "source"
    backup = tmp_path / "appliance.cgbackup"
    passphrase = _passphrase_file(tmp_path)
    with running_appliance(source, address="127.0.0.2", database_url=database_url) as running:
        site = import_with_key(running, tmp_path, make_chain("backed-up.example.test"))
        run_cli(source, "ip", "assign", "127.0.0.2", "--cert", str(site), "--confirm", **env)
        shown = json.loads(run_cli(source, "cert", "show", str(site), "--json", **env).stdout)
        fingerprint = shown["fingerprint_sha256"]
        assert served_fingerprint("127.0.0.2", running.port) == fingerprint
        made = run_cli(
            source,
            "backup",
            "-o",
            str(backup),
            "--passphrase-file",
            str(passphrase),
            "--json",
            **env,
        )
        assert json.loads(made.stdout)["certificates"] == 2
        assert running.process.poll() is None  # serve ran on, undisturbed
        assert served_fingerprint("127.0.0.2", running.port) == fingerprint
        listed = json.loads(run_cli(source, "cert", "list", "--json", **env).stdout)
        audited = run_cli(source, "audit", "list", "--action", "appliance.backup", "--json", **env)
        [event] = json.loads(audited.stdout)["events"]
        assert event["target"] == str(backup)
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    assert b"PRIVATE KEY" not in backup.read_bytes()

    target = tmp_path / "restored"
    with postgresql_schema() if database_url else nullcontext() as target_url:
        target_env = {"CERTGATE_DATABASE_URL": target_url} if target_url else {}
        restored = run_cli(
            target, "restore", str(backup), "--passphrase-file", str(passphrase), **target_env
        )
        assert "2 certificate(s)" in restored.stdout
        # The source's node (its serve above) is not carried over: restored on another host,
        # it would be listed as a lost node until removed by hand.
        nodes = run_cli(target, "node", "list", "--json", **target_env).stdout
        assert json.loads(nodes) == []
        with running_appliance(target, address="127.0.0.2", database_url=target_url) as again:
            assert served_fingerprint("127.0.0.2", again.port) == fingerprint
            relisted = json.loads(run_cli(target, "cert", "list", "--json", **target_env).stdout)
            assert relisted == listed
            # New rows continue after the restored ones (PostgreSQL's sequences moved on).
            run_cli(target, "ip", "add", "127.0.0.3", **target_env)


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def backed_up(certgate: Certgate, tmp_path: Path) -> Path:
    backup = tmp_path / "appliance.cgbackup"
    certgate("backup", "-o", backup, "--passphrase-file", _passphrase_file(tmp_path))
    return backup


def _damaged(backup: Path, tmp_path: Path) -> Path:
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x40
    damaged = tmp_path / "damaged.cgbackup"
    damaged.write_bytes(bytes(data))
    return damaged


def _truncated(backup: Path, tmp_path: Path) -> Path:
    cut = tmp_path / "truncated.cgbackup"
    cut.write_bytes(backup.read_bytes()[: 65536 + 16 + 58])  # the first chunk whole, no more
    return cut


def _extended(backup: Path, tmp_path: Path) -> Path:
    longer = tmp_path / "extended.cgbackup"
    longer.write_bytes(backup.read_bytes() + b"\x00" * 32)
    return longer


def _greedy_kdf(backup: Path, tmp_path: Path) -> Path:
    """A header asking scrypt for r = 16, p = 4 at n = 2^20: 2 GiB and 40 s of work."""
    data = bytearray(backup.read_bytes())
    data[10:13] = bytes([20, 16, 4])  # log2(n), r, p
    greedy = tmp_path / "greedy.cgbackup"
    greedy.write_bytes(bytes(data))
    return greedy


def _not_a_backup(_: Path, tmp_path: Path) -> Path:
    other = tmp_path / "other.bin"
    other.write_bytes(os.urandom(4096))
    return other


@pytest.mark.parametrize(
    ("spoil", "passphrase", "says"),
    [
        (None, "not the passphrase", "the passphrase does not open this backup"),
        (_damaged, PASSPHRASE, "the backup file is damaged"),
        (_truncated, PASSPHRASE, "the backup file is damaged or truncated"),
        (_extended, PASSPHRASE, "the backup file is damaged or truncated"),
        (_not_a_backup, PASSPHRASE, "this file is not a certgate backup"),
        (_greedy_kdf, PASSPHRASE, "its key derivation is not valid"),
    ],
)
def test_a_wrong_passphrase_or_damaged_backup_is_refused_and_changes_nothing(
    backed_up: Path, tmp_path: Path, spoil: object, passphrase: str, says: str
) -> None:
    backup = spoil(backed_up, tmp_path) if callable(spoil) else backed_up
    target = tmp_path / "target"
    target.mkdir()
    before = sorted(tmp_path.iterdir())
    run = Certgate(target, subprocess=False)(
        "restore", backup, "--passphrase-file", _passphrase_file(tmp_path, passphrase), expect=1
    )
    [line] = run.error_lines
    assert says in line, line
    assert list(target.iterdir()) == []  # nothing restored, nothing left half-way
    assert sorted(tmp_path.iterdir()) == sorted(
        {*before, tmp_path / f"passphrase-{len(passphrase)}"}
    )


def test_a_restore_is_in_the_restored_audit_trail(backed_up: Path, tmp_path: Path) -> None:
    """Who restored the appliance, when, and from which file: the trail says it after the
    events the backup held."""
    restored = Certgate(tmp_path / "restored", subprocess=False)
    restored("restore", backed_up, "--passphrase-file", _passphrase_file(tmp_path))
    [event] = restored.json("audit", "list", "--action", "appliance.restore")["events"]
    assert event["target"] == str(backed_up)
    assert event["actor"].startswith("cli:")
    assert "1 certificates, 1 private keys" in event["detail"]
    assert max(e["id"] for e in restored.json("audit", "list")["events"]) == event["id"]


def test_a_restore_goes_only_into_an_empty_data_directory(
    certgate: Certgate, backed_up: Path, tmp_path: Path
) -> None:
    before = _tree(certgate.data_dir)
    run = certgate("restore", backed_up, "--passphrase-file", _passphrase_file(tmp_path), expect=1)
    assert "is not empty" in run.error_lines[0]
    assert _tree(certgate.data_dir) == before


def test_a_restore_goes_into_the_empty_data_directory_prepared_for_it(
    certgate: Certgate, backed_up: Path, tmp_path: Path
) -> None:
    """/var/lib/certgate made for the service's user in a directory only root may write (or
    a volume mounted there): 'certgate init' works in it, and so does a restore, again after
    one was killed half-way."""
    parent = tmp_path / "var-lib"
    data_dir = parent / "certgate"
    left = data_dir / ".restore-killed"  # what a restore killed half-way leaves
    left.mkdir(parents=True)
    (left / MASTER_KEY_FILE).write_bytes(os.urandom(32))
    parent.chmod(0o555)
    try:
        done = subprocess.run(
            [*AS_A_USER, str(CERTGATE), "restore", str(backed_up), "--passphrase-file",
             str(_passphrase_file(tmp_path))],
            env={**os.environ, "CERTGATE_DATA_DIR": str(data_dir)},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        parent.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in data_dir.iterdir()) == [DATABASE_FILE, MASTER_KEY_FILE]
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
    restored = Certgate(data_dir, subprocess=False)
    assert restored.json("cert", "list") == certgate.json("cert", "list")


def test_a_restore_goes_only_into_an_empty_database(
    backed_up: Path, tmp_path: Path, postgresql_url: str
) -> None:
    first = Certgate(tmp_path / "first", subprocess=False)
    env = {"CERTGATE_DATABASE_URL": postgresql_url}
    first("restore", backed_up, "--passphrase-file", _passphrase_file(tmp_path), env=env)
    second = Certgate(tmp_path / "second", subprocess=False)
    run = second(
        "restore", backed_up, "--passphrase-file", _passphrase_file(tmp_path), env=env, expect=1
    )
    assert "already holds a certgate store" in run.error_lines[0]
    assert not (tmp_path / "second").exists()


def test_a_backup_needs_a_passphrase_of_some_length(certgate: Certgate, tmp_path: Path) -> None:
    out = tmp_path / "short.cgbackup"
    run = certgate(
        "backup", "-o", out, "--passphrase-file", _passphrase_file(tmp_path, "short"), expect=1
    )
    assert "at least 8 characters" in run.error_lines[0]
    assert not out.exists()


def test_a_postgresql_backup_restores_into_sqlite(tmp_path: Path, postgresql_url: str) -> None:
    """Either backend's backup restores into either (SQLite into PostgreSQL: above)."""
    env = {"CERTGATE_DATABASE_URL": postgresql_url}
    source = Certgate(tmp_path / "source", subprocess=False)
    source("init", env=env)
    source("ip", "add", "127.0.0.7", "--hostname", "portal.example.test", env=env)
    source("ip", "add", "127.0.0.8", "--node", "node-b", "--confirm", env=env)  # its node
    backup = tmp_path / "appliance.cgbackup"
    passphrase = _passphrase_file(tmp_path)
    source("backup", "-o", backup, "--passphrase-file", passphrase, env=env)
    restored = Certgate(tmp_path / "restored", subprocess=False)
    restored("restore", backup, "--passphrase-file", passphrase)
    assert restored.json("cert", "list") == source.json("cert", "list", env=env)
    assert restored.json("ip", "list") == source.json("ip", "list", env=env)
    hostnames = {a["address"]: a["hostnames"] for a in restored.json("ip", "list")}
    assert hostnames["127.0.0.7"] == ["portal.example.test"]
    pinned = {a["address"]: a["node"] for a in restored.json("ip", "list")}
    assert (pinned["127.0.0.7"], pinned["127.0.0.8"]) == (None, "node-b")
    assert "portal.example.test (127.0.0.7)" in str(restored.json("cert", "list"))


def test_a_backup_from_before_nodes_were_left_behind_restores_without_them(
    new_appliance: Callable[[], Appliance], tmp_path: Path
) -> None:
    """A backup made by an earlier certgate holds the nodes' heartbeats: the restore leaves
    them out all the same (a restored appliance on another host would list the old cluster's
    nodes as lost). The old file is made as that version wrote it: the store's snapshot with
    its nodes, in the same encrypted tar."""
    app = new_appliance()
    assert nodes.heartbeat(app, "old-node", app.now(), 5.0, [])
    image = tmp_path / DATABASE_FILE
    take_snapshot(app.store, image)
    with closing(sqlite3.connect(image)) as connection, connection:
        connection.execute(
            "INSERT INTO nodes (name, version, started_at, last_seen, interval, listeners) "
            "VALUES ('old-node', '0.9', '2026-11-01 00:00:00', '2026-11-01 00:00:00', 5.0, '[]')"
        )
    manifest = {"format": backup.FORMAT, "certgate": "0.9", "schema": SCHEMA_HEAD}
    key = (app.data_dir / MASTER_KEY_FILE).read_bytes()
    old = _crafted(tmp_path / "old.cgbackup", json.dumps(manifest).encode(), key, image)
    restored = tmp_path / "restored"
    backup.restore_backup(restored, None, old, PASSPHRASE.encode(), APPLIANCE)
    again = Appliance.open(restored)
    try:
        assert nodes.list_nodes(again) == []
    finally:
        again.close()


def _crafted(path: Path, manifest: bytes, master_key: bytes, image: Path) -> Path:
    """A backup file holding these members, encrypted as 'certgate backup' does."""
    with (
        path.open("wb") as handle,
        backup._Encrypting(handle, PASSPHRASE.encode()) as sink,
        tarfile.open(fileobj=sink, mode="w|") as tar,
    ):
        backup._add_bytes(tar, backup.MANIFEST, manifest)
        backup._add_bytes(tar, MASTER_KEY_FILE, master_key)
        tar.add(image, arcname=DATABASE_FILE)
    return path


def _no_tables(image: Path) -> None:
    image.unlink()
    with closing(sqlite3.connect(image)) as connection, connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.execute(f"INSERT INTO alembic_version VALUES ('{SCHEMA_HEAD}')")


@pytest.mark.parametrize(
    ("manifest", "other_key", "spoil", "says"),
    [
        (b"[1]", False, None, "the backup's manifest is damaged"),
        (b"null", False, None, "the backup's manifest is damaged"),
        (None, False, _no_tables, "the backup's database is damaged"),
        (None, True, None, "the backup's master key does not open its store"),
    ],
)
def test_a_backup_not_made_whole_by_certgate_is_refused_and_changes_nothing(
    certgate: Certgate,
    tmp_path: Path,
    manifest: bytes | None,
    other_key: bool,
    spoil: Callable[[Path], None] | None,
    says: str,
) -> None:
    """A file that decrypts (its maker knew the passphrase) but whose members do not make an
    appliance: one line saying so, not an internal error, nor a restore that "succeeds" into
    an appliance whose every private key fails to open."""
    image = tmp_path / DATABASE_FILE
    with closing(Appliance.open(certgate.data_dir)) as app:
        take_snapshot(app.store, image)
    if spoil is not None:
        spoil(image)
    key = os.urandom(32) if other_key else (certgate.data_dir / MASTER_KEY_FILE).read_bytes()
    plain = json.dumps({"format": backup.FORMAT, "certgate": "0.9", "schema": SCHEMA_HEAD})
    made = _crafted(tmp_path / "crafted.cgbackup", manifest or plain.encode(), key, image)
    target = tmp_path / "target"
    run = Certgate(target, subprocess=False)(
        "restore", made, "--passphrase-file", _passphrase_file(tmp_path), expect=1
    )
    [line] = run.error_lines
    assert says in line, line
    assert not target.exists()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("source_on", "target_on"),
    [("sqlite", "postgresql"), ("postgresql", "sqlite"), ("postgresql", "postgresql")],
)
def test_a_restored_store_never_gives_a_deleted_certificates_id_to_another(
    tmp_path: Path, postgresql_url: str, source_on: str, target_on: str
) -> None:
    """The newest certificate deleted before the backup: after the restore (into either
    backend) the next one gets a new id, not the deleted one's, which the audit trail and
    any bookmark still name."""
    with postgresql_schema() as other_url:
        urls = {"sqlite": {}, "postgresql": {"CERTGATE_DATABASE_URL": postgresql_url}}
        source_env, passphrase = urls[source_on], _passphrase_file(tmp_path)
        target_env = {"CERTGATE_DATABASE_URL": other_url} if target_on == "postgresql" else {}
        source = Certgate(tmp_path / "source", subprocess=False)
        source("init", "--no-address", env=source_env)

        def create(certgate: Certgate, name: str, env: dict[str, str]) -> int:
            made = certgate.json(
                "cert", "create", "--name", name, "--cn", f"{name}.example.test", env=env
            )
            return int(made["certificate"]["id"])

        deleted = max(create(source, name, source_env) for name in ("kept", "deleted"))
        source("cert", "delete", str(deleted), env=source_env)
        backup = tmp_path / "appliance.cgbackup"
        source("backup", "-o", backup, "--passphrase-file", passphrase, env=source_env)
        restored = Certgate(tmp_path / "restored", subprocess=False)
        restored("restore", backup, "--passphrase-file", passphrase, env=target_env)
        assert create(restored, "new", target_env) > deleted


@pytest.mark.parametrize("own_file", [MASTER_KEY_FILE, DATABASE_FILE])
@pytest.mark.parametrize(
    "command", [["backup", "--passphrase-file", "{passphrase}"], ["cert", "export", "1"]]
)
def test_an_output_onto_the_data_directorys_own_files_is_refused(
    certgate: Certgate, tmp_path: Path, own_file: str, command: list[str]
) -> None:
    """'-o' given the data directory's master key or database (a slip of the shell) would
    replace the key that opens every private key, or the store, with the file written."""
    before = _tree(certgate.data_dir)
    passphrase = str(_passphrase_file(tmp_path))
    argv = [arg.format(passphrase=passphrase) for arg in command]
    run = certgate(*argv, "-o", certgate.data_dir / own_file, expect=2)
    assert f"{certgate.data_dir / own_file} is a file of the data directory" in run.stderr
    assert _tree(certgate.data_dir) == before
    certgate("cert", "list")


def test_a_backup_passphrase_typed_at_the_prompt_is_asked_twice(
    certgate: Certgate, tmp_path: Path
) -> None:
    """A typo in a passphrase typed once would make the backup one that nothing opens."""
    out = tmp_path / "typed.cgbackup"
    argv = ["backup", "-o", str(out)]
    shown = on_a_terminal(
        certgate.data_dir, argv, [PASSPHRASE, PASSPHRASE + "x"] + [PASSPHRASE] * 2
    )
    assert "do not match" in shown, shown
    assert out.exists(), shown
    restored = Certgate(tmp_path / "restored", subprocess=False)
    restored("restore", out, "--passphrase-file", _passphrase_file(tmp_path))


@pytest.mark.parametrize("where", ["beside the backup", "in the data directory"])
def test_a_backup_that_finds_no_room_says_so_and_leaves_nothing(
    certgate: Certgate, tmp_path: Path, where: str
) -> None:
    """No room for the encrypted file where it goes, or for the snapshot staged in the data
    directory (here: a file size limit, as a full disk): one line saying where, not 'internal
    error', and no partial file left on either side."""
    store = certgate.data_dir / DATABASE_FILE
    room = store.stat().st_size + 1024 if where == "beside the backup" else 64 * 1024
    out = tmp_path / "out" / "appliance.cgbackup"
    out.parent.mkdir()
    passphrase = _passphrase_file(tmp_path)
    before = sorted(path.name for path in certgate.data_dir.iterdir())
    done = with_file_size_limit(
        room, certgate.data_dir, "backup", "-o", out, "--passphrase-file", passphrase
    )
    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    place = out.parent if where == "beside the backup" else certgate.data_dir
    assert line.startswith(f"error: cannot write the backup in {place} ("), line
    assert "free space on its disk" in line and "nothing was kept" in line, line
    assert list(out.parent.iterdir()) == []
    assert sorted(path.name for path in certgate.data_dir.iterdir()) == before


def test_a_restore_that_finds_no_room_says_where_and_leaves_nothing(
    backed_up: Path, tmp_path: Path
) -> None:
    """No room for the store being restored (a file size limit, as a full disk): one line
    naming the data directory and why, and no data directory left half made."""
    target = tmp_path / "restored"
    passphrase = _passphrase_file(tmp_path)
    done = with_file_size_limit(
        64 * 1024, target, "restore", backed_up, "--passphrase-file", passphrase
    )
    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: cannot restore into {target} ("), line
    assert "None" not in line, line
    assert not target.exists()


def test_a_backup_the_audit_trail_cannot_record_is_not_kept(
    certgate: Certgate, tmp_path: Path
) -> None:
    """A read-only store: the backup (every private key in it) could not be recorded in the
    audit trail, and said so, yet it was written, over the backup already at that path. It
    is now recorded before it is put in place: refused, the earlier file stays as it was."""
    out = tmp_path / "out" / "appliance.cgbackup"
    out.parent.mkdir(mode=0o777)
    out.parent.chmod(0o777)
    out.write_bytes(b"the backup of yesterday")
    out.chmod(0o666)
    passphrase = _passphrase_file(tmp_path)
    passphrase.chmod(0o644)
    (certgate.data_dir / DATABASE_FILE).chmod(0o400)
    done = as_a_user(certgate.data_dir, "backup", "-o", out, "--passphrase-file", passphrase)
    assert done.returncode == 1, done
    [line] = done.stderr.splitlines()
    assert "is read-only" in line, line
    assert out.read_bytes() == b"the backup of yesterday"
    assert [path.name for path in out.parent.iterdir()] == [out.name]
