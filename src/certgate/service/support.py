"""The support package of the guide's "Update the Appliance": one .zip holding the Status >
Basics document, the settings without secrets, every certificate and its chain as PEM, the
warnings of each and the address assignments. Never a private key, a password, a token value,
the master key or session data: only what the views below hold is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from certgate.errors import DamagedRowError, ExportError
from certgate.service.appliance import Appliance
from certgate.service.certificates import list_certificates
from certgate.service.networking import list_addresses
from certgate.service.status import ApplianceStatus, appliance_status, statistics
from certgate.service.stored import stored_certificate
from certgate.service.tls_settings import get_settings
from certgate.service.views import CertificateView
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.models import CertificateRow
from certgate.store.repository import Repository
from certgate.text import json_text, visible

#: The file name a download gets (the date is added: ``certgate-support-2026-12-04.zip``).
FILE_STEM = "certgate-support"
EXTENSION = ".zip"
MEDIA_TYPE = "application/zip"

_NOT_FILE_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_README = """\
certgate support package ({created})

Made for the guide's "Update the Appliance" process: send this file to support with the
Status > Basics screenshot. It holds no private key, password, passphrase, token value or
master key.

  status.json, status.txt   Status > Basics (appliance statistics and listeners)
  settings.json             TLS settings (versions, ciphers, port, deadlines)
  addresses.json            each IP address and the certificate assigned to it
  certificates.json         every certificate: subject, issuer, dates, SANs, chain, warnings
  warnings.txt              the warnings of each certificate, readable
  certificates/ID-NAME.pem  each certificate (PEM)
  chains/ID-NAME.pem        each certificate followed by its issuers, nearest first (PEM)
"""


@dataclass(frozen=True)
class SupportPackage:
    data: bytes
    name: str  # the file name without its extension
    certificates: int
    members: list[str]


def build_support_package(
    app: Appliance, actor: Actor = APPLIANCE, *, audited: bool = True
) -> SupportPackage:
    """The zip, in memory; the download is recorded in the audit trail unless not ``audited``
    (a HEAD of the download: nothing leaves). CPU work (a PEM and a chain per certificate):
    faces on an event loop call it in a worker thread."""
    created = app.now()
    status = appliance_status(app)
    settings = get_settings(app)
    addresses = list_addresses(app)
    with app.store.reading() as repository:
        pems = {row.fingerprint: _pem(row) for row in repository.all_certificates()}
    # listed after the DER was read: a certificate deleted in between is simply left out
    views = [view for view in list_certificates(app) if view.fingerprint_sha256 in pems]
    buffer = io.BytesIO()
    members: list[str] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def add(name: str, content: str) -> None:  # read with cat and less: controls escaped
            archive.writestr(name, visible(content, keep="\n"))
            members.append(name)

        add("README.txt", _README.format(created=created.isoformat(timespec="seconds")))
        add("status.json", _json(_plain(status)))
        add("status.txt", _status_text(status))
        add("settings.json", _json({"tls": _plain(settings)}))
        add("addresses.json", _json(_plain(addresses)))
        add("certificates.json", _json(_plain(views)))
        add("warnings.txt", _warnings_text(views))
        for view in views:
            stem = _member_stem(view.id, view.friendly_name)
            add(f"certificates/{stem}.pem", pems[view.fingerprint_sha256])
            chain = [pems[fingerprint] for fingerprint in view.chain if fingerprint in pems]
            add(f"chains/{stem}.pem", "".join(chain))
    if audited:
        with app.store.transaction(actor) as repository:
            _record(repository, len(views))
    return SupportPackage(
        data=buffer.getvalue(),
        name=f"{FILE_STEM}-{created:%Y-%m-%d}",
        certificates=len(views),
        members=members,
    )


def save_support_package(app: Appliance, out: Path, actor: Actor = APPLIANCE) -> SupportPackage:
    """Write the zip to ``out`` (replaced if it exists), or say why it cannot be written; the
    audit event in the transaction that writes it: a package not written is not recorded, and
    one the audit trail refuses (a read-only store) is not written."""
    package = build_support_package(app, actor, audited=False)
    with app.store.transaction(actor) as repository:
        _record(repository, package.certificates)
        repository.flush()  # before the file: one the audit trail refuses is not written
        try:
            out.write_bytes(package.data)
        except OSError as error:
            raise ExportError(f"cannot write {out}: {error.strerror}") from None
    return package


def _record(repository: Repository, certificates: int) -> None:
    repository.audit(
        AuditAction.SUPPORT_PACKAGE, "appliance", f"{certificates} certificate(s), no keys"
    )


def _member_stem(identifier: int, friendly_name: str) -> str:
    """``12-Business-Company``: the id keeps two certificates of one name apart."""
    name = _NOT_FILE_SAFE.sub("-", friendly_name).strip("-.")[:60]
    return f"{identifier}-{name}" if name else str(identifier)


def _pem(row: CertificateRow) -> str:
    """The certificate in PEM; one whose stored DER no longer parses, named as such."""
    try:
        certificate = stored_certificate(row)
    except DamagedRowError as error:
        return f"# {error}\n"
    return certificate.public_bytes(Encoding.PEM).decode("ascii")


def _plain(value: Any) -> Any:
    """A view (frozen dataclasses, lists, times, enums) as JSON values, field by field."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _json(value: Any) -> str:
    return json_text(value) + "\n"


def _status_text(report: ApplianceStatus) -> str:
    """Status > Basics as the page shows it: one line per statistic, then each listener."""
    lines = ["Status > Basics", ""]
    lines += [f"{label + ':':28} {value}" for label, value in statistics(report)]
    lines += [f"    {finding.severity}: {finding.message}" for finding in report.diagnostics]
    listeners = report.listeners
    lines.append("")
    if listeners is None:
        lines.append("Listeners: no 'certgate serve' runs on this data directory")
    else:
        lines.append(f"Listeners ({len(listeners)}):")
        for listener in listeners:
            error = listener.get("error")
            lines.append(
                f"  {listener.get('address')}:{listener.get('port')}  {listener.get('state')}  "
                f"{listener.get('fingerprint') or ''}" + (f"  {error}" if error else "")
            )
    return "\n".join(lines) + "\n"


def _warnings_text(views: list[CertificateView]) -> str:
    lines: list[str] = []
    for view in views:
        lines.append(f"{view.id}  {view.friendly_name}  ({view.fingerprint_sha256})")
        lines.extend(f"    {warning.code}: {warning.message}" for warning in view.warnings)
        if not view.warnings:
            lines.append("    no warnings")
    return "\n".join(lines) + "\n"
