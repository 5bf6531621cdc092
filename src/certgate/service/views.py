"""What the faces show: frozen views built from store rows, with derived chain and warnings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from certgate.pki.certinfo import CertInfo, read_certificate
from certgate.pki.chain import role_of, walk_chain
from certgate.pki.diagnostics import (
    EXPIRING_SOON,
    ChainState,
    Warning,
    WarningCode,
    derive_warnings,
)
from certgate.pki.lint import LintFinding
from certgate.pki.names import SubjectAltName
from certgate.service.stored import stored_certificate
from certgate.store.models import CertificateRow
from certgate.store.repository import manual_chain

log = logging.getLogger("certgate.views")


@dataclass(frozen=True)
class CertificateView:
    id: int
    fingerprint_sha256: str
    fingerprint_sha1: str
    friendly_name: str
    subject: str
    issuer: str
    issued_to: str
    issued_by: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    sans: list[str]
    role: str
    has_private_key: bool
    chain_mode: str
    chain: list[str]  # fingerprints, leaf first
    chain_subjects: list[str]  # subjects of the issuers, nearest first
    warnings: list[Warning]
    is_factory: bool
    signature_type: str
    public_key: str
    authority_info_access: list[str]
    ip_addresses: list[str]
    #: CA/Browser Forum findings: on a certificate's own view only (None in lists, where
    #: linting 100,000 certificates would take minutes), for CA-issued server certificates.
    lint: tuple[LintFinding, ...] | None = None


@dataclass(frozen=True)
class RequestView:
    id: int
    fingerprint_sha256: str
    fingerprint_sha1: str
    friendly_name: str
    subject: str
    sans: list[str]
    has_private_key: bool
    certificate_ids: list[int]  # certificates issued for this request's key
    created_at: dt.datetime
    pem: str
    renews: list[int] = dataclasses.field(default_factory=list)  # had its key before it


# --- CertInfo <-> the row's cached ``info`` --------------------------------------------------


_INFO_FIELDS = tuple(field.name for field in dataclasses.fields(CertInfo))


def info_to_json(info: CertInfo) -> dict[str, Any]:
    """Shallow on purpose (every field is immutable): ``dataclasses.asdict`` deep-copies,
    which cost a fifth of a 10,000-certificate import."""
    data = {name: getattr(info, name) for name in _INFO_FIELDS}
    data["not_before"] = info.not_before.isoformat()
    data["not_after"] = info.not_after.isoformat()
    data["sans"] = [[san.type, san.value] for san in info.sans]
    return data


def info_from_json(data: dict[str, Any]) -> CertInfo:
    values = dict(data)
    values["not_before"] = dt.datetime.fromisoformat(values["not_before"])
    values["not_after"] = dt.datetime.fromisoformat(values["not_after"])
    values["sans"] = tuple(SubjectAltName(kind, value) for kind, value in values["sans"])
    values["authority_info_access"] = tuple(values["authority_info_access"])
    values["parse_warnings"] = tuple(values["parse_warnings"])
    values.setdefault("self_signed", values["self_issued"])  # cached before the field existed
    return CertInfo(**values)


#: What ``info_from_json`` raises for details that do not read.
UNREADABLE_INFO = (KeyError, TypeError, ValueError, AttributeError)


def row_info(row: CertificateRow) -> CertInfo:
    """The certificate's details from the copy kept beside its DER; where that copy no
    longer reads (a damaged row, fields another version wrote), from the DER again, as they
    were when it was stored."""
    try:
        return info_from_json(row.info)
    except UNREADABLE_INFO:
        log.warning(
            "the details kept for certificate %d (%r) do not read: read from its DER again",
            row.id,
            row.friendly_name,
        )
        return read_certificate(stored_certificate(row), row.der)


class RowInfoCache:
    """Parses each row's ``info`` once per operation."""

    def __init__(self) -> None:
        self._infos: dict[int, CertInfo] = {}

    def __call__(self, row: CertificateRow) -> CertInfo:
        info = self._infos.get(row.id)
        if info is None:
            info = self._infos[row.id] = row_info(row)
        return info


class Chained(Protocol, Hashable):
    """What a chain is walked by: a stored row, or its ``ChainLink`` columns alone."""

    @property
    def issuer_id(self) -> int | None: ...
    @property
    def chain_mode(self) -> str: ...
    @property
    def manual_chain(self) -> Sequence[str] | None: ...


ChainedT = TypeVar("ChainedT", bound=Chained)


def chain_rows(
    row: ChainedT,
    lookup: Callable[[int], ChainedT | None],
    by_fingerprint: Callable[[str], ChainedT | None],
) -> list[ChainedT]:
    """The issuers of ``row`` nearest first: its manual chain, or the automatic links."""
    if row.chain_mode == "manual" and row.manual_chain:
        found = [
            by_fingerprint(fingerprint) for fingerprint in manual_chain(row.manual_chain) or ()
        ]
        return [link for link in found if link is not None]
    return walk_chain(row, lambda node: lookup(node.issuer_id) if node.issuer_id else None)


class ViewRow(Protocol):
    """What a view takes from a certificate's row besides its parsed fields: a stored row,
    or its ``CertificateSummary``."""

    @property
    def id(self) -> int: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def friendly_name(self) -> str: ...
    @property
    def chain_mode(self) -> str: ...
    @property
    def is_factory(self) -> bool: ...


ViewRowT = TypeVar("ViewRowT", bound=ViewRow)


def certificate_view(
    row: ViewRowT,
    chain: Sequence[ViewRowT],
    *,
    has_private_key: bool,
    ip_addresses: list[str],
    infos: Callable[[ViewRowT], CertInfo],
    sha1: str,
    now: dt.datetime,
    hostnames: Mapping[str, Sequence[str]] | None = None,
) -> CertificateView:
    """``hostnames``: address -> the hostnames clients use for it, for each address of
    ``ip_addresses`` that has some (a certificate that misses one is warned about)."""
    info = infos(row)
    chain_infos = [infos(link) for link in chain]
    top = chain_infos[-1] if chain_infos else info
    state = ChainState(issuers=chain_infos, complete=top.self_signed)
    return CertificateView(
        id=row.id,
        fingerprint_sha256=row.fingerprint,
        fingerprint_sha1=sha1,
        friendly_name=row.friendly_name,
        subject=info.subject,
        issuer=info.issuer,
        issued_to=info.issued_to,
        issued_by=info.issued_by,
        serial=info.serial,
        not_before=info.not_before,
        not_after=info.not_after,
        sans=san_texts(info),
        role=role_of(info, has_private_key=has_private_key).value,
        has_private_key=has_private_key,
        chain_mode=row.chain_mode,
        chain=[row.fingerprint] + [link.fingerprint for link in chain],
        chain_subjects=[link_info.subject for link_info in chain_infos],
        warnings=_factory_noted(
            derive_warnings(
                info,
                state,
                has_private_key=has_private_key,
                now=now,
                hostnames=hostnames,
                presented=bool(ip_addresses),
            ),
            is_factory=row.is_factory,
        ),
        is_factory=row.is_factory,
        signature_type=info.signature_type,
        public_key=info.public_key,
        authority_info_access=list(info.authority_info_access),
        ip_addresses=ip_addresses,
    )


def san_texts(info: CertInfo) -> list[str]:
    """The SANs as a view shows them and a search finds them (``dNSName - www.example.com``)."""
    return [str(san) for san in info.sans]


FACTORY_NOTE = (
    " (this is the factory default certificate, which ships with every appliance:"
    " the certificate and this warning may be ignored)"
)


#: Not about the factory certificate itself but about the names clients were told to use:
#: the remedy (assign a certificate that covers them) is never to ignore it.
_NOT_IGNORABLE = frozenset({WarningCode.HOSTNAME_NOT_COVERED})


def _factory_noted(warnings: list[Warning], *, is_factory: bool) -> list[Warning]:
    """The guide: the factory certificate's warning "should be ignored"; say so with it."""
    if not is_factory:
        return warnings
    return [
        warning
        if warning.code in _NOT_IGNORABLE
        else dataclasses.replace(warning, message=warning.message + FACTORY_NOTE)
        for warning in warnings
    ]


def valid_until(infos: Iterable[CertInfo], now: dt.datetime) -> dt.datetime:
    """When the first warning that depends on the clock changes for a certificate with these
    parsed fields (its own and its chain's): one becomes valid, expiring soon, expired, or
    the day count of "expires in N day(s)" drops. Until then its view stands."""
    moments: list[dt.datetime] = []
    for info in infos:
        moments += [info.not_before, info.not_after - EXPIRING_SOON, info.not_after]
        left = info.not_after - now
        if dt.timedelta(0) < left <= EXPIRING_SOON:
            moments.append(info.not_after - dt.timedelta(days=left.days))
    # at ``now`` exactly: the change is an instant away, the next read builds it again
    return min((moment for moment in moments if moment >= now), default=_NEVER)


_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)
