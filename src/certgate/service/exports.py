"""Exporting a certificate, with or without its private key and chain. Nothing is removed."""

from __future__ import annotations

from collections.abc import Callable

from certgate.pki.export import ExportedFile, ExportOptions, export
from certgate.pki.keys import PrivateKey
from certgate.service.appliance import Appliance
from certgate.service.keystore import get_private_key
from certgate.service.lookup import find_certificate
from certgate.service.stored import stored_certificate
from certgate.service.views import chain_rows
from certgate.store.audit import APPLIANCE, Actor, AuditAction, certificate_target
from certgate.store.models import CertificateRow
from certgate.store.repository import Repository


def export_certificate(
    app: Appliance,
    reference: str | int,
    options: ExportOptions,
    actor: Actor = APPLIANCE,
    *,
    audited: bool = True,
    deliver: Callable[[ExportedFile], None] | None = None,
) -> ExportedFile:
    """Encode the certificate as the guide's rules say; the export is written to the audit
    unless not ``audited`` (a HEAD of the download: nothing leaves). ``deliver``: where it
    goes (the CLI's file), in the same transaction, once its audit event is written: one not
    delivered is not recorded, one the audit trail refuses is not delivered."""
    with app.store.transaction(actor) as repository:
        row = find_certificate(repository, reference)
        chain = [
            stored_certificate(link)
            for link in chain_rows(
                row, repository.certificate, repository.certificate_by_fingerprint
            )
        ]
        key: PrivateKey | None = None
        if options.include_private_key:
            key = get_private_key(repository, app.sealer, row.public_key_fingerprint)
        exported = export(stored_certificate(row), key, chain, options, row.friendly_name)
        if audited:
            _record(repository, row, options, exported)
        if deliver is not None:  # after the record is written: one refused delivers nothing
            repository.flush()
            deliver(exported)
        return exported


def _record(
    repository: Repository, row: CertificateRow, options: ExportOptions, exported: ExportedFile
) -> None:
    if options.include_private_key:
        repository.audit_key_use(
            AuditAction.KEY_EXPORT,
            row.friendly_name,
            row.public_key_fingerprint,
            f"{exported.format.value} with the certificate {row.fingerprint}",
        )
    else:
        repository.audit(
            AuditAction.CERTIFICATE_EXPORT,
            certificate_target(row.friendly_name, row.fingerprint),
            exported.format.value,
        )
