"""The schema check every command makes agrees with the migration scripts."""

from __future__ import annotations

from pathlib import Path

from certgate.store.database import SCHEMA_HEAD, make_engine, newest_migration


def test_schema_head_is_the_newest_migration(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert newest_migration(engine) == SCHEMA_HEAD
