"""Adding certificates to the store and linking each to its issuer, in either arrival order.

Issuers are found by name hash and confirmed by signature once, when a certificate or its
issuer arrives; the chosen link is stored, so reading a chain never checks a signature.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.pki.certinfo import CertInfo
from certgate.pki.chain import choose_issuer
from certgate.service.views import RowInfoCache, info_to_json
from certgate.store.models import CertificateRow
from certgate.store.repository import Repository


def new_certificate_row(
    cert: x509.Certificate, info: CertInfo, friendly_name: str, *, is_factory: bool = False
) -> CertificateRow:
    return CertificateRow(
        fingerprint=info.fingerprint_sha256,
        der=cert.public_bytes(Encoding.DER),
        friendly_name=friendly_name[:200],
        public_key_fingerprint=info.public_key_fingerprint,
        subject_name_hash=info.subject_name_hash,
        issuer_name_hash=info.issuer_name_hash,
        not_after=info.not_after,
        is_ca=info.is_ca,
        info=info_to_json(info),
        chain_mode="automatic",
        is_factory=is_factory,
    )


class _Parsed:
    """Certificates of this operation, parsed once (rows loaded from the store lazily)."""

    def __init__(self, infos: RowInfoCache) -> None:
        self._certs: dict[int, x509.Certificate] = {}
        self._infos = infos

    def remember(self, row: CertificateRow, cert: x509.Certificate) -> None:
        self._certs[row.id] = cert

    def __call__(self, row: CertificateRow) -> tuple[x509.Certificate, CertInfo]:
        cert = self._certs.get(row.id)
        if cert is None:
            cert = self._certs[row.id] = x509.load_der_x509_certificate(row.der)
        return cert, self._infos(row)


def link_issuers(
    repository: Repository,
    added: Sequence[tuple[CertificateRow, x509.Certificate]],
    infos: RowInfoCache | None = None,
) -> None:
    """Choose issuers for newly added rows (already flushed), and for stored certificates
    that were waiting for one of them."""
    infos = infos or RowInfoCache()
    parsed = _Parsed(infos)
    for row, cert in added:
        parsed.remember(row, cert)
    added_ids = {row.id for row, _ in added}
    waiting = [row for row, _ in added if not infos(row).self_issued]
    subjects = sorted({row.subject_name_hash for row, _ in added})
    waiting += [
        row
        for row in repository.orphans_issued_by(subjects)
        if row.id not in added_ids and not infos(row).self_issued
    ]
    _link(repository, waiting, parsed)


def relink_children(repository: Repository, issuer: CertificateRow) -> None:
    """Before ``issuer`` is deleted: its children may find another issuer (a cross-sign)."""
    children = repository.children_of(issuer.id)
    for child in children:
        child.issuer_id = None
    repository.flush()
    _link(repository, children, _Parsed(RowInfoCache()), excluded=issuer.id)


def _link(
    repository: Repository,
    rows: Sequence[CertificateRow],
    parsed: _Parsed,
    excluded: int | None = None,
) -> None:
    if not rows:
        return
    candidates: dict[str, list[CertificateRow]] = defaultdict(list)
    for candidate in repository.certificates_with_subject_hashes(
        sorted({row.issuer_name_hash for row in rows})
    ):
        if candidate.id != excluded:
            candidates[candidate.subject_name_hash].append(candidate)
    links: dict[int, int] = {}
    for row in rows:
        cert, info = parsed(row)
        issuer = choose_issuer(cert, info, candidates.get(row.issuer_name_hash, []), parsed)
        if issuer is not None:
            links[row.id] = issuer.id
    repository.set_issuers(links)
