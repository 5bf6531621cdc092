"""A bulk import writes its rows with one executemany INSERT, or a COPY on PostgreSQL: the
stored rows must be those the ORM's INSERT of the same values writes."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from certgate.pki.certinfo import read_certificate
from certgate.service.appliance import Appliance
from certgate.service.imports import import_files
from certgate.service.linking import certificate_values
from certgate.store.models import CertificateRow
from tests.support.pki import make_chain

_COMPARED = [
    column.key for column in CertificateRow.__table__.columns if column.key not in ("created_at",)
]


def _rows(app: Appliance) -> dict[str, dict[str, Any]]:
    with app.store.reading() as repository:
        rows = repository.session.scalars(select(CertificateRow).where(~CertificateRow.is_factory))
        return {row.fingerprint: {key: getattr(row, key) for key in _COMPARED} for row in rows}


def test_bulk_rows_equal_orm_rows(appliance: Appliance) -> None:
    chain = make_chain("bulk.example")
    certificates = [chain.root, chain.intermediate, chain.leaf]
    entries = import_files(
        appliance, [("chain.pem", b"".join(c.public_bytes(Encoding.PEM) for c in certificates))]
    )
    assert [entry.status for entry in entries] == ["added"] * 3
    bulk = _rows(appliance)
    with appliance.store.transaction() as repository:
        for row in repository.all_certificates():
            if not row.is_factory:
                repository.delete(row)
    with appliance.store.transaction() as repository:
        for certificate in certificates:
            info = read_certificate(certificate)
            values = certificate_values(certificate, info, info.issued_to)
            repository.add(CertificateRow(**values))
    orm = _rows(appliance)
    assert {
        fingerprint: {**row, "id": None, "issuer_id": None} for fingerprint, row in bulk.items()
    } == {fingerprint: {**row, "id": None, "issuer_id": None} for fingerprint, row in orm.items()}
    with appliance.store.reading() as repository:
        stored = repository.session.scalars(select(CertificateRow)).all()
        assert all(row.created_at is not None and row.manual_chain is None for row in stored)
