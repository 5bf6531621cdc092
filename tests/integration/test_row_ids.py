"""An id once given to a certificate, request, key, user, API token or ACME order is never
given to another: the audit trail, a notice, a bookmarked URL or a script that names one
never comes to name a different one after a deletion (SQLite reused the highest id freed;
migration 0015 gives those tables AUTOINCREMENT, PostgreSQL's sequences never go back)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, text

from certgate.errors import NotFoundError
from certgate.pki.names import SubjectFields
from certgate.service import certificates, imports, requests
from certgate.service.appliance import Appliance
from certgate.store.database import SCHEMA_HEAD, default_url, make_engine, migrate
from certgate.store.models import Base
from tests.support.migration import STAMP, store_at
from tests.support.pki import issue, name, new_key, pem


def test_a_deleted_certificates_or_requests_id_never_names_another(appliance: Appliance) -> None:
    kinds = (
        ("self-signed", certificates.delete_certificate, certificates.show_certificate),
        ("request", requests.delete_request, requests.show_request),
    )
    for kind, delete, show in kinds:
        made = []
        for label in (f"{kind}-first", f"{kind}-second"):
            form = certificates.CreateForm(label, SubjectFields(common_name=f"{label}.test"))
            made.append(certificates.create(appliance, form, kind).id)  # type: ignore[arg-type]
            delete(appliance, made[-1])
        assert made[1] > made[0]
        with pytest.raises(NotFoundError):
            show(appliance, made[0])


def test_a_deleted_imported_certificates_id_never_names_the_next_import(
    appliance: Appliance,
) -> None:
    """An import writes its rows with ids it reserves (each with its issuer's in it): they
    came after the highest id present, so after the one it had."""
    made = []
    for host in ("first.example.test", "second.example.test"):
        key = new_key()
        certificate = issue(name(host), key.public_key(), name(host), key, ca=False)
        [entry] = imports.import_files(appliance, [(f"{host}.pem", pem(certificate))])
        assert entry.id is not None, entry
        made.append(entry.id)
        certificates.delete_certificate(appliance, made[-1])
    assert made[1] > made[0]


def _fill(connection: Connection) -> None:
    """A CA (2) and its leaf (3) on an ACME order with a challenge, a request and its key, a
    user with a session, a token: every reference the rebuild of 0015 must keep."""
    for id_, is_ca, issuer in ((2, True, None), (3, False, 2)):
        connection.execute(
            text(
                "INSERT INTO certificates (id, fingerprint, der, friendly_name, "
                "public_key_fingerprint, subject_name_hash, issuer_name_hash, issuer_id, "
                "not_after, is_ca, info, chain_mode, is_factory, created_at) VALUES (:id, :f, "
                ":der, 'n', 'k', 's', 'i', :issuer, :at, :ca, '{}', 'automatic', false, :at)"
            ),
            {"id": id_, "f": f"f{id_}", "der": b"\x30\x00", "issuer": issuer, "at": STAMP}
            | {"ca": is_ca},
        )
    connection.execute(
        text(
            "INSERT INTO private_keys (id, public_key_fingerprint, algorithm, sealed, "
            "created_at) VALUES (1, 'k', 'EC', :sealed, :at)"
        ),
        {"sealed": b"sealed", "at": STAMP},
    )
    connection.execute(
        text(
            "INSERT INTO certificate_requests (id, fingerprint, der, friendly_name, "
            "public_key_fingerprint, subject, sans, created_at) VALUES (1, 'r', :der, 'n', "
            "'k', 'CN=r', '[]', :at)"
        ),
        {"der": b"\x30\x00", "at": STAMP},
    )
    connection.execute(
        text(
            "INSERT INTO users (id, username, password_hash, role, created_at) VALUES "
            "(1, 'admin', 'h', 'admin', :at)"
        ),
        {"at": STAMP},
    )
    connection.execute(
        text(
            "INSERT INTO sessions (id, token_hash, user_id, csrf_token, created_at, "
            "last_seen_at) VALUES (1, 's', 1, 'c', :at, :at)"
        ),
        {"at": STAMP},
    )
    connection.execute(
        text(
            "INSERT INTO api_tokens (id, name, token_hash, role, created_by, created_at) "
            "VALUES (1, 't', 't', 'admin', 'admin', :at)"
        ),
        {"at": STAMP},
    )
    connection.execute(
        text(
            "INSERT INTO acme_orders (id, friendly_name, domains, key_spec, challenge, assign, "
            "state, certificate_id, directory_url, created_by, created_at, renewal_attempts) "
            "VALUES (1, 'n', '[]', 'ec', 'http-01', '[]', 'valid', 3, 'u', '', :at, 0)"
        ),
        {"at": STAMP},
    )
    connection.execute(
        text(
            "INSERT INTO acme_challenges (token, key_authorization, order_id, created_at) "
            "VALUES ('tok', 'ka', 1, :at)"
        ),
        {"at": STAMP},
    )
    if connection.dialect.name == "postgresql":  # rows given their ids: the next continue
        connection.execute(text("SELECT setval(pg_get_serial_sequence('certificates', 'id'), 3)"))


def _references(connection: Connection) -> list[tuple[object, ...]]:
    return [
        tuple(row)
        for query in (
            "SELECT id, issuer_id FROM certificates ORDER BY id",
            "SELECT address, certificate_id FROM ip_addresses",
            "SELECT id, user_id FROM sessions",
            "SELECT id, certificate_id FROM acme_orders",
            "SELECT token, order_id FROM acme_challenges",
            "SELECT id FROM private_keys",
            "SELECT id FROM certificate_requests",
            "SELECT id FROM api_tokens",
        )
        for row in connection.execute(text(query))
    ]


def _shape(connection: Connection) -> dict[str, object]:
    found = inspect(connection)
    return {
        table: (
            sorted(
                (index["name"], tuple(index["column_names"])) for index in found.get_indexes(table)
            ),
            sorted(
                (
                    tuple(key["constrained_columns"]),
                    key["referred_table"],
                    key["options"].get("ondelete"),
                )
                for key in found.get_foreign_keys(table)
            ),
            sorted(tuple(unique["column_names"]) for unique in found.get_unique_constraints(table)),
        )
        for table in found.get_table_names()
    }


def test_a_populated_store_upgraded_to_0015_keeps_its_rows_and_reuses_no_id(
    tmp_path: Path, database_url: str | None
) -> None:
    """The upgrade a running appliance makes (``certgate init``, its engine enforcing foreign
    keys): every row and every reference between them kept, the indexes and constraints
    too; afterwards the newest certificate deleted does not lend its id to the next."""
    from alembic import command

    with store_at("0014", tmp_path, database_url) as (engine, config):
        with engine.begin() as connection:
            _fill(connection)
            before, shape = _references(connection), _shape(connection)
        appliance_engine = make_engine(database_url or default_url(tmp_path))
        try:
            migrate(appliance_engine)
            with appliance_engine.begin() as connection:
                assert _references(connection) == before
                assert _shape(connection) == shape
                connection.execute(text("DELETE FROM acme_orders WHERE id = 1"))
                connection.execute(text("DELETE FROM certificates WHERE id = 3"))
                connection.execute(
                    text(
                        "INSERT INTO certificates (fingerprint, der, friendly_name, "
                        "public_key_fingerprint, subject_name_hash, issuer_name_hash, "
                        "not_after, is_ca, info, chain_mode, is_factory, created_at) VALUES "
                        "('f4', :der, 'n', 'k', 's', 'i', :at, false, '{}', 'automatic', "
                        "false, :at)"
                    ),
                    {"der": b"\x30\x00", "at": STAMP},
                )
                assert (
                    connection.execute(
                        text("SELECT id FROM certificates WHERE fingerprint = 'f4'")
                    ).scalar()
                    == 4
                )
        finally:
            appliance_engine.dispose()
        command.downgrade(config, "0014")
        command.upgrade(config, "head")
        with engine.begin() as connection:
            assert _shape(connection) == shape


def test_the_tables_the_models_say_never_reuse_ids_are_the_ones_migrated_so(
    tmp_path: Path,
) -> None:
    engine = make_engine(default_url(tmp_path))
    try:
        migrate(engine)
        with engine.connect() as connection:
            migrated = {
                name
                for name, sql in connection.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                )
                if "AUTOINCREMENT" in sql
            }
    finally:
        engine.dispose()
    said = {
        table.name
        for table in Base.metadata.sorted_tables
        if table.dialect_options["sqlite"]["autoincrement"]
    }
    assert (
        migrated
        == said
        == {"certificates", "certificate_requests", "private_keys"}
        | {
            "users",
            "api_tokens",
            "acme_orders",
        }
    )


@pytest.mark.parametrize("revision", [f"{number:04d}" for number in range(1, int(SCHEMA_HEAD))])
def test_a_populated_store_of_every_older_schema_upgrades_to_the_newest(
    revision: str, tmp_path: Path
) -> None:
    with store_at(revision, tmp_path, None):
        pass
    engine = make_engine(default_url(tmp_path))
    try:
        migrate(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT a.address, c.fingerprint FROM ip_addresses a "
                    "JOIN certificates c ON c.id = a.certificate_id"
                )
            ).all()
            assert [tuple(row) for row in rows] == [("192.0.2.10", "f")]
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        engine.dispose()
