"""Importing whatever the CA sent: many files, any format, one transaction.

Each private key links itself to every certificate and request with the same public key,
whichever arrives first; each certificate links to its issuer and its waiting children.
A file that cannot be read adds an error entry and changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.errors import CertgateError
from certgate.limits import fitted_friendly_name
from certgate.pki.certinfo import CertInfo, read_certificate
from certgate.pki.chain import KnownSignatures, Role, role_of
from certgate.pki.der import certificate_parts
from certgate.pki.dnames import common_name, format_name
from certgate.pki.keys import PrivateKey, public_key_fingerprint
from certgate.pki.loader import LoadedFile, load_file
from certgate.service.appliance import Appliance
from certgate.service.collector import collector_paused
from certgate.service.keystore import put_private_key
from certgate.service.linking import NewCertificate, add_certificates, certificate_values
from certgate.service.prechecks import precheck_for
from certgate.service.requests import new_request_row
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.repository import Repository
from certgate.text import visible

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


def import_files(
    app: Appliance,
    files: Sequence[tuple[str, bytes]],
    password: bytes | None = None,
    actor: Actor = APPLIANCE,
    friendly_names: Mapping[str, str] | None = None,
) -> list[ImportEntry]:
    """Import ``(name, content)`` files; the name is only for messages, never for detection.
    ``friendly_names``: file name -> the friendly name of the new certificates it holds (an
    ACME order's name), before any name they would take otherwise."""
    with collector_paused():
        return _import_files(app, files, password, actor, friendly_names or {})


def _import_files(
    app: Appliance,
    files: Sequence[tuple[str, bytes]],
    password: bytes | None,
    actor: Actor,
    friendly_names: Mapping[str, str],
) -> list[ImportEntry]:
    # A large bundle's signatures are checked on another core while this thread reads it.
    with precheck_for(files) as precheck:
        entries: list[ImportEntry] = []
        batch = _Batch(app, precheck.known if precheck.active else None)
        for name, data in files:
            try:
                batch.add_file(name, load_file(data, password), friendly_names.get(name))
            except CertgateError as error:
                entries.append(
                    ImportEntry(name, "error", "file", None, str(error), None, error.code)
                )
        if not batch.files:
            return entries
        batch.read()
        precheck.collect()  # waited for here, not while holding the store's write lock
        with app.store.transaction(actor) as repository:
            finished = batch.finish(repository)
            _record_import(repository, files, finished)
            return finished + entries


def _record_import(
    repository: Repository, files: Sequence[tuple[str, bytes]], entries: list[ImportEntry]
) -> None:
    """One event per import that added something: the files and what each kind added."""
    added = Counter(entry.kind for entry in entries if entry.status in ("added", "linked"))
    if not added:
        return
    names = ", ".join(visible(name) for name, _ in files)  # a client's (a NUL fails PostgreSQL)
    summary = ", ".join(f"{count} {kind}(s)" for kind, count in sorted(added.items()))
    repository.audit(AuditAction.IMPORT, names, f"added {summary}")


class _Batch:
    """One import's objects, added in file order; every lookup is made once for the batch
    and the new certificates are stored together (a query, an ORM object and an INSERT per
    certificate made 10,000-certificate bundles slow)."""

    def __init__(self, app: Appliance, known: KnownSignatures | None) -> None:
        self.app = app
        self.files = 0
        #: id(certificate) -> its DER, fields, row values and signed part, read before the
        #: transaction (the friendly name is set in it, once the store is asked)
        self.read_certificates: dict[int, NewCertificate] = {}
        self.known = known  # signature checks made in advance
        self.entries: list[tuple[str, Kind, Any, str]] = []  # resolved in finish()
        self.new_keys: list[tuple[str, PrivateKey]] = []
        #: fingerprint -> (certificate, info, column values) of each new certificate
        self.new: dict[str, NewCertificate] = {}
        self.request_names: dict[str, str] = {}  # public key -> name, stored or added so far
        self.certificate_names: dict[str, str] = {}  # the same for certificates
        #: id(certificate) -> its DER, when the loader's bulk path made it
        self.ders: dict[int, bytes] = {}
        #: id(certificate) -> the friendly name its PKCS#12 file gave it
        self.given_names: dict[int, str] = {}
        #: id(certificate) of those named by the caller, whatever else would name them
        self.named: set[int] = set()

    def add_file(self, name: str, content: LoadedFile, given_name: str | None = None) -> None:
        self.files += 1
        for warning in content.warnings:
            self.entries.append((name, "file", None, warning))
        for key in content.private_keys:
            self.new_keys.append((name, key))
        for csr in content.requests:
            self.entries.append((name, "request", csr, ""))
        for cert in content.certificates:
            self.entries.append((name, "certificate", cert, ""))
        for cert, der in zip(content.certificates, content.certificate_ders, strict=False):
            self.ders[id(cert)] = der
        for cert, friendly_name in zip(content.certificates, content.friendly_names, strict=False):
            if friendly_name:
                self.given_names[id(cert)] = friendly_name
        if given_name:
            self.named.update(id(cert) for cert in content.certificates)
            for cert in content.certificates:
                self.given_names[id(cert)] = given_name

    def read(self) -> None:
        """Every certificate's DER and fields: no store needed, so done before the write
        transaction begins (a large bundle takes a second to read)."""
        for _, kind, cert, _ in self.entries:
            if kind == "certificate" and id(cert) not in self.read_certificates:
                der = self.ders.get(id(cert)) or cert.public_bytes(Encoding.DER)
                info = read_certificate(cert, der, warning_free=id(cert) in self.ders)
                values = certificate_values(cert, info, info.issued_to, der=der)
                parts = certificate_parts(der)
                self.read_certificates[id(cert)] = NewCertificate(
                    cert, info, values, parts[0] if parts else None
                )

    def finish(self, repository: Repository) -> list[ImportEntry]:
        self.repository = repository
        self.read()
        infos = {key: item.info for key, item in self.read_certificates.items()}
        existing = self.repository.certificate_ids_with_fingerprints(
            [info.fingerprint_sha256 for info in infos.values()]
        )
        public_keys = [info.public_key_fingerprint for info in infos.values()]
        key_ids = {public_key_fingerprint(key.public_key()) for _, key in self.new_keys}
        key_ids |= self.repository.key_fingerprints(public_keys)
        self.request_names = self.repository.request_names_by_public_key(public_keys)
        self.certificate_names = self.repository.certificate_names_by_public_key(public_keys)
        results: list[ImportEntry] = []
        pending: list[tuple[str, CertInfo, bool]] = []  # (file, info, added by this entry)
        for name, kind, obj, message in self.entries:
            if kind == "file":
                results.append(ImportEntry(name, "added", "file", None, message))
            elif kind == "request":
                results.append(self._add_request(name, obj))
            else:
                info = infos[id(obj)]
                added = self._add_certificate(self.read_certificates[id(obj)], existing)
                pending.append((name, info, added))
        new_ids = self._store_certificates()
        for name, info, added in pending:
            fingerprint = info.fingerprint_sha256
            row_id = new_ids[fingerprint] if added else existing.get(fingerprint)
            if row_id is None:  # twice in this import: present, with the first one's id
                row_id = new_ids[fingerprint]
            results.append(_certificate_entry(name, info, added, row_id, key_ids))
        # Keys last, so a key arriving with its certificate or request reports the link.
        key_results = [self._add_key(name, key) for name, key in self.new_keys]
        return key_results + results

    def _add_certificate(self, item: NewCertificate, existing: dict[str, int]) -> bool:
        """Queue a new certificate (stored at the end of the batch); False when its
        fingerprint is already stored or earlier in the batch."""
        info = item.info
        if info.fingerprint_sha256 in existing or info.fingerprint_sha256 in self.new:
            return False
        given = self.given_names.get(id(item.cert))
        name = given if id(item.cert) in self.named and given else self._friendly_name(info, given)
        item.values["friendly_name"] = fitted_friendly_name(name)
        self.new[info.fingerprint_sha256] = item
        self.certificate_names.setdefault(info.public_key_fingerprint, item.values["friendly_name"])
        return True

    def _store_certificates(self) -> dict[str, int]:
        """Store the new certificates linked to their issuers (and link stored ones that
        were waiting for them); returns fingerprint -> id."""
        ids = add_certificates(self.repository, list(self.new.values()), self.known)
        return dict(zip(self.new, ids, strict=True))

    def _friendly_name(self, info: CertInfo, given: str | None) -> str:
        """A CA-signed certificate takes its request's name; one from a PKCS#12 file the
        name the file gives it (a copy from another appliance keeps its name); a renewal its
        predecessor's."""
        request_name = self.request_names.get(info.public_key_fingerprint)
        if request_name is not None:
            return request_name
        if given:
            return given
        if not info.is_ca:
            other_name = self.certificate_names.get(info.public_key_fingerprint)
            if other_name is not None:
                return other_name
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
        self.request_names.setdefault(row.public_key_fingerprint, row.friendly_name)
        return ImportEntry(
            name, "added", "request", row.id, f"certificate request {row.subject}", row.fingerprint
        )


def _request_name(csr: x509.CertificateSigningRequest) -> str:
    name = common_name(csr.subject) or format_name(csr.subject) or "imported request"
    return fitted_friendly_name(name)


def _certificate_entry(
    name: str, info: CertInfo, added: bool, row_id: int, key_ids: set[str]
) -> ImportEntry:
    label = f"{info.issued_to} (issued by {info.issued_by})"
    if not added:
        return ImportEntry(
            name,
            "present",
            "certificate",
            row_id,
            f"{label} is already stored",
            info.fingerprint_sha256,
        )
    has_key = info.public_key_fingerprint in key_ids
    if has_key and role_of(info, has_private_key=True) is Role.SERVER:
        return ImportEntry(
            name,
            "linked",
            "certificate",
            row_id,
            f"{label} added and linked to its private key",
            info.fingerprint_sha256,
        )
    return ImportEntry(
        name, "added", "certificate", row_id, f"{label} added", info.fingerprint_sha256
    )
