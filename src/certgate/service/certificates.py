"""Certificates: list, show, create (self-signed or request), delete, set the chain."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeVar

from cryptography import x509

from certgate.errors import InUseError, ProtectedError, ValidationError
from certgate.limits import (
    DEFAULT_VALIDITY_DAYS,
    FRIENDLY_NAME_MAX,
    MANUAL_CHAIN_MAX,
    SANS_MAX,
    VALIDITY_DAYS_MAX,
    VALIDITY_DAYS_MIN,
    fitted_friendly_name,
)
from certgate.pki.builders import build_request, build_self_signed
from certgate.pki.certinfo import read_certificate, sha1_fingerprint
from certgate.pki.chain import MAX_CHAIN_DEPTH, Role, order_chain
from certgate.pki.keys import DEFAULT_KEY_SPEC, KeySpec, generate_private_key
from certgate.pki.lint import lint_server_certificate
from certgate.pki.loader import load_file
from certgate.pki.names import (
    SubjectAltName,
    SubjectFields,
    build_subject,
    looks_like_dns_name,
    parse_san,
    san_notices,
)
from certgate.service import guard
from certgate.service.appliance import Appliance
from certgate.service.keystore import put_private_key, remove_unused_key
from certgate.service.linking import (
    NewCertificate,
    add_certificates,
    certificate_values,
    chains_broken_by_deleting,
    new_certificate_row,
    relink_children,
)
from certgate.service.lookup import find_certificate
from certgate.service.requests import new_request_row
from certgate.service.stored import stored_certificate
from certgate.service.view_cache import Listed, Listing, ViewCache
from certgate.service.views import (
    CertificateView,
    RowInfoCache,
    certificate_view,
    chain_rows,
    row_info,
)
from certgate.store.audit import APPLIANCE, Actor, AuditAction, certificate_target
from certgate.store.models import CertificateRow, RequestRow
from certgate.store.repository import Repository
from certgate.text import check_name

T = TypeVar("T")

# --- reading ---------------------------------------------------------------------------------


def list_certificates(app: Appliance) -> list[CertificateView]:
    """Every certificate with its chain and warnings, read in a handful of queries (for a
    one-off reader: the faces that ask again use ``cached_certificate_views``)."""
    with app.store.reading() as repository:
        listing = ViewCache().listing(repository)
        return listing.views(repository, listing.entries, app.now())


def show_certificate(app: Appliance, reference: str | int) -> CertificateView:
    """One certificate's view, with the CA/Browser Forum findings a list leaves out."""
    with app.store.reading() as repository:
        row = find_certificate(repository, reference)
        view = view_of(app, repository, row)
    if view.role != Role.SERVER or row_info(row).self_signed:
        return view  # the Baseline Requirements are for what a CA issues to a server
    return dataclasses.replace(view, lint=lint_server_certificate(row.der))


def view_of(app: Appliance, repository: Repository, row: CertificateRow) -> CertificateView:
    """One certificate's view, its chain walked through the store."""
    addresses = repository.ip_addresses_of(row.id)
    return certificate_view(
        row,
        chain_rows(row, repository.certificate, repository.certificate_by_fingerprint),
        has_private_key=repository.key(row.public_key_fingerprint) is not None,
        ip_addresses=[address.address for address in addresses],
        infos=RowInfoCache(),
        sha1=sha1_fingerprint(row.der),
        now=app.now(),
        hostnames={address.address: address.hostnames for address in addresses},
    )


# --- creating --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateForm:
    """The guide's Create page."""

    friendly_name: str
    subject: SubjectFields
    sans: list[str] = field(default_factory=list)
    key: KeySpec = DEFAULT_KEY_SPEC
    days: int = DEFAULT_VALIDITY_DAYS


#: The guide: a server certificate has "one or more subject alternative names"; clients match
#: the SANs only, so a certificate without one is refused by every browser.
NO_SAN_REASON = (
    "enter one or more subject alternative names (or a DNS name as the Common Name, "
    "which becomes the first); browsers match only these names"
)


@dataclass(frozen=True)
class Created:
    kind: Literal["certificate", "request"]
    id: int
    fingerprint_sha256: str
    notices: list[str]
    added: bool = True  # False: the very same object was stored already


def create(
    app: Appliance,
    form: CreateForm,
    kind: Literal["self-signed", "request"],
    actor: Actor = APPLIANCE,
) -> Created:
    """Make a key and a self-signed certificate or a certificate signing request.

    Everything is checked before the (slow) key generation; the key and the new object are
    stored in one transaction.
    """
    checked = check_form(form)
    friendly_name, subject, general_names = checked.friendly_name, checked.subject, checked.names
    notices = checked.notices
    key = generate_private_key(form.key)
    with app.store.transaction(actor) as repository:
        put_private_key(repository, app.sealer, key)
        row: CertificateRow | RequestRow
        made: Literal["certificate", "request"]
        if kind == "request":
            row = new_request_row(build_request(key, subject, general_names), friendly_name)
            made, action, how = "request", AuditAction.REQUEST_CREATE, "new key"
        else:
            cert = build_self_signed(key, subject, general_names, days=form.days, now=app.now())
            row = new_certificate_row(cert, read_certificate(cert), friendly_name)
            made, action = "certificate", AuditAction.CERTIFICATE_CREATE
            how = "self-signed, new key"
        repository.add(row)
        repository.flush()
        target = certificate_target(friendly_name, row.fingerprint)
        repository.audit(action, target, f"{how}, {form.key.label}")
        return Created(made, row.id, row.fingerprint, notices)


@dataclass(frozen=True)
class CheckedForm:
    """The Create form's fields, checked and built: what a certificate or request carries."""

    friendly_name: str
    subject: x509.Name
    names: list[x509.GeneralName]  # the SANs
    notices: list[str]


def check_form(form: CreateForm) -> CheckedForm:
    """Check every field of the form (the key aside) and build the subject and SANs."""
    friendly_name = checked_friendly_name(form.friendly_name)
    if not VALIDITY_DAYS_MIN <= form.days <= VALIDITY_DAYS_MAX:
        raise ValidationError(
            "days",
            f"validity must be between {VALIDITY_DAYS_MIN} and {VALIDITY_DAYS_MAX} days",
        )
    subject, notices = build_subject(form.subject)
    typed = [(index, text) for index, text in enumerate(form.sans) if text.strip()]
    if len(typed) > SANS_MAX:
        raise ValidationError(
            "subject_alternative_names", f"{len(typed)} entries: at most {SANS_MAX} are allowed"
        )
    parsed = [parse_san(text, index) for index, text in typed]
    common_name = form.subject.common_name.strip()
    if looks_like_dns_name(common_name):
        parsed = _common_name_first(parse_san(common_name), parsed, notices)
    general_names = _unique([name for name, _ in parsed])
    if not general_names:
        raise ValidationError("subject_alternative_names", NO_SAN_REASON)
    notices += san_notices([display for _, display in parsed])
    return CheckedForm(friendly_name, subject, general_names, notices)


def _common_name_first(
    cn_san: tuple[x509.GeneralName, SubjectAltName],
    parsed: list[tuple[x509.GeneralName, SubjectAltName]],
    notices: list[str],
) -> list[tuple[x509.GeneralName, SubjectAltName]]:
    """The guide: a DNS name entered as the Common Name must be the first SAN. Clients match
    SANs only, and some CAs copy only the first SAN into the Common Name they issue."""
    others = [item for item in parsed if item[1] != cn_san[1]]
    if len(others) == len(parsed):
        notices.append(f"the Common Name {cn_san[1].value} was added as the first SAN")
    elif parsed[0][1] != cn_san[1]:
        notices.append(f"the Common Name {cn_san[1].value} was moved to the first SAN")
    return [cn_san, *others]


def _unique(values: list[T]) -> list[T]:
    """Each value once, in its first place."""
    seen: list[T] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


# --- deleting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deleted:
    id: int
    friendly_name: str
    addresses_moved_to_factory: list[str]
    private_key_deleted: bool
    chains_incomplete: list[str]  # certificates issued under it that lost their chain


def chains_broken_by_deletion(app: Appliance, reference: str | int) -> list[str]:
    """The friendly names of the certificates whose chain deleting this one leaves
    incomplete (shown on the confirmation page before it is done)."""
    with app.store.reading() as repository:
        row = find_certificate(repository, reference)
        return [other.friendly_name for other in chains_broken_by_deleting(repository, row)]


def delete_certificate(
    app: Appliance,
    reference: str | int,
    *,
    reassign_to_factory: bool = False,
    actor: Actor = APPLIANCE,
) -> Deleted:
    """Delete a certificate. The factory certificate is protected; a certificate that secures
    addresses is refused unless the caller confirms handing them to the factory certificate.
    That flag is the guard's confirmation too (``guard.check_moves``): what the move to the
    factory certificate changes for clients (its root, at least) is noted in the audit."""
    with app.store.transaction(actor) as repository:
        row = find_certificate(repository, reference)
        if row.is_factory:
            raise ProtectedError("the factory default certificate may not be removed")
        users = [other for other in repository.certificates_in_manual_chains(row.fingerprint)]
        if users:
            names = ", ".join(repr(other.friendly_name) for other in users)
            raise InUseError(f"the certificate is part of the manual chain of {names}")
        secured = repository.ip_addresses_of(row.id, for_update=True)
        addresses = [address.address for address in secured]
        if addresses and not reassign_to_factory:
            raise InUseError(
                f"the certificate secures {', '.join(addresses)}: assign those addresses to "
                "another certificate first, or confirm handing them to the factory certificate"
            )
        confirmed: list[guard.Concern] = []
        if addresses:
            factory = repository.factory_certificate()
            assert factory is not None  # made by init, never deletable
            moves = [guard.Move(address, factory) for address in secured]
            confirmed = guard.check_moves(repository, moves, confirm=True, now=app.now())
            repository.reassign_addresses(row.id, factory.id)
        broken = [other.friendly_name for other in chains_broken_by_deleting(repository, row)]
        relink_children(repository, row)
        repository.delete(row)
        repository.flush()
        key_deleted = remove_unused_key(repository, row.public_key_fingerprint)
        notes = ["its private key too"] if key_deleted else []
        if addresses:
            notes.append(f"{', '.join(addresses)} now served by the factory certificate")
        if broken:
            notes.append(f"chain now incomplete: {', '.join(broken)}")
        repository.audit(
            AuditAction.CERTIFICATE_DELETE,
            certificate_target(row.friendly_name, row.fingerprint),
            "; ".join(notes) + guard.confirmed_note(confirmed),
        )
        return Deleted(row.id, row.friendly_name, addresses, key_deleted, broken)


# --- renaming and the chain ------------------------------------------------------------------


def rename(
    app: Appliance, reference: str | int, friendly_name: str, actor: Actor = APPLIANCE
) -> None:
    with app.store.transaction(actor) as repository:
        rename_row(repository, find_certificate(repository, reference), friendly_name)


def set_automatic_chain(
    app: Appliance, reference: str | int, actor: Actor = APPLIANCE, *, confirm: bool = False
) -> None:
    """Build the chain from the store again; guarded as a manual chain is."""
    with app.store.transaction(actor) as repository:
        row = find_certificate(repository, reference)
        use_automatic_chain(repository, row, confirm=confirm, now=app.now())


def set_manual_chain(
    app: Appliance,
    reference: str | int,
    pem_chain: bytes,
    actor: Actor = APPLIANCE,
    *,
    confirm: bool = False,
) -> list[str]:
    """Use the given PEM chain, in any order (put nearest issuer first). Each link must really
    have signed the certificate before it; chain certificates are added to the store. Returns
    notices (the chain was put in order). A chain that ends at another root, or that clients
    refuse, for a certificate securing addresses only with ``confirm`` (``guard``)."""
    chain = read_manual_chain(pem_chain)
    with app.store.transaction(actor) as repository:
        row = find_certificate(repository, reference)
        notices, _ = use_manual_chain(repository, row, chain, confirm=confirm, now=app.now())
        return notices


# The steps below work inside a caller's transaction, so that one page's Save Configuration
# (name, chain and addresses) commits as a whole.


def checked_friendly_name(text: str) -> str:
    """A friendly name as typed: required, at most FRIENDLY_NAME_MAX characters, no control
    character (``text.check_name``)."""
    return check_name(text, "friendly_name", FRIENDLY_NAME_MAX)


def rename_row(repository: Repository, row: CertificateRow, friendly_name: str) -> None:
    name = checked_friendly_name(friendly_name)
    previous, row.friendly_name = row.friendly_name, name
    repository.audit(
        AuditAction.CERTIFICATE_RENAME,
        certificate_target(name, row.fingerprint),
        f"was {previous}",
    )


def use_automatic_chain(
    repository: Repository, row: CertificateRow, *, confirm: bool, now: dt.datetime
) -> list[guard.Concern]:
    """The concerns confirmed (``guard.check_chain``)."""
    before = guard.chain_before(repository, row, now)
    row.chain_mode, row.manual_chain = "automatic", None
    concerns = guard.check_chain(repository, row, before, confirm=confirm, now=now)
    repository.audit(
        AuditAction.CERTIFICATE_CHAIN,
        certificate_target(row.friendly_name, row.fingerprint),
        "automatic" + guard.confirmed_note(concerns),
    )
    return concerns


def read_manual_chain(pem_chain: bytes) -> list[x509.Certificate]:
    """The certificates of a manually specified chain; only PEM is accepted, as in the guide."""
    if len(pem_chain) > MANUAL_CHAIN_MAX:
        raise ValidationError(_MANUAL, f"is larger than {MANUAL_CHAIN_MAX} characters")
    loaded = load_file(pem_chain)
    if loaded.format != "PEM" or loaded.private_keys or loaded.requests:
        raise ValidationError(_MANUAL, "only certificate chains in PEM format are accepted")
    return list(loaded.certificates)


_MANUAL = "pem"  # the field of the manually specified chain


def use_manual_chain(
    repository: Repository,
    row: CertificateRow,
    certificates: list[x509.Certificate],
    *,
    confirm: bool,
    now: dt.datetime,
) -> tuple[list[str], list[guard.Concern]]:
    """Returns notices (what was done to the file's order) and the concerns confirmed
    (``guard.check_chain``)."""
    before = guard.chain_before(repository, row, now)
    given = _unique(
        [c for c in certificates if read_certificate(c).fingerprint_sha256 != row.fingerprint]
    )
    if not given:
        raise ValidationError(_MANUAL, "the file holds no chain certificate")
    if len(given) >= MAX_CHAIN_DEPTH:
        raise ValidationError(
            _MANUAL, f"a chain holds at most {MAX_CHAIN_DEPTH - 1} certificates above this one"
        )
    chain = order_chain(stored_certificate(row), given)
    if len(chain) < len(given):
        position, stray = next((n, c) for n, c in enumerate(given, start=1) if c not in chain)
        raise ValidationError(
            _MANUAL,
            f"certificate {position} of the file ({read_certificate(stray).subject}) did not "
            "sign this certificate nor any other certificate of the chain",
        )
    notices = []
    if chain != given:
        notices.append(
            "the chain was put in order, nearest issuer first: "
            + "; ".join(read_certificate(link).subject for link in chain)
        )
    new: dict[str, NewCertificate] = {}
    fingerprints = []
    for link in chain:
        info = read_certificate(link)
        fingerprints.append(info.fingerprint_sha256)
        if repository.certificate_by_fingerprint(info.fingerprint_sha256) is None:
            values = certificate_values(link, info, fitted_friendly_name(info.issued_to))
            new.setdefault(info.fingerprint_sha256, NewCertificate(link, info, values))
    add_certificates(repository, list(new.values()))  # linked as an import links them
    row.chain_mode, row.manual_chain = "manual", fingerprints
    concerns = guard.check_chain(repository, row, before, confirm=confirm, now=now)
    repository.audit(
        AuditAction.CERTIFICATE_CHAIN,
        certificate_target(row.friendly_name, row.fingerprint),
        f"manually specified, {len(chain)} certificate(s)" + guard.confirmed_note(concerns),
    )
    return notices, concerns


# --- querying (the Certificates table and the API's list) -------------------------------------


class SortKey(StrEnum):
    """The columns the Certificates table and ``GET /api/v1/certificates`` sort by."""

    ID = "id"
    FRIENDLY_NAME = "friendly_name"
    ISSUED_TO = "issued_to"
    ISSUED_BY = "issued_by"
    EXPIRATION = "expiration"

    @property
    def label(self) -> str:
        """The column's heading: ``issued_to`` -> ``Issued To``."""
        return self.value.replace("_", " ").title()


_SORT_VALUES: dict[SortKey, Callable[[Listed], Any]] = {
    SortKey.FRIENDLY_NAME: lambda v: v.friendly_name.lower(),
    SortKey.ISSUED_TO: lambda v: v.issued_to.lower(),
    SortKey.ISSUED_BY: lambda v: v.issued_by.lower(),
    SortKey.EXPIRATION: lambda v: v.not_after,
    SortKey.ID: lambda v: v.id,
}
#: The one filter value that is not a warning code: any warning at all.
ANY_WARNING = "any"


@dataclass(frozen=True)
class CertificateQuery:
    """Filters, sort and page of the Certificates table / ``GET /api/v1/certificates``."""

    text: str = ""  # in friendly name, subject, issuer, SANs, addresses or fingerprint
    role: str | None = None  # server | intermediate | root
    has_private_key: bool | None = None
    warning: str | None = None  # a WarningCode, or ANY_WARNING
    expiring_before: dt.datetime | None = None
    sort: str = "id"
    descending: bool = False
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True)
class CertificatePage:
    total: int  # matching certificates, before paging
    items: list[CertificateView]


def query_certificates(app: Appliance, query: CertificateQuery) -> CertificatePage:
    """Filter, sort and page over every certificate (kept between reads: ``view_cache.py``).
    Views are built only for the page shown, and for the certificates a warning filter
    looks at; parsed fields only when a filter or the sort needs them."""
    if query.sort not in set(SortKey):
        raise ValidationError("sort", f"choose one of {', '.join(SortKey)}")
    if not query.offset >= 0 or not 1 <= query.limit <= 1000:
        raise ValidationError("limit", "offset must be >= 0 and limit between 1 and 1000")
    sort, now = SortKey(query.sort), app.now()

    def page(listing: Listing, repository: Repository) -> CertificatePage:
        found = listing.entries  # by id
        if _needs_fields(query, sort):
            listing.parse(repository, found)
        if _filters(query):
            found = [entry for entry in found if _matches(entry, query)]
        if query.warning:
            views = listing.views(repository, found, now)
            found = [e for e, v in zip(found, views, strict=True) if _warned(v, query.warning)]
        if sort != SortKey.ID or query.descending:
            found = sorted(found, key=_SORT_VALUES[sort], reverse=query.descending)
        shown = found[query.offset : query.offset + query.limit]
        return CertificatePage(len(found), listing.views(repository, shown, now))

    return _reading_listing(app, page)


def _filters(query: CertificateQuery) -> bool:
    """Whether the query leaves any certificate out (beyond its page)."""
    unpaged = dataclasses.replace(query, sort=SortKey.ID, descending=False, offset=0, limit=1)
    return unpaged != CertificateQuery(limit=1)


def _needs_fields(query: CertificateQuery, sort: SortKey) -> bool:
    """Whether a filter or the sort reads the certificates' parsed fields."""
    fields = query.role or query.expiring_before or query.text.strip()
    return bool(fields) or sort not in (SortKey.ID, SortKey.FRIENDLY_NAME)


def _matches(entry: Listed, query: CertificateQuery) -> bool:
    """Every filter but the warnings (``_warned``: they need the whole view)."""
    if query.has_private_key is not None and entry.has_private_key != query.has_private_key:
        return False
    if query.role and entry.role != query.role:
        return False
    if query.expiring_before and entry.not_after >= query.expiring_before:
        return False
    if query.text.strip():
        needle = query.text.strip().lower()
        haystack = " ".join(
            [
                entry.friendly_name,
                entry.subject,
                entry.issuer,
                entry.fingerprint_sha256,
                *entry.sans,
                *entry.ip_addresses,
            ]
        ).lower()
        return needle in haystack
    return True


def _warned(view: CertificateView, warning: str) -> bool:
    codes = {warning.code for warning in view.warnings}
    return bool(codes) if warning == ANY_WARNING else warning in codes


def listed_certificates(app: Appliance) -> list[Listed]:
    """Every certificate with its parsed fields (no chain, no warnings), as of the store's
    revision: for lists of names, roles and dates (``/metrics``, Replace with)."""

    def parsed(listing: Listing, repository: Repository) -> list[Listed]:
        listing.parse(repository, listing.entries)
        return listing.entries

    return _reading_listing(app, parsed)


def cached_certificate_views(
    app: Appliance, wanted: Callable[[Listed], bool] | None = None
) -> list[CertificateView]:
    """The views of every certificate (or of those ``wanted`` picks from their parsed
    fields), as of the store's revision (a commit from any process) and the clock (expiry
    warnings). What neither moved is kept (``view_cache.py``)."""
    now = app.now()

    def views(listing: Listing, repository: Repository) -> list[CertificateView]:
        entries = listing.entries
        if wanted is not None:
            listing.parse(repository, entries)
            entries = [entry for entry in entries if wanted(entry)]
        return listing.views(repository, entries, now)

    return _reading_listing(app, views)


def _reading_listing(app: Appliance, work: Callable[[Listing, Repository], T]) -> T:
    """``work`` on this process's listing of the certificates, brought up to the revision of
    one read transaction; one reader at a time, so that nothing is built twice."""
    cache: ViewCache = app.cache.setdefault("view_cache", ViewCache())
    with cache.lock, app.store.reading() as repository:
        return work(cache.listing(repository), repository)
