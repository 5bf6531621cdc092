"""Shared fixtures: an initialised appliance on each store backend; and the markers
(``postgres``, ``browser``, ``tls``, ``slow``, registered in pyproject.toml) put on each test
from what it uses and where it lives, so that ``pytest -m "not slow"`` is a fast local loop.

A run must leave the tracked files as it found them (screenshots and data go to temporary
directories): a file a run changed is named at the end, and fails the run in CI (CI=true).

PostgreSQL runs at 127.0.0.1:5432 (trust auth, database ``test``) on the development and CI
machines; each test gets its own schema, dropped afterwards. In CI the PostgreSQL runs are
never skipped: a missing server fails them.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import pytest
from sqlalchemy import create_engine, text

from certgate.service.appliance import Appliance
from certgate.service.setup import initialise
from tests.support.ci import in_ci

POSTGRES_URL = os.environ.get(
    "CERTGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


TESTS = Path(__file__).resolve().parent

#: Tests that take long (10 s or more each on the shared 2-core development machine), by path
#: under tests/ or path::name: the whole suite runs them (scripts/test, CI), the local loop
#: (``pytest -m "not slow"``) does not. Measure with ``--durations=30`` when adding one.
SLOW = {
    # Pebble (a real ACME CA) and a serve: ~25 s and ~12 s
    "integration/test_acme.py::test_http01_order_is_issued_served_and_verified",
    "integration/test_acme.py::test_bad_nonces_are_retried",
    "integration/test_acme.py::test_a_forced_renewal_replaces_the_served_certificate_without_a_failed_handshake",
    "integration/test_acme.py::test_serve_renews_a_certificate_when_a_third_of_its_validity_is_left",
    "integration/test_acme.py::test_a_failed_renewal_waits_and_is_shown",
    "integration/test_acme.py::test_a_ca_requiring_external_account_binding",
    "api/test_acme.py",
    "integration/test_acme_doc.py",  # docs/acme.md run against Pebble: ~22 s
    "browser",  # Chromium against a real serve: about 20 s per test
    "api/test_fuzz.py",  # schemathesis over every operation: minutes
    "api/test_docs.py",  # runs every curl session of docs/api.md
    "integration/test_chains_acceptance.py",  # NIST PKITS and x509-limbo: ~450 imports
    "integration/test_tls_hot_swap.py",  # handshake load from other processes during swaps
    "integration/test_serve_workers.py",  # several serve processes started and killed
    "integration/test_serve_live.py",  # serve processes following the CLI, restarted
    "integration/test_serve_isolation.py",  # serve on damaged stores, both backends
    "integration/test_serve_cluster.py",  # two serve nodes on one PostgreSQL store
    "integration/test_serve_cluster_doc.py",  # docs/cluster.md: two nodes, one killed
    "integration/test_floating_address.py",  # a serve in a network namespace: ~25 s
    "integration/test_serve_cluster_sessions.py",  # two nodes sharing logins: ~10 s each
    "integration/test_store_silent_network.py",  # a PostgreSQL of its own, a cut: ~24 s
    "integration/test_serve_database_away.py",  # nodes on a PostgreSQL stopped and started
    "integration/test_serve_cluster_keys.py",  # two nodes, a rotation and an install: ~60 s
    "unit/test_loader.py::test_corpus_never_raises_anything_but_certgate_errors",  # every vector
    "integration/test_names_are_text.py::"
    "test_a_subject_with_escape_sequences_never_reaches_the_terminal_raw",
    "integration/test_data_dir_safety.py::test_the_data_directory_is_private_whoever_made_it",
    "integration/test_cli_import_export.py::test_failover_copy_to_a_second_appliance",
    "integration/test_accounts.py::test_failed_logins_count_in_every_process_and_expire",
    "integration/test_accounts.py::test_many_networks_together_slow_the_account_down_but_never_lock_it",
    "integration/test_backup_restore.py::"
    "test_a_backup_taken_while_serving_restores_to_the_same_certificates_on_the_same_addresses",
    "integration/test_tls_mozilla.py",  # a serve with two chains, checked the way Mozilla does
    # serve --workers 2 checking notices while certgate notify runs beside it
    "integration/test_notices.py::test_serve_with_two_workers_and_notify_beside_it_send_one_mail",
    "api/test_cli_json.py::test_changes_answer_with_the_api_document",
    "api/test_auth.py::test_the_current_password_is_guessed_no_faster_than_at_the_login_page",
    "integration/test_cli_certificates.py::"
    "test_init_is_idempotent_and_the_factory_certificate_cannot_be_deleted",
}


def _marks(relative: PurePosixPath, name: str) -> set[str]:
    top = relative.parts[0]
    marks = {"browser"} if top == "browser" else set()
    if top in ("api", "browser") or relative.name.startswith(("test_tls_", "test_serve_")):
        marks.add("tls")  # real TLS listeners: a TlsServer or a certgate serve
    if {top, str(relative), f"{relative}::{name}"} & SLOW:
        marks.add("slow")
    return marks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            relative = PurePosixPath(item.path.resolve().relative_to(TESTS))
        except ValueError:
            continue
        name = getattr(item, "originalname", item.name)
        for mark in sorted(_marks(relative, name)):
            item.add_marker(getattr(pytest.mark, mark))
        if "postgresql_url" in item.fixturenames:  # asked for directly; database_url's param
            item.add_marker(pytest.mark.postgres)  # carries the mark itself


_TRACKED_CHANGES = pytest.StashKey[set[str] | None]()


def _tracked_changes() -> set[str] | None:
    """``git status`` of the tracked files (None outside a git checkout)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(TESTS.parent), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(done.stdout.splitlines()) if done.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_TRACKED_CHANGES] = _tracked_changes()


def pytest_sessionfinish(session: pytest.Session) -> None:
    before, after = session.config.stash.get(_TRACKED_CHANGES, None), _tracked_changes()
    if before is None or after is None or after <= before:
        return
    changed = sorted(line[3:] for line in after - before)
    message = "the tests changed tracked files: " + ", ".join(changed)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")
        reporter.write_line(message, red=True)
    if in_ci():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None means the embedded default (SQLite in the data directory)."""
    if request.param == "sqlite":
        yield None
        return
    yield request.getfixturevalue("postgresql_url")


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A PostgreSQL URL whose objects live in a schema of their own, dropped afterwards."""
    with postgresql_schema() as url:
        yield url


@contextmanager
def postgresql_schema() -> Iterator[str]:
    """A PostgreSQL URL on a new schema of its own, dropped afterwards (for a test that
    needs a second database, as a restore's target)."""
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
