"""The schema check every command makes agrees with the migration scripts, and tells a store
another node's newer certgate migrated from one that needs 'certgate init'."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from certgate.store.database import SCHEMA_HEAD, make_engine, newest_migration
from tests.integration.conftest import Certgate


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
