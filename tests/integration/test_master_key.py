"""The cluster's master key (issue 12, point 5): a node joins a store with a copy of its master
key, checked before anything is written; ``certgate key rotate`` re-seals every sealed secret
with a new key in one transaction, all or nothing; ``certgate key install`` takes the new key
to another node, and refuses any other."""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import LargeBinary, create_engine, inspect, text

from certgate.errors import SealingError
from certgate.service import email, keystore, rotation
from certgate.service.acme_account import ACCOUNT_KEY_SEALED_AS
from certgate.service.appliance import Appliance
from certgate.store.models import AcmeAccountRow, Base
from certgate.store.sealing import MASTER_KEY_FILE, PENDING_KEY_FILE, Sealer
from tests.conftest import postgresql_schema
from tests.integration.conftest import Certgate, Run
from tests.support.pglocks import backend_pid, waiting_for
from tests.support.polling import eventually

PASSWORD = "correct horse battery"
SMTP_PASSWORD = "relay secret"
ACCOUNT_KEY = b"-----BEGIN PRIVATE KEY-----\nnot a real account key\n-----END PRIVATE KEY-----\n"


class Node:
    """``certgate`` on one data directory and the store ``database_url`` (None: its SQLite
    file), run in-process."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self._runner = Certgate(data_dir, subprocess=False)
        self._env = {"CERTGATE_ADMIN_PASSWORD": PASSWORD}
        if database_url:
            self._env["CERTGATE_DATABASE_URL"] = database_url

    def __call__(self, *args: str | Path, expect: int | None = 0) -> Run:
        return self._runner(*args, expect=expect, env=self._env)


def _json(value: Any) -> dict[str, Any]:
    """A JSON column read by plain SQL: PostgreSQL gives the value, SQLite its text."""
    return dict(json.loads(value) if isinstance(value, str) else value)


def refused(run: Run, *expected: str) -> str:
    """The one error line of a refused command, holding every one of ``expected``."""
    assert run.returncode == 1, run
    [line] = run.error_lines
    for text_ in expected:
        assert text_ in line, line
    return line


def key_file(path: Path, key: bytes) -> Path:
    path.write_bytes(key)
    path.chmod(0o600)
    return path


def store_state(app: Appliance) -> dict[str, Any]:
    """Everything a join, an install or a failed rotation must leave as it was."""
    with app.store.engine.connect() as connection:

        def rows(query: str) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in connection.execute(text(query))]

        return {
            "keys": rows("SELECT public_key_fingerprint, sealed FROM private_keys ORDER BY id"),
            "acme": rows("SELECT key_sealed FROM acme_accounts"),
            "settings": rows("SELECT name, value FROM settings ORDER BY name"),
            "master_key": rows("SELECT generation, key_id, retired FROM master_key"),
            "revision": rows("SELECT value FROM revision"),
            "audit": rows("SELECT count(*) FROM audit_events"),
        }


def opened(data_dir: Path, database_url: str | None) -> Appliance:
    return Appliance.open(data_dir, database_url)


def with_secrets(a: Node, data_dir: Path, database_url: str | None, tmp_path: Path) -> str:
    """A store holding one sealed secret of each kind: private keys (the factory's and a
    created certificate's), the SMTP relay's password and an ACME account key. Returns the
    created certificate's id."""
    created = a("cert", "create", "--name", "Shop", "--cn", "shop.example.test", "--json")
    secret = tmp_path / "smtp-password"
    secret.write_text(SMTP_PASSWORD + "\n")
    a(
        "email", "set", "--host", "smtp.example.test", "--security", "starttls",
        "--username", "certgate", "--password-file", secret, "--from", "cg@example.test",
        "--to", "admin@example.test",
    )  # fmt: skip
    with closing(opened(data_dir, database_url)) as app, app.store.transaction() as repository:
        repository.add(
            AcmeAccountRow(
                directory_url="https://ca.example.test/directory",
                key_sealed=keystore.seal(
                    repository, app.sealer, ACCOUNT_KEY_SEALED_AS, ACCOUNT_KEY
                ),
                account_url="https://ca.example.test/account/1",
                registration={},
            )
        )
    return str(created.json()["certificate"]["id"])


#: Every sealed column of the store: a new one must be re-sealed by the rotation (and added
#: here with a check below), or a rotation would leave it unreadable.
SEALED_COLUMNS = {"private_keys.sealed", "acme_accounts.key_sealed"}


def test_every_sealed_column_is_one_the_rotation_knows() -> None:
    columns = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, LargeBinary) and "sealed" in column.name
    }
    assert columns == SEALED_COLUMNS


def open_everything(app: Appliance) -> tuple[list[bytes], bytes, str | None]:
    """Every sealed secret of the store, opened with the appliance's key."""
    with app.store.reading() as repository:
        keys = [
            keystore.unseal(repository, app.sealer, fingerprint, sealed)
            for fingerprint, sealed in store_state(app)["keys"]
        ]
        [(account,)] = store_state(app)["acme"]
        _, relay = email.read_relay(repository, app.sealer)
        account_key = keystore.unseal(repository, app.sealer, ACCOUNT_KEY_SEALED_AS, account)
    return keys, account_key, relay.password


def test_rotate_reseals_every_secret_and_the_old_key_opens_none(
    tmp_path: Path, database_url: str | None
) -> None:
    data_dir = tmp_path / "data"
    a = Node(data_dir, database_url)
    a("init", "--no-address")
    shop = with_secrets(a, data_dir, database_url, tmp_path)
    old_key = (data_dir / MASTER_KEY_FILE).read_bytes()
    with closing(opened(data_dir, database_url)) as app:
        before = open_everything(app)
        sealed_before = store_state(app)
    assert before[1:] == (ACCOUNT_KEY, SMTP_PASSWORD)

    rotated = a("key", "rotate", "--json").json()
    assert rotated["generation"] == 2
    assert (rotated["private_keys"], rotated["other_secrets"]) == (2, 2)
    new_key = data_dir / MASTER_KEY_FILE
    assert new_key.read_bytes() != old_key
    assert oct(new_key.stat().st_mode & 0o777) == "0o600"
    assert not (data_dir / PENDING_KEY_FILE).exists()

    with closing(opened(data_dir, database_url)) as app:
        assert open_everything(app) == before  # the same secrets, sealed anew
        after = store_state(app)
    for kind in ("keys", "acme"):
        assert all(old != new for old, new in zip(sealed_before[kind], after[kind], strict=True)), (
            kind
        )
    old = Sealer(old_key)
    for fingerprint, sealed in after["keys"]:
        with pytest.raises(SealingError):
            old.unseal(fingerprint, sealed)
    with pytest.raises(SealingError):
        old.unseal(ACCOUNT_KEY_SEALED_AS, after["acme"][0][0])
    relay = _json(dict(after["settings"])["email"])
    with pytest.raises(SealingError):
        old.unseal(email.PASSWORD_SEALED_AS, base64.b64decode(relay["password_sealed"]))

    # A key still exports, with a passphrase, and opens with it.
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("an export passphrase\n")
    out = tmp_path / "shop.p12"
    a("cert", "export", shop, "--key", "--passphrase-file", passphrase, "-o", out)
    key, certificate, _ = pkcs12.load_key_and_certificates(
        out.read_bytes(), b"an export passphrase"
    )
    assert key is not None and certificate is not None

    # The old key is refused everywhere: installed back, or left in a data directory.
    stale = refused(
        a("key", "install", "--master-key-file", key_file(tmp_path / "old.key", old_key),
          expect=None),
        "stale master key", "generation 1", "generation 2", "certgate key install",
    )  # fmt: skip
    assert str(tmp_path / "old.key") in stale
    assert (data_dir / MASTER_KEY_FILE).read_bytes() != old_key  # nothing written
    audit = a("audit", "list", "--action", "master-key.rotate", "--json").json()["events"]
    assert [event["target"] for event in audit] == ["master key generation 2"]

    a("key", "rotate")
    with closing(opened(data_dir, database_url)) as app:
        assert open_everything(app) == before
        [(generation, _, _)] = store_state(app)["master_key"]
    assert generation == 3


@pytest.mark.parametrize("damaged", ["last private key", "SMTP password"])
def test_a_rotation_stopped_by_a_secret_that_does_not_open_changes_nothing(
    tmp_path: Path, database_url: str | None, damaged: str
) -> None:
    """The re-seal goes key by key, then the ACME account key, then the SMTP password, each
    written as it goes: a damaged row at any step undoes every step before it."""
    data_dir = tmp_path / "data"
    a = Node(data_dir, database_url)
    a("init", "--no-address")
    with_secrets(a, data_dir, database_url, tmp_path)
    with closing(opened(data_dir, database_url)) as app, app.store.engine.begin() as connection:
        if damaged == "SMTP password":
            junk = base64.b64encode(b"\x01" + os.urandom(40)).decode()
            stored = connection.execute(text("SELECT value FROM settings WHERE name = 'email'"))
            value = {**_json(stored.scalar_one()), "password_sealed": junk}
            connection.execute(
                text("UPDATE settings SET value = :value WHERE name = 'email'"),
                {"value": json.dumps(value)},
            )
        else:
            connection.execute(
                text(
                    "UPDATE private_keys SET sealed = :junk "
                    "WHERE id = (SELECT max(id) FROM private_keys)"
                ),
                {"junk": b"\x01" + os.urandom(60)},
            )
    key_before = (data_dir / MASTER_KEY_FILE).read_bytes()
    with closing(opened(data_dir, database_url)) as app:
        before = store_state(app)

    line = refused(
        a("key", "rotate", expect=None),
        "the master key was not rotated",
        "does not open with the current master key",
        "nothing was changed",
    )
    assert ("SMTP relay's password" in line) == (damaged == "SMTP password")
    assert ("'Shop'" in line) == (damaged == "last private key")
    with closing(opened(data_dir, database_url)) as app:
        assert store_state(app) == before
    assert (data_dir / MASTER_KEY_FILE).read_bytes() == key_before
    assert not (data_dir / PENDING_KEY_FILE).exists()
    out = tmp_path / "factory.der"
    a("cert", "export", "1", "--key", "--unencrypted-private-key", "--pem", "-o", out)


def test_a_rotation_stopped_after_its_commit_is_finished_by_the_next_command(
    tmp_path: Path, database_url: str | None
) -> None:
    """Killed between its commit and putting the new key in place: the store is sealed with
    the key in master.key.new, and the next command on the data directory puts it there."""
    data_dir = tmp_path / "data"
    a = Node(data_dir, database_url)
    a("init", "--no-address")
    old_key = (data_dir / MASTER_KEY_FILE).read_bytes()
    a("key", "rotate")
    new_key = (data_dir / MASTER_KEY_FILE).read_bytes()
    # The state such a crash leaves: the new key pending, the old one still master.key.
    (data_dir / MASTER_KEY_FILE).rename(data_dir / PENDING_KEY_FILE)
    key_file(data_dir / MASTER_KEY_FILE, old_key)

    out = tmp_path / "factory.pem"
    a("cert", "export", "1", "--key", "--unencrypted-private-key", "--pem", "-o", out)
    assert (data_dir / MASTER_KEY_FILE).read_bytes() == new_key
    assert not (data_dir / PENDING_KEY_FILE).exists()

    # A pending key the store does not hold (a rotation that never committed) is left alone.
    key_file(data_dir / PENDING_KEY_FILE, os.urandom(32))
    a("cert", "export", "1", "--key", "--unencrypted-private-key", "--pem", "-o", out)
    assert (data_dir / MASTER_KEY_FILE).read_bytes() == new_key
    a("key", "rotate")  # and the next rotation writes over it
    assert not (data_dir / PENDING_KEY_FILE).exists()


def test_join_checks_the_key_before_writing_anything(tmp_path: Path, postgresql_url: str) -> None:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a = Node(a_dir, postgresql_url)
    b = Node(b_dir, postgresql_url)
    a("init", "--no-address")
    shop = with_secrets(a, a_dir, postgresql_url, tmp_path)
    with closing(opened(a_dir, postgresql_url)) as app:
        before = store_state(app)
    right = key_file(tmp_path / "copied.key", (a_dir / MASTER_KEY_FILE).read_bytes())
    wrong = key_file(tmp_path / "wrong.key", os.urandom(32))

    # Without --join, init refuses to make a second key beside the store's.
    refused(b("init", expect=None), "initialised already", "certgate init --join")
    refused(
        b("init", "--join", "--master-key-file", wrong, expect=None),
        f"the master key file {wrong} does not open this store",
    )
    right.chmod(0o644)
    refused(b("init", "--join", "--master-key-file", right, expect=None), "chmod 600")
    right.chmod(0o600)
    with postgresql_schema() as empty:
        refused(
            Node(b_dir, empty)("init", "--join", "--master-key-file", right, expect=None),
            "is not initialised",
        )
        engine = create_engine(empty)
        try:
            with engine.connect() as connection:
                assert inspect(connection).get_table_names() == []
        finally:
            engine.dispose()
    assert not b_dir.exists()
    with closing(opened(a_dir, postgresql_url)) as app:
        assert store_state(app) == before

    joined = b("init", "--join", "--master-key-file", right, "--json").json()
    assert joined["created"] is False and joined["factory_certificate_id"] == 1
    assert (b_dir / MASTER_KEY_FILE).read_bytes() == right.read_bytes()
    assert oct(b_dir.stat().st_mode & 0o777) == "0o700"
    assert oct((b_dir / MASTER_KEY_FILE).stat().st_mode & 0o777) == "0o600"
    b("init", "--join", "--master-key-file", right)  # again: nothing to do
    names = {entry["friendly_name"] for entry in b("cert", "list", "--json").json()}
    assert "Shop" in names
    out = tmp_path / "shop.pem"
    b("cert", "export", shop, "--key", "--unencrypted-private-key", "--pem", "-o", out)
    refused(
        b("init", "--join", "--master-key-file", wrong, expect=None),
        "holds another master key",
    )


def test_a_key_copy_that_is_missing_or_damaged_is_to_be_copied_again_not_restored(
    tmp_path: Path, postgresql_url: str
) -> None:
    """The file given to 'init --join' or 'key install' is a copy of a node's key: when it is
    not there (a mistyped path) or not whole, the way out is to copy it again from a node, not
    to restore this store from a backup."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a, b = Node(a_dir, postgresql_url), Node(b_dir, postgresql_url)
    a("init", "--no-address")
    missing = tmp_path / "no-such.key"
    damaged = key_file(tmp_path / "damaged.key", (a_dir / MASTER_KEY_FILE).read_bytes()[:31])
    for run in (
        b("init", "--join", "--master-key-file", missing, expect=None),
        b("init", "--join", "--master-key-file", damaged, expect=None),
        a("key", "install", "--master-key-file", damaged, expect=None),
    ):
        line = refused(run, "copy master.key again from a node of the cluster")
        assert "backup" not in line, line
    assert not b_dir.exists()


def test_a_new_node_given_a_key_a_rotation_replaced_is_told_to_join_with_the_new_one(
    tmp_path: Path, postgresql_url: str
) -> None:
    """'init --join' with a copy made before a 'key rotate': what to do is to join with the
    new key, not 'certgate key install', which a node without a data directory refuses."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a, b = Node(a_dir, postgresql_url), Node(b_dir, postgresql_url)
    a("init", "--no-address")
    old = key_file(tmp_path / "old.key", (a_dir / MASTER_KEY_FILE).read_bytes())
    a("key", "rotate")
    line = refused(
        b("init", "--join", "--master-key-file", old, expect=None),
        "stale master key", "generation 1", "certgate init --join --master-key-file FILE",
    )  # fmt: skip
    assert "key install" not in line, line
    assert not b_dir.exists()


def test_a_store_that_records_no_key_is_checked_by_opening_a_sealed_key(
    tmp_path: Path, postgresql_url: str
) -> None:
    """A store initialised before the key record: the key must open one of its keys."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a = Node(a_dir, postgresql_url)
    a("init", "--no-address")
    with closing(opened(a_dir, postgresql_url)) as app, app.store.engine.begin() as connection:
        connection.execute(text("UPDATE master_key SET key_id = NULL, made_at = NULL"))
    b = Node(b_dir, postgresql_url)
    wrong = key_file(tmp_path / "wrong.key", os.urandom(32))
    refused(
        b("init", "--join", "--master-key-file", wrong, expect=None),
        "none of its private keys opens with it",
    )
    assert not b_dir.exists()
    right = key_file(tmp_path / "copied.key", (a_dir / MASTER_KEY_FILE).read_bytes())
    b("init", "--join", "--master-key-file", right)
    with closing(opened(b_dir, postgresql_url)) as app:
        [(generation, key_id, _)] = store_state(app)["master_key"]
        assert (generation, key_id) == (1, app.sealer.key_id)  # recorded once known
    # and from now on a wrong key is told by its id
    refused(
        Node(tmp_path / "c", postgresql_url)(
            "init", "--join", "--master-key-file", wrong, expect=None
        ),
        "neither the store's master key (generation 1",
    )
    shutil.rmtree(b_dir)


def test_a_stale_node_seals_nothing_and_backs_up_nothing(
    tmp_path: Path, postgresql_url: str
) -> None:
    """After a rotation on node A, node B's old key would seal rows nobody else can open, and
    a backup of it would open nothing: both are refused, naming what to do."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a, b = Node(a_dir, postgresql_url), Node(b_dir, postgresql_url)
    a("init", "--no-address")
    copied = key_file(tmp_path / "copied.key", (a_dir / MASTER_KEY_FILE).read_bytes())
    b("init", "--join", "--master-key-file", copied)
    a("key", "rotate")
    with closing(opened(a_dir, postgresql_url)) as app:
        before = store_state(app)

    refused(
        b("cert", "create", "--name", "On B", "--cn", "b.example.test", expect=None),
        "stale master key", str(a_dir.resolve() / MASTER_KEY_FILE),
    )  # fmt: skip
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("a backup passphrase\n")
    backup = tmp_path / "b.cgbackup"
    refused(
        b("backup", "-o", backup, "--passphrase-file", passphrase, expect=None),
        "stale master key",
    )
    assert not backup.exists()
    with closing(opened(a_dir, postgresql_url)) as app:
        assert store_state(app) == before
    # The new key installed, node B works again.
    b("key", "install", "--master-key-file", a_dir / MASTER_KEY_FILE)
    b("cert", "create", "--name", "On B", "--cn", "b.example.test")
    b("backup", "-o", backup, "--passphrase-file", passphrase)


def test_a_key_deleted_while_the_rotation_runs_is_left_out(
    tmp_path: Path, postgresql_url: str
) -> None:
    """PostgreSQL: another transaction deletes a private key (a certificate's deletion takes
    its key along) while the rotation reads the keys. The rotation waits for it, leaves the
    deleted key out and re-seals the rest; it neither stops with a database error nor brings
    the key back."""
    data_dir = tmp_path / "data"
    a = Node(data_dir, postgresql_url)
    a("init", "--no-address")
    for number in range(3):
        a("cert", "create", "--name", f"Site {number}", "--cn", f"s{number}.example.test")
    outcome: dict[str, Any] = {}

    def rotate() -> None:
        with closing(opened(data_dir, postgresql_url)) as app:
            try:
                outcome["rotated"] = rotation.rotate(app)
            except Exception as error:  # the finding: reported below, in the test's thread
                outcome["error"] = error

    with closing(opened(data_dir, postgresql_url)) as app:
        with app.store.engine.connect() as deleter, app.store.engine.connect() as observer:
            victim = deleter.execute(text("SELECT max(id) FROM private_keys")).scalar_one()
            deleter.execute(text("DELETE FROM private_keys WHERE id = :id"), {"id": victim})
            blocker = deleter.execute(text("SELECT pg_backend_pid()")).scalar_one()
            rotating = threading.Thread(target=rotate)
            rotating.start()

            def waiting() -> bool:  # the rotation is blocked by the deleter's row lock
                observer.rollback()  # a fresh snapshot of pg_stat_activity each look
                query = text(  # this deleter's, not another test's on the shared server
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%private_keys%' "
                    "AND :blocker = ANY(pg_blocking_pids(pid))"
                )
                return bool(observer.execute(query, {"blocker": blocker}).scalar_one())

            eventually(waiting, what="the rotation waits for the deleting transaction")
            deleter.commit()
            rotating.join(60)
        assert "error" not in outcome, outcome
        assert outcome["rotated"].private_keys == 3  # the factory's and three, less one
    with closing(opened(data_dir, postgresql_url)) as app:
        remaining = store_state(app)["keys"]
        assert len(remaining) == 3
        with app.store.reading() as repository:
            for fingerprint, sealed in remaining:
                keystore.unseal(repository, app.sealer, fingerprint, sealed)  # the new key


def test_two_inits_at_once_on_one_new_store_record_one_master_key(
    tmp_path: Path, postgresql_url: str
) -> None:
    """PostgreSQL: 'certgate init' (without --join) on two nodes at once, on a store with no
    key recorded yet. Each makes a master key of its own; the store must end with one of them
    recorded, every sealed key opening with it, and the other init refused. Both read the
    record before either writes it (held here by a transaction locking its row)."""
    from certgate.store.repository import Store

    store = Store(postgresql_url)
    store.migrate()  # made by neither init: the schema of a new store
    store.close()
    runs: dict[str, Run] = {}
    environment = {"CERTGATE_ADMIN_PASSWORD": PASSWORD, "CERTGATE_DATABASE_URL": postgresql_url}

    def init(name: str) -> None:
        node = Certgate(tmp_path / name, subprocess=True)
        runs[name] = node("init", "--no-address", expect=None, env=environment)

    engine = create_engine(postgresql_url)
    with engine.connect() as blocker, engine.connect() as observer:
        blocker.execute(text("SELECT key_id FROM master_key FOR UPDATE"))
        blocking = backend_pid(blocker)
        threads = [threading.Thread(target=init, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()

        def both_waiting() -> bool:  # for the blocker's row: the second one behind the first
            return waiting_for(observer, blocking) == 2

        eventually(both_waiting, timeout=60, what=f"both inits wait for the key record {runs}")
        blocker.commit()
        for thread in threads:
            thread.join(60)
    engine.dispose()
    refused_runs = [name for name, run in runs.items() if run.returncode != 0]
    assert len(refused_runs) == 1, runs
    [loser] = refused_runs
    refused(runs[loser], "does not open this store")
    winner = "b" if loser == "a" else "a"
    with closing(opened(tmp_path / winner, postgresql_url)) as app:
        state = store_state(app)
        assert state["master_key"][0][1] == app.sealer.key_id
        with app.store.reading() as repository:
            for fingerprint, sealed in state["keys"]:
                keystore.unseal(repository, app.sealer, fingerprint, sealed)


def test_a_second_rotation_refused_meanwhile_leaves_the_first_ones_new_key(
    tmp_path: Path, database_url: str | None
) -> None:
    """Two 'certgate key rotate' at once on one node: the second, opened with the key the
    first replaces, is refused as stale. It must not remove master.key.new, which the first
    has committed the store to and is about to put in place (here: was killed before it
    could); else no file holds the key that opens the store."""
    data_dir = tmp_path / "data"
    a = Node(data_dir, database_url)
    a("init", "--no-address")
    old_key = (data_dir / MASTER_KEY_FILE).read_bytes()
    with closing(opened(data_dir, database_url)) as second:  # opened before the first commits
        a("key", "rotate")
        new_key = (data_dir / MASTER_KEY_FILE).read_bytes()
        # The first rotation between its commit and its rename: the new key still pending.
        (data_dir / MASTER_KEY_FILE).rename(data_dir / PENDING_KEY_FILE)
        key_file(data_dir / MASTER_KEY_FILE, old_key)
        with pytest.raises(SealingError, match="stale master key"):
            rotation.rotate(second)
    out = tmp_path / "factory.pem"
    a("cert", "export", "1", "--key", "--unencrypted-private-key", "--pem", "-o", out)
    assert (data_dir / MASTER_KEY_FILE).read_bytes() == new_key


def test_a_rotation_writes_the_new_key_where_a_linked_master_key_lives(
    tmp_path: Path, database_url: str | None
) -> None:
    """master.key a symbolic link to the key kept on another volume: the rotation puts the
    new key there, the file it tells the administrator to copy to the other nodes, rather
    than replacing the link and leaving the old key where it points."""
    data_dir = tmp_path / "data"
    a = Node(data_dir, database_url)
    a("init", "--no-address")
    kept = tmp_path / "key-volume" / MASTER_KEY_FILE
    kept.parent.mkdir(mode=0o700)
    (data_dir / MASTER_KEY_FILE).rename(kept)
    (data_dir / MASTER_KEY_FILE).symlink_to(kept)
    rotated = a("key", "rotate", "--json").json()
    assert rotated["key_file"] == str(kept)
    assert (data_dir / MASTER_KEY_FILE).is_symlink()
    with closing(opened(data_dir, database_url)) as app:
        assert Sealer.from_file(kept).key_id == app.sealer.key_id
    out = tmp_path / "factory.pem"
    a("cert", "export", "1", "--key", "--unencrypted-private-key", "--pem", "-o", out)


def test_a_linked_master_key_whose_volume_is_away_is_named_as_such(tmp_path: Path) -> None:
    """master.key a link to a key on a volume not mounted (yet): every command names the
    link and where it points, not "restore it from your backup", which would bring back an
    old store when the key is only out of reach."""
    data_dir = tmp_path / "data"
    a = Node(data_dir, None)
    a("init", "--no-address")
    away = tmp_path / "key-volume" / MASTER_KEY_FILE
    (data_dir / MASTER_KEY_FILE).unlink()
    (data_dir / MASTER_KEY_FILE).symlink_to(away)
    line = refused(a("cert", "list", expect=None), f"is a link to {away}, which is missing")
    assert "backup" not in line, line


def test_a_cluster_node_that_lost_its_key_is_told_to_install_it_from_another_node(
    tmp_path: Path, postgresql_url: str
) -> None:
    """Node B of a shared store lost master.key: a restore cannot help (the store is shared
    and not empty); the other nodes hold the key, and 'certgate key install' takes it."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a, b = Node(a_dir, postgresql_url), Node(b_dir, postgresql_url)
    a("init", "--no-address")
    copied = key_file(tmp_path / "copied.key", (a_dir / MASTER_KEY_FILE).read_bytes())
    b("init", "--join", "--master-key-file", copied)
    (b_dir / MASTER_KEY_FILE).unlink()
    refused(b("cert", "list", expect=None), "certgate key install --master-key-file FILE")
    refused(b("init", expect=None), "lost its key, copy it likewise and run 'certgate key install")
    b("key", "install", "--master-key-file", copied)
    b("cert", "list")
