"""Shared fixtures: an initialised appliance on each store backend.

PostgreSQL runs at 127.0.0.1:5432 (trust auth, database ``test``) on the development and CI
machines; each test gets its own schema, dropped afterwards. In CI the PostgreSQL runs are
never skipped: a missing server fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from certgate.service.appliance import Appliance
from certgate.service.setup import initialise

POSTGRES_URL = os.environ.get(
    "CERTGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None means the embedded default (SQLite in the data directory)."""
    if request.param == "sqlite":
        yield None
        return
    yield request.getfixturevalue("postgresql_url")


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A PostgreSQL URL whose objects live in a schema of their own, dropped afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def appliance(data_dir: Path, database_url: str | None) -> Iterator[Appliance]:
    """An initialised appliance (factory certificate made) on the backend under test."""
    initialise(data_dir, database_url)
    app = Appliance.open(data_dir, database_url)
    try:
        yield app
    finally:
        app.close()
