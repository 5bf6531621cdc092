"""PostgreSQL: two nodes (or two commands) writing the same thing at once. The second
write meets the first's unique key or deleted row only at its commit; it is a conflict (409,
exit 1) that changes nothing, not the driver's IntegrityError (a 500, "internal error")."""

from __future__ import annotations

from pathlib import Path

from certgate.errors import ConflictError
from certgate.service import imports, networking
from certgate.service.appliance import Appliance
from certgate.service.setup import initialise
from certgate.store.audit import Actor
from certgate.store.models import CertificateRow
from tests.support.pglocks import behind_uncommitted
from tests.support.pki import fingerprint, make_chain, pem

ADDRESS = "192.0.2.41"
ACTOR = Actor("admin", "127.0.0.1")


def test_an_address_added_twice_at_once_is_a_conflict(tmp_path: Path, postgresql_url: str) -> None:
    initialise(tmp_path / "data", postgresql_url)
    app = Appliance.open(tmp_path / "data", postgresql_url)
    try:
        before = networking.list_addresses(app)
        added = behind_uncommitted(
            postgresql_url,
            "INSERT INTO ip_addresses (address, certificate_id, hostnames, created_at) "
            f"SELECT '{ADDRESS}', id, '[]', now() FROM certificates LIMIT 1",
            lambda: networking.add_address(app, ADDRESS),
        )
        assert isinstance(added, ConflictError), added
        assert "another change added the same item at the same moment" in str(added)
        listed = [view.address for view in networking.list_addresses(app)]
        assert listed.count(ADDRESS) == 1 and len(listed) == len(before) + 1
    finally:
        app.close()


def test_a_certificate_imported_twice_at_once_is_a_conflict(
    tmp_path: Path, postgresql_url: str
) -> None:
    """Two ``cert import`` of one file at once: the second's COPY met the first's row and
    exited 70 with 'internal error (UniqueViolation)' (the driver's own error)."""
    initialise(tmp_path / "data", postgresql_url)
    app = Appliance.open(tmp_path / "data", postgresql_url)
    chain = make_chain("twice.example.test")
    columns = [column.name for column in CertificateRow.__table__.columns if column.name != "id"]
    copied = [f"'{fingerprint(chain.leaf)}'" if name == "fingerprint" else name for name in columns]
    try:
        imported = behind_uncommitted(
            postgresql_url,
            f"INSERT INTO certificates ({', '.join(columns)}) "
            f"SELECT {', '.join(copied)} FROM certificates LIMIT 1",
            lambda: imports.import_files(app, [("leaf.pem", pem(chain.leaf))], None, ACTOR),
        )
        assert isinstance(imported, ConflictError), imported
        assert "another change added the same item at the same moment" in str(imported)
    finally:
        app.close()
