"""What ``--database-url`` may be: the SQLite file's URL, a PostgreSQL URL or libpq's keyword
form, each handed to its driver as written (``store/database.py``) and named in messages by
its servers and database, never its password. Connecting through them, a host down included:
``tests/integration/test_serve_database_away.py``."""

from __future__ import annotations

import pytest

from certgate.errors import StoreUnavailableError
from certgate.store.database import describe_database, libpq_conninfo


@pytest.mark.parametrize(
    ("given", "handed"),
    [
        (
            "host=db-a,db-b port=5432 dbname=certgate target_session_attrs=read-write",
            "host=db-a,db-b port=5432 dbname=certgate target_session_attrs=read-write",
        ),
        (
            "postgresql://u:secret@db-a:5432,db-b:5433/certgate?target_session_attrs=read-write",
            "postgresql://u:secret@db-a:5432,db-b:5433/certgate?target_session_attrs=read-write",
        ),
        ("postgresql+psycopg://u@db/certgate", "postgresql://u@db/certgate"),
        ("postgres://u@db/certgate", "postgresql://u@db/certgate"),
    ],
)
def test_a_postgresql_string_reaches_libpq_as_written(given: str, handed: str) -> None:
    assert libpq_conninfo(given) == handed


def test_another_kind_of_url_is_refused_with_what_to_give() -> None:
    with pytest.raises(StoreUnavailableError, match="mysql:// is not a database certgate"):
        libpq_conninfo("mysql://u@db/certgate")


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("sqlite:////var/lib/certgate/certgate.db", "/var/lib/certgate/certgate.db"),
        ("postgresql://u:secret@db:6432/certgate", "db:6432/certgate"),
        ("postgresql://u@/certgate?host=db-a,db-b&port=5432,5433", "db-a:5432,db-b:5433/certgate"),
        ("postgresql://u:secret@db-a:5432,db-b:5433/certgate", "db-a:5432,db-b:5433/certgate"),
        ("host=db-a,db-b dbname=certgate password=secret", "db-a:5432,db-b:5432/certgate"),
        ("host=db-a,db-b port=6432 dbname=certgate", "db-a:6432,db-b:6432/certgate"),
        ("dbname=certgate", "localhost:5432/certgate"),
        ("host=db 'broken", "named by --database-url"),
    ],
)
def test_a_database_is_named_by_its_servers_and_name_never_its_password(
    given: str, named: str
) -> None:
    assert describe_database(given) == named
