"""A store at an older schema revision, holding an address, for the tests of a migration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text

from certgate.store.database import _alembic_config, default_url

STAMP = "2030-01-01 00:00:00+00:00"


@contextmanager
def store_at(
    revision: str, tmp_path: Path, database_url: str | None, address: str = "192.0.2.10"
) -> Iterator[tuple[Engine, Config]]:
    """The store (the SQLite file of ``tmp_path``, or ``database_url``) migrated to
    ``revision`` and holding the factory certificate's row (id 1, not a real certificate)
    and ``address`` on it (id 1); the engine and the Alembic configuration to go on with."""
    url = database_url or default_url(tmp_path)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        config = _alembic_config(engine)
        command.upgrade(config, revision)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO certificates (id, fingerprint, der, friendly_name, "
                    "public_key_fingerprint, subject_name_hash, issuer_name_hash, not_after, "
                    "is_ca, info, chain_mode, is_factory, created_at) VALUES (1, 'f', :der, "
                    "'n', 'k', 's', 'i', :at, false, '{}', 'automatic', true, :at)"
                ),
                {"der": b"\x30\x00", "at": STAMP},
            )
            connection.execute(
                text(
                    "INSERT INTO ip_addresses (id, address, certificate_id, created_at) "
                    "VALUES (1, :address, 1, :at)"
                ),
                {"address": address, "at": STAMP},
            )
        yield engine, config
    finally:
        engine.dispose()
