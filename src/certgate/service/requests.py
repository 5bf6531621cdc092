"""Certificate signing requests: list, show (with the PEM "Request Data"), delete."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.errors import DamagedRowError
from certgate.pki.certinfo import sha1_fingerprint
from certgate.pki.dnames import format_name
from certgate.pki.keys import public_key_fingerprint
from certgate.pki.names import describe_san
from certgate.service.appliance import Appliance
from certgate.service.keystore import remove_unused_key
from certgate.service.lookup import find_request
from certgate.service.stored import stored_request
from certgate.service.views import RequestView
from certgate.store.audit import APPLIANCE, Actor, AuditAction, certificate_target
from certgate.store.models import RequestRow
from certgate.store.repository import Repository

log = logging.getLogger("certgate.requests")


def new_request_row(csr: x509.CertificateSigningRequest, friendly_name: str) -> RequestRow:
    der = csr.public_bytes(Encoding.DER)
    return RequestRow(
        fingerprint=hashlib.sha256(der).hexdigest(),
        der=der,
        friendly_name=friendly_name,
        public_key_fingerprint=public_key_fingerprint(csr.public_key()),
        subject=format_name(csr.subject),
        sans=[[san.type, san.value] for san in (describe_san(n) for n in request_sans(csr))],
    )


def request_sans(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return []
    return list(extension.value)


def _view(repository: Repository, row: RequestRow, *, whole: bool = True) -> RequestView:
    """Certificates with the request's key stored before it was made are those it renews (a
    renewal request is signed with their key); those that arrived later were issued for it.
    A request whose DER is damaged is refused, unless not ``whole``: then (in a list, on the
    way to its deletion) it is shown from its row, without the PEM it no longer has."""
    try:
        pem = stored_request(row).public_bytes(Encoding.PEM).decode("ascii")
    except DamagedRowError as error:
        if whole:
            raise
        log.warning("%s", error)
        pem = ""
    with_key = repository.certificates_with_public_key(row.public_key_fingerprint)
    return RequestView(
        id=row.id,
        fingerprint_sha256=row.fingerprint,
        fingerprint_sha1=sha1_fingerprint(row.der),
        friendly_name=row.friendly_name,
        subject=row.subject,
        sans=[f"{kind} - {value}" for kind, value in row.sans],
        has_private_key=repository.key(row.public_key_fingerprint) is not None,
        certificate_ids=[cert.id for cert in with_key if cert.created_at >= row.created_at],
        renews=[cert.id for cert in with_key if cert.created_at < row.created_at],
        created_at=row.created_at,
        pem=pem,
    )


def list_requests(app: Appliance) -> list[RequestView]:
    with app.store.reading() as repository:
        return [_view(repository, row, whole=False) for row in repository.all_requests()]


def show_request(app: Appliance, reference: str | int) -> RequestView:
    with app.store.reading() as repository:
        return _view(repository, find_request(repository, reference))


@dataclass(frozen=True)
class KeyAfterDeletion:
    """What deleting a set of requests does to one request's private key, said on the
    confirmation before it is done: the rule of ``keystore.remove_unused_key``."""

    request: RequestView
    used_by: list[str]  # what keeps the key: "certificate 'shop'", "request 'shop (renewal)'"
    deleted: bool  # the key goes (nothing left uses it)


def keys_after_deleting(app: Appliance, request_ids: Sequence[int]) -> list[KeyAfterDeletion]:
    """For each request of ``request_ids``: whether its key stays, and what keeps it. A key
    shared by a certificate (a renewal request's) or by a request not being deleted stays."""
    chosen = set(request_ids)
    found: list[KeyAfterDeletion] = []
    with app.store.reading() as repository:
        for request_id in request_ids:
            row = find_request(repository, request_id)
            view = _view(repository, row, whole=False)
            fingerprint = row.public_key_fingerprint
            used_by = [
                f"certificate {cert.friendly_name!r}"
                for cert in repository.certificates_with_public_key(fingerprint)
            ] + [
                f"request {other.friendly_name!r}"
                for other in repository.requests_with_public_key(fingerprint)
                if other.id not in chosen
            ]
            found.append(KeyAfterDeletion(view, used_by, view.has_private_key and not used_by))
    return found


@dataclass(frozen=True)
class DeletedRequest:
    id: int
    private_key_deleted: bool


def delete_request(
    app: Appliance, reference: str | int, actor: Actor = APPLIANCE
) -> DeletedRequest:
    """Delete a request (a damaged one too); its key goes too unless a certificate or
    another request uses it."""
    with app.store.transaction(actor) as repository:
        row = find_request(repository, reference)
        repository.delete(row)
        repository.flush()
        key_deleted = remove_unused_key(repository, row.public_key_fingerprint)
        repository.audit(
            AuditAction.REQUEST_DELETE,
            certificate_target(row.friendly_name, row.fingerprint),
            "its private key too" if key_deleted else "",
        )
        return DeletedRequest(row.id, key_deleted)
