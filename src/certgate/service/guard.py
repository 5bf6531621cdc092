"""The guard before a change of what an address presents (issue 10, point 6).

The guide warns: "If this CA is changed without preparing the clients beforehand, then it is
possible to permanently lose connectivity to the clients due to failed SSL validation", and
"you should not assign an IP address to a new certificate if your appliance is currently in
production with active connections". So an assignment, a replacement, or another chain for
a certificate that addresses present (``check_chain``), that would make an address present a
chain ending at another root than it presents now (self-signed to
CA-signed and back included), or a certificate that clients will refuse (expired, not yet
valid, an incomplete or expired chain, a hostname of the address not covered), is applied
only when the caller confirms it.

``check_moves`` computes the concerns of the planned moves (address -> new certificate) in
the transaction that applies them, so the check and the change see the same state; the
faces only pass ``confirm``. No concern: an address that already presents the certificate,
a renewal or replacement under the same root, and the root of an address leaving the factory
certificate (its self-signed certificate is the one clients were never meant to keep; the
new certificate's own problems still count).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from certgate.errors import UnconfirmedChangeError
from certgate.pki.certinfo import CertInfo, derived_key_id
from certgate.pki.diagnostics import ChainState, WarningCode, derive_warnings, uncovered_hostnames
from certgate.pki.trust import matches_any
from certgate.service.views import RowInfoCache, chain_rows
from certgate.store.models import CertificateRow, IpAddressRow
from certgate.store.repository import Repository

#: The guide's two warnings, quoted where a change is confirmed (the CLI and the API: the
#: first, when a root changes; the page's confirmation step: both).
GUIDE_CA_WARNING = (
    "If this CA is changed without preparing the clients beforehand, then it is possible to "
    "permanently lose connectivity to the clients due to failed SSL validation."
)
GUIDE_PRODUCTION_WARNING = (
    "You should not assign an IP address to a new certificate if your appliance is currently "
    "in production with active connections. For new installations, this is not an issue, "
    "but appliances in production should schedule down time to change and test IP "
    "assignments."
)


class ConcernCode(StrEnum):
    """Why a move needs confirming: the root changes, or clients will refuse the certificate
    (the codes of the certificate's warnings of the same meaning)."""

    ROOT_CHANGE = "root-change"
    EXPIRED = WarningCode.EXPIRED.value
    NOT_YET_VALID = WarningCode.NOT_YET_VALID.value
    CHAIN_INCOMPLETE = WarningCode.CHAIN_INCOMPLETE.value
    CHAIN_EXPIRED = WarningCode.CHAIN_EXPIRED.value
    HOSTNAME_NOT_COVERED = WarningCode.HOSTNAME_NOT_COVERED.value


#: The certificate's own warnings that clients refuse it for (the hostnames are per address).
_REFUSED = (
    ConcernCode.EXPIRED,
    ConcernCode.NOT_YET_VALID,
    ConcernCode.CHAIN_INCOMPLETE,
    ConcernCode.CHAIN_EXPIRED,
)


@dataclass(frozen=True)
class Root:
    """Where a chain ends, as a client's trust store knows it: a name and a key."""

    subject: str
    fingerprint_sha256: str | None  # None: not in the store (the chain ends short of it)
    public_key_fingerprint: str | None
    name_hash: str
    #: The root's subject key identifier (derived from its key when it carries none); for one
    #: not in the store, the authority key identifier its chain's top names it by. None: not
    #: known.
    key_id: str | None = None

    def same_as(self, other: Root) -> bool:
        """A client that trusts one accepts a chain ending at the other: the same name and
        the same key, compared by the keys where both are in the store, else by key
        identifier where both are known (a root re-issued with its key is the same anchor;
        two roots of one name and other keys are not, even beyond incomplete chains). Known
        by name alone, a root is taken at its name."""
        if self.name_hash != other.name_hash:
            return False
        keys = (self.public_key_fingerprint, other.public_key_fingerprint)
        if None not in keys:
            return keys[0] == keys[1]
        key_ids = (self.key_id, other.key_id)
        return None in key_ids or key_ids[0] == key_ids[1]


@dataclass(frozen=True)
class Concern:
    """One reason to confirm, for one address."""

    address: str
    current_certificate: str  # friendly names
    new_certificate: str
    code: ConcernCode
    message: str
    current_root: Root | None = None  # both given for root-change
    new_root: Root | None = None
    hostnames: tuple[str, ...] = ()  # for hostname-not-covered: those not covered


@dataclass(frozen=True)
class Move:
    """An address about to present ``new`` instead of its certificate."""

    address: IpAddressRow
    new: CertificateRow


def check_moves(
    repository: Repository, moves: Sequence[Move], *, confirm: bool, now: dt.datetime
) -> list[Concern]:
    """The concerns of the moves; unless ``confirm``, refuse (nothing is changed here) when
    there is one. The caller applies the moves in the same transaction and notes the
    concerns confirmed in its audit event (``confirmed_note``)."""
    return require_confirmation(_concerns(repository, moves, now), confirm=confirm)


def require_confirmation(concerns: list[Concern], *, confirm: bool) -> list[Concern]:
    """``concerns`` when confirmed (or none); else the refusal that lists them all."""
    if concerns and not confirm:
        raise UnconfirmedChangeError(refusal(concerns), concerns)
    return concerns


@dataclass(frozen=True)
class ChainBefore:
    """A certificate's chain before it is changed: the root it ends at, and why clients
    refuse it already (those are no news)."""

    root: Root
    refused: frozenset[tuple[ConcernCode, str]]


def chain_before(repository: Repository, row: CertificateRow, now: dt.datetime) -> ChainBefore:
    chain = chain_rows(row, repository.certificate, repository.certificate_by_fingerprint)
    infos = RowInfoCache()
    return ChainBefore(_root(row, chain, infos), frozenset(_refused(row, chain, infos, now)))


def check_chain(
    repository: Repository,
    row: CertificateRow,
    before: ChainBefore,
    *,
    confirm: bool,
    now: dt.datetime,
) -> list[Concern]:
    """The concerns of ``row`` given another chain (manually specified, or automatic again)
    while it secures addresses, for each of them: its chain now ends at another root, or
    clients would refuse it for a reason they did not before. Unless ``confirm``, refuse
    (the caller's transaction then changes nothing)."""
    addresses = repository.ip_addresses_of(row.id)
    if not addresses or row.is_factory:
        return []
    chain = chain_rows(row, repository.certificate, repository.certificate_by_fingerprint)
    infos = RowInfoCache()
    after = _root(row, chain, infos)
    news = [found for found in _refused(row, chain, infos, now) if found not in before.refused]
    concerns: list[Concern] = []
    for address in addresses:
        names = (address.address, row.friendly_name, row.friendly_name)
        if not before.root.same_as(after):
            message = (
                f"presents {names[1]!r}, whose chain ends at the root "
                f"{_named(before.root, after)}; its new chain ends at another root, "
                f"{_named(after, before.root)}: clients that trust only the first will refuse it"
            )
            concerns.append(Concern(*names, ConcernCode.ROOT_CHANGE, message, before.root, after))
        for code, message in news:
            concerns.append(Concern(*names, code, f"{names[1]!r}: {message}"))
    return require_confirmation(concerns, confirm=confirm)


def check_order(
    repository: Repository,
    addresses: Sequence[IpAddressRow],
    certificate_name: str,
    names: Sequence[str],
    ca: str,
    ca_root: Root | None,
    *,
    confirm: bool,
) -> list[Concern]:
    """The concerns of assigning a certificate an ACME CA will issue for ``names`` (named
    ``certificate_name``) to ``addresses``, asked before the order is placed: the root the
    addresses' chains end at now against ``ca_root``, the root of the certificates the CA at
    ``ca`` issued here before (None: it issued none, so any root but the factory
    certificate's may change), and the addresses' hostnames the names do not cover. Unless
    ``confirm``, refuse when there is one. The issued certificate's own problems can be known
    only once it is issued (``check_moves`` then)."""
    infos = RowInfoCache()
    found: list[Concern] = []
    for address in addresses:
        current = repository.certificate(address.certificate_id)
        assert current is not None  # a foreign key: an address always has its certificate
        where = (address.address, current.friendly_name, certificate_name)
        if not current.is_factory:
            before = root_of(repository, current, infos)
            if ca_root is None:
                message = (
                    f"presents {where[1]!r}, whose chain ends at the root {_named(before)}; "
                    f"the ACME CA at {ca} has issued no certificate here yet, so the root its "
                    "certificate will end at is known only once it is issued: clients that "
                    "trust only the first may refuse it"
                )
                found.append(Concern(*where, ConcernCode.ROOT_CHANGE, message, before))
            elif not before.same_as(ca_root):
                message = (
                    f"presents {where[1]!r}, whose chain ends at the root "
                    f"{_named(before, ca_root)}; the ACME CA at {ca} issues certificates "
                    f"ending at another root, {_named(ca_root, before)}: clients that trust "
                    "only the first will refuse them"
                )
                found.append(Concern(*where, ConcernCode.ROOT_CHANGE, message, before, ca_root))
        missed = [name for name in address.hostnames if not matches_any(names, name)]
        if missed:
            found.append(_not_covered(where, "the names ordered do not cover", missed))
    if found and not confirm:
        raise UnconfirmedChangeError(refusal(found), found)
    return found


def root_of(repository: Repository, row: CertificateRow, infos: RowInfoCache | None = None) -> Root:
    """The root ``row``'s chain ends at, as the guard compares roots."""
    chain = chain_rows(row, repository.certificate, repository.certificate_by_fingerprint)
    return _root(row, chain, infos or RowInfoCache())


#: How a refusal ends: what the caller does to apply the change anyway.
CONFIRM_HINT = 'Confirm to apply it anyway (command line: --confirm; API: "confirm": true)'


def refusal(concerns: Sequence[Concern]) -> str:
    """The one line every face shows before the change is confirmed."""
    listed = "; ".join(f"{concern.address}: {concern.message}" for concern in concerns)
    roots = any(concern.code is ConcernCode.ROOT_CHANGE for concern in concerns)
    return (
        f"this change needs confirming: {listed}. "
        + (f"{GUIDE_CA_WARNING} " if roots else "")
        + CONFIRM_HINT
    )


def confirmed_note(concerns: Sequence[Concern]) -> str:
    """What the audit event of a confirmed change adds ("" when nothing needed confirming)."""
    if not concerns:
        return ""
    listed = ", ".join(f"{concern.address} {concern.code.value}" for concern in concerns)
    return f"; confirmed despite: {listed}"


def _concerns(repository: Repository, moves: Sequence[Move], now: dt.datetime) -> list[Concern]:
    infos = RowInfoCache()
    chains: dict[int, list[CertificateRow]] = {}

    def chain_of(row: CertificateRow) -> list[CertificateRow]:
        if row.id not in chains:
            chains[row.id] = chain_rows(
                row, repository.certificate, repository.certificate_by_fingerprint
            )
        return chains[row.id]

    found: list[Concern] = []
    for move in moves:
        current = repository.certificate(move.address.certificate_id)
        assert current is not None  # a foreign key: an address always has its certificate
        if current.id == move.new.id:
            continue  # already presents it: nothing changes
        names = (move.address.address, current.friendly_name, move.new.friendly_name)
        if not current.is_factory:
            before = _root(current, chain_of(current), infos)
            after = _root(move.new, chain_of(move.new), infos)
            if not before.same_as(after):
                message = (
                    f"presents {names[1]!r}, whose chain ends at the root "
                    f"{_named(before, after)}; {names[2]!r} ends at another root, "
                    f"{_named(after, before)}: clients that trust only the first will refuse it"
                )
                found.append(Concern(*names, ConcernCode.ROOT_CHANGE, message, before, after))
        for code, message in _refused(move.new, chain_of(move.new), infos, now):
            found.append(Concern(*names, code, f"{names[2]!r}: {message}"))
        missed = uncovered_hostnames(infos(move.new), move.address.hostnames)
        if missed:
            found.append(_not_covered(names, f"{names[2]!r} does not cover", missed))
    return found


def _not_covered(names: tuple[str, str, str], what: str, missed: Sequence[str]) -> Concern:
    message = (
        f"{what} {', '.join(missed)}, the hostname(s) clients use to reach it: browsers will warn"
    )
    return Concern(*names, ConcernCode.HOSTNAME_NOT_COVERED, message, hostnames=tuple(missed))


def _refused(
    row: CertificateRow, chain: Sequence[CertificateRow], infos: RowInfoCache, now: dt.datetime
) -> list[tuple[ConcernCode, str]]:
    """Why clients will refuse the certificate itself: its warnings of those kinds."""
    info = infos(row)
    issuers = [infos(link) for link in chain]
    top = issuers[-1] if issuers else info
    state = ChainState(issuers, complete=top.self_signed)
    return [
        (ConcernCode(warning.code.value), warning.message)
        for warning in derive_warnings(info, state, has_private_key=True, now=now)
        if warning.code.value in _REFUSED
    ]


def _root(row: CertificateRow, chain: Sequence[CertificateRow], infos: RowInfoCache) -> Root:
    """The root ``row``'s chain ends at: its top when self-signed (a self-signed certificate
    is its own root), else the issuer the top names, which is not in the store. A root
    without a subject key identifier is still known by its key: by name alone, a chain that
    stops short at its name would pass for it whatever key its top names."""
    top = chain[-1] if chain else row
    info: CertInfo = infos(top)
    if info.self_signed:
        return Root(
            info.subject,
            top.fingerprint,
            info.public_key_fingerprint,
            info.subject_name_hash,
            info.subject_key_id or derived_key_id(top.der),
        )
    return Root(info.issuer, None, None, info.issuer_name_hash, info.authority_key_id)


def _named(root: Root, beside: Root | None = None) -> str:
    """The root as a message names it; beside another root of the same name, a root in the
    store is told apart by its fingerprint (one not in the store always is, by key)."""
    if root.fingerprint_sha256:
        if beside is not None and beside.subject == root.subject:
            return f"{root.subject!r} (SHA-256 {root.fingerprint_sha256[:16]}…)"
        return repr(root.subject)
    key_id = f", key identifier {root.key_id}" if root.key_id else ""
    return f"{root.subject!r} (not in the store{key_id})"
