"""Importing whatever the CA sent: many files, any format, one transaction.

Each private key links itself to every certificate and request with the same public key,
whichever arrives first; each certificate links to its issuer and its waiting children.
A file that cannot be read adds an error entry and changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509

from certgate.errors import CertgateError
from certgate.pki.certinfo import CertInfo, common_name, format_name, read_certificate
from certgate.pki.keys import PrivateKey, public_key_fingerprint
from certgate.pki.loader import LoadedFile, load_file
from certgate.service.appliance import Appliance
from certgate.service.keystore import put_private_key
from certgate.service.linking import link_issuers, new_certificate_row
from certgate.service.requests import new_request_row
from certgate.service.views import RowInfoCache
from certgate.store.models import CertificateRow
from certgate.store.repository import Repository

Status = Literal["added", "present", "linked", "error"]
Kind = Literal["certificate", "private-key", "request", "file"]


@dataclass(frozen=True)
class ImportEntry:
    file: str
    status: Status
    kind: Kind
    id: int | None
    message: str
    fingerprint_sha256: str | None = None
    error_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def import_files(
    app: Appliance,
    files: Sequence[tuple[str, bytes]],
    password: bytes | None = None,
    actor: str = "system",
) -> list[ImportEntry]:
    """Import ``(name, content)`` files; the name is only for messages, never for detection."""
    entries: list[ImportEntry] = []
    loaded: list[tuple[str, LoadedFile]] = []
    for name, data in files:
        try:
            loaded.append((name, load_file(data, password)))
        except CertgateError as error:
            entries.append(ImportEntry(name, "error", "file", None, str(error), None, error.code))
    if not loaded:
        return entries
    with app.store.transaction(actor) as repository:
        batch = _Batch(repository, app)
        for name, content in loaded:
            batch.add_file(name, content)
        entries = batch.finish() + entries
    return entries


class _Batch:
    def __init__(self, repository: Repository, app: Appliance) -> None:
        self.repository = repository
        self.app = app
        self.entries: list[tuple[str, Kind, Any, str]] = []  # resolved in finish()
        self.new_rows: list[tuple[CertificateRow, x509.Certificate]] = []
        self.new_keys: list[tuple[str, PrivateKey]] = []
        self.seen: dict[str, CertificateRow] = {}

    def add_file(self, name: str, content: LoadedFile) -> None:
        for warning in content.warnings:
            self.entries.append((name, "file", None, warning))
        for key in content.private_keys:
            self.new_keys.append((name, key))
        for csr in content.requests:
            self.entries.append((name, "request", csr, ""))
        for cert in content.certificates:
            self.entries.append((name, "certificate", cert, ""))

    def finish(self) -> list[ImportEntry]:
        certs = [item for item in self.entries if item[1] == "certificate"]
        infos = {id(item[2]): read_certificate(item[2]) for item in certs}
        existing = {
            row.fingerprint: row
            for row in self.repository.certificates_with_fingerprints(
                [info.fingerprint_sha256 for info in infos.values()]
            )
        }
        key_ids = {public_key_fingerprint(key.public_key()) for _, key in self.new_keys}
        key_ids |= self.repository.key_fingerprints(
            [i.public_key_fingerprint for i in infos.values()]
        )
        results: list[ImportEntry] = []
        for name, key in self.new_keys:
            results.append(self._add_key(name, key))
        pending: list[tuple[str, CertInfo, CertificateRow | None]] = []
        for name, kind, obj, message in self.entries:
            if kind == "file":
                results.append(ImportEntry(name, "added", "file", None, message))
            elif kind == "request":
                results.append(self._add_request(name, obj))
            else:
                info = infos[id(obj)]
                pending.append((name, info, self._add_certificate(obj, info, existing)))
        self.repository.flush()
        link_issuers(self.repository, self.new_rows, RowInfoCache())
        for name, info, row in pending:
            results.append(_certificate_entry(name, info, row, existing, key_ids))
        return results

    def _add_certificate(
        self, cert: x509.Certificate, info: CertInfo, existing: dict[str, CertificateRow]
    ) -> CertificateRow | None:
        """A new row, or None when the fingerprint is already stored (or earlier in the batch)."""
        if info.fingerprint_sha256 in existing:
            return None
        if info.fingerprint_sha256 in self.seen:  # twice in this import: show it as present
            existing[info.fingerprint_sha256] = self.seen[info.fingerprint_sha256]
            return None
        row = new_certificate_row(cert, info, self._friendly_name(info))
        self.seen[info.fingerprint_sha256] = row
        self.repository.add(row)
        self.new_rows.append((row, cert))
        return row

    def _friendly_name(self, info: CertInfo) -> str:
        """A CA-signed certificate takes its request's name; a renewal its predecessor's."""
        for request in self.repository.requests_with_public_key(info.public_key_fingerprint):
            return request.friendly_name
        if not info.is_ca:
            for other in self.repository.certificates_with_public_key(info.public_key_fingerprint):
                return other.friendly_name
        return info.issued_to

    def _add_key(self, name: str, key: PrivateKey) -> ImportEntry:
        row, added = put_private_key(self.repository, self.app.sealer, key)
        fingerprint = row.public_key_fingerprint
        if not added:
            return ImportEntry(
                name,
                "present",
                "private-key",
                row.id,
                "this private key is already stored",
                fingerprint,
            )
        self.repository.flush()
        users = [
            f"certificate {c.friendly_name!r}"
            for c in self.repository.certificates_with_public_key(fingerprint)
        ]
        users += [
            f"request {r.friendly_name!r}"
            for r in self.repository.requests_with_public_key(fingerprint)
        ]
        if users:
            return ImportEntry(
                name,
                "linked",
                "private-key",
                row.id,
                "private key linked to " + ", ".join(users),
                fingerprint,
            )
        return ImportEntry(
            name,
            "added",
            "private-key",
            row.id,
            "private key stored; it will link to its certificate when that is imported",
            fingerprint,
        )

    def _add_request(self, name: str, csr: x509.CertificateSigningRequest) -> ImportEntry:
        row = new_request_row(csr, _request_name(csr))
        existing = self.repository.request_by_fingerprint(row.fingerprint)
        if existing is not None:
            return ImportEntry(
                name,
                "present",
                "request",
                existing.id,
                "this request is already stored",
                row.fingerprint,
            )
        self.repository.add(row)
        self.repository.flush()
        return ImportEntry(
            name, "added", "request", row.id, f"certificate request {row.subject}", row.fingerprint
        )


def _request_name(csr: x509.CertificateSigningRequest) -> str:
    return common_name(csr.subject) or format_name(csr.subject) or "imported request"


def _certificate_entry(
    name: str,
    info: CertInfo,
    row: CertificateRow | None,
    existing: dict[str, CertificateRow],
    key_ids: set[str],
) -> ImportEntry:
    label = f"{info.issued_to} (issued by {info.issued_by})"
    if row is None:
        stored = existing.get(info.fingerprint_sha256)
        return ImportEntry(
            name,
            "present",
            "certificate",
            stored.id if stored else None,
            f"{label} is already stored",
            info.fingerprint_sha256,
        )
    if info.public_key_fingerprint in key_ids and not info.is_ca:
        return ImportEntry(
            name,
            "linked",
            "certificate",
            row.id,
            f"{label} added and linked to its private key",
            info.fingerprint_sha256,
        )
    return ImportEntry(
        name, "added", "certificate", row.id, f"{label} added", info.fingerprint_sha256
    )
