"""The schema check every command makes agrees with the migration scripts, and tells a store
another node's newer certgate migrated from one that needs 'certgate init'."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from sqlalchemy import create_engine, text

from certgate.store.database import (
    DATABASE_FILE,
    SCHEMA_HEAD,
    default_url,
    make_engine,
    newest_migration,
)
from tests.integration.conftest import Certgate
from tests.support.migration import STAMP, store_at
from tests.support.pglocks import backend_pid, waiting_for
from tests.support.polling import eventually


def test_schema_head_is_the_newest_migration(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert newest_migration(engine) == SCHEMA_HEAD


def test_a_store_a_newer_certgate_migrated_is_said_to_be_newer_not_to_need_init(
    tmp_path: Path, postgresql_url: str
) -> None:
    """A cluster upgraded node by node: the first upgraded node migrated the shared store, and
    this node still runs the older certgate. Every command says so and what to do (upgrade
    this node); none tells it to run 'certgate init', which would fail on a schema it does
    not know."""
    node = Certgate(tmp_path / "data", subprocess=False)
    environment = {"CERTGATE_DATABASE_URL": postgresql_url}
    node("init", "--no-address", env=environment)
    newer = f"{int(SCHEMA_HEAD) + 1:04d}"
    engine = create_engine(postgresql_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})
    finally:
        engine.dispose()
    for command in (("cert", "list"), ("init", "--no-address"), ("node", "list")):
        run = node(*command, expect=1, env=environment)
        [line] = run.error_lines
        assert f"newer schema ({newer})" in line and "upgrade" in line, line
        assert "run 'certgate init'" not in line, line


_UPGRADE = "import sys; from certgate.store.repository import Store; Store(sys.argv[1]).migrate()"


def test_two_nodes_upgrading_one_store_at_once_both_succeed(
    tmp_path: Path, postgresql_url: str
) -> None:
    """A rolling upgrade run on every node together ('certgate init' on each): both read the
    old schema version, and the second's ALTER TABLE failed on the column the first had just
    added ('store unavailable: ... already exists'). The second now waits for the first and
    finds the store upgraded."""
    with store_at("0013", tmp_path, postgresql_url) as (engine, _config):
        with engine.connect() as holder, engine.connect() as observer:
            holder.execute(text("LOCK TABLE nodes IN ACCESS EXCLUSIVE MODE"))  # 0014 alters it
            upgrades = [
                subprocess.Popen(
                    [sys.executable, "-c", _UPGRADE, postgresql_url],
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            pid = backend_pid(holder)
            eventually(lambda: waiting_for(observer, pid) == 2, what="both upgrades waiting")
            holder.rollback()
            said = [upgrade.communicate(timeout=60)[1] for upgrade in upgrades]
        assert [upgrade.returncode for upgrade in upgrades] == [0, 0], said
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert version.scalar() == SCHEMA_HEAD


def _waiting_or_ended(process: subprocess.Popen[str]) -> bool:
    """The process sleeps (SQLite's busy handler, waiting for the write lock: nothing else in
    an upgrade does), or has ended."""
    asleep = Path(f"/proc/{process.pid}/wchan").read_text() == "hrtimer_nanosleep"
    return asleep or process.poll() is not None


def test_an_upgrade_while_the_old_serve_writes_waits_its_turn(tmp_path: Path) -> None:
    """One node, SQLite: 'certgate init' upgrades the store while the old serve writes (a
    heartbeat, an import). The upgrade had read the schema version when it came to write, so
    SQLite refused it at once ('is busy ... try again') instead of letting it wait; it now
    takes the write lock before it reads, waiting its turn."""
    with store_at("0014", tmp_path, None):
        pass
    serve = sqlite3.connect(tmp_path / DATABASE_FILE, isolation_level=None)
    try:
        serve.execute("PRAGMA journal_mode=WAL")  # as every certgate connection sets it
        serve.execute("BEGIN IMMEDIATE")
        serve.execute(
            "INSERT INTO nodes (name, version, started_at, last_seen, interval, listeners) "
            "VALUES ('old', '1', :at, :at, 5.0, '[]')",
            {"at": STAMP},
        )
        upgrade = subprocess.Popen(
            [sys.executable, "-c", _UPGRADE, default_url(tmp_path)],
            stderr=subprocess.PIPE,
            text=True,
        )
        eventually(lambda: _waiting_or_ended(upgrade), what="the upgrade waiting for the lock")
        serve.execute("COMMIT")  # the old serve's heartbeat
        said = upgrade.communicate(timeout=60)[1]
        assert upgrade.returncode == 0, said
        version = serve.execute("SELECT version_num FROM alembic_version").fetchone()
        assert version == (SCHEMA_HEAD,)
    finally:
        serve.close()


def test_a_reference_broken_before_an_upgrade_does_not_stop_it(tmp_path: Path) -> None:
    """SQLite's references are checked after its migrations: only what they broke counts. A
    session left behind by a user deleted while foreign keys were off (a hand edit) is no
    reason to refuse the upgrade."""
    with store_at("0014", tmp_path, None):
        pass
    with closing(sqlite3.connect(tmp_path / DATABASE_FILE)) as db, db:
        db.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at) "
            "VALUES ('orphan', 99, 'c', :at, :at)",
            {"at": STAMP},
        )
    upgrade = subprocess.run(
        [sys.executable, "-c", _UPGRADE, default_url(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    with closing(sqlite3.connect(tmp_path / DATABASE_FILE)) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (SCHEMA_HEAD,)
