"""Adding certificates to the store and linking each to its issuer, in either arrival order.

Issuers are found by name hash and confirmed by signature once, when a certificate or its
issuer arrives; the chosen link is stored, so reading a chain never checks a signature.

One pipeline: imports and manual chains add certificates with :func:`add_certificates`, a
delete re-links the children with :func:`relink_children`, and both choose every issuer with
:func:`_choose` (candidates by name, first choice by signature, lookahead to a root where a
subject has twins); :func:`_reroute_dead_ends` runs the same choice again for stored
certificates under such subjects.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.pki.certinfo import CertInfo
from certgate.pki.chain import MAX_CHAIN_DEPTH, KnownSignatures, choose_issuer
from certgate.pki.der import certificate_parts
from certgate.service.stored import stored_certificate
from certgate.service.views import RowInfoCache, info_to_json
from certgate.store.models import CertificateRow
from certgate.store.repository import Repository

#: Fewer certificates than this are linked in the calling thread (starting threads would cost
#: more than they save) ...
PARALLEL_BATCH = 256
#: ... more, on up to this many threads.
MAX_LINKING_THREADS = 8
_Result = TypeVar("_Result")


def certificate_values(
    cert: x509.Certificate,
    info: CertInfo,
    friendly_name: str,
    *,
    is_factory: bool = False,
    der: bytes | None = None,
) -> dict[str, Any]:
    """The columns of a new certificate row, for :func:`new_certificate_row` or for
    ``Repository.insert_certificates`` (a bulk import, without an ORM object per row);
    ``der`` when the caller has encoded ``cert`` already."""
    return {
        "fingerprint": info.fingerprint_sha256,
        "der": cert.public_bytes(Encoding.DER) if der is None else der,
        "friendly_name": friendly_name,
        "public_key_fingerprint": info.public_key_fingerprint,
        "subject_name_hash": info.subject_name_hash,
        "issuer_name_hash": info.issuer_name_hash,
        "not_after": info.not_after,
        "is_ca": info.is_ca,
        "info": info_to_json(info),
        "chain_mode": "automatic",
        "is_factory": is_factory,
    }


def new_certificate_row(
    cert: x509.Certificate, info: CertInfo, friendly_name: str, *, is_factory: bool = False
) -> CertificateRow:
    return CertificateRow(**certificate_values(cert, info, friendly_name, is_factory=is_factory))


@dataclass(frozen=True)
class _Node:
    """A certificate as linking works on it: its id (stored, or reserved for it), parsed."""

    id: int
    cert: x509.Certificate
    info: CertInfo
    tbs: bytes | None = None  # the signed part, when known without asking cryptography


class _Parsed:
    """Certificates of this operation, parsed once (rows loaded from the store lazily)."""

    def __init__(self, infos: RowInfoCache) -> None:
        self._certs: dict[int, x509.Certificate] = {}
        self._known: dict[int, CertInfo] = {}
        self._infos = infos

    def remember(self, new: _Node) -> None:
        self._certs[new.id] = new.cert
        self._known[new.id] = new.info

    def info(self, row: CertificateRow) -> CertInfo:
        """The row's info without its DER: known from the caller, else read from the row."""
        known = self._known.get(row.id)
        return known if known is not None else self._infos(row)

    def __call__(self, row: CertificateRow) -> tuple[x509.Certificate, CertInfo]:
        cert = self._certs.get(row.id)
        if cert is None:
            cert = self._certs[row.id] = stored_certificate(row)
        return cert, self.info(row)

    def node(self, row: CertificateRow) -> _Node:
        return _Node(row.id, *self(row))


class NewCertificate(NamedTuple):
    """A certificate about to be stored: parsed, read, its row's values and its signed part
    (None: sliced here from the DER)."""

    cert: x509.Certificate
    info: CertInfo
    values: dict[str, Any]
    tbs: bytes | None = None


def add_certificates(
    repository: Repository,
    new: Sequence[NewCertificate],
    known: KnownSignatures | None = None,
) -> list[int]:
    """Store new certificates (``certificate_values`` of each) linked to their issuers, and
    link stored certificates that were waiting for one of them; returns the new ids, in order.

    Each issuer is chosen before its certificate is written, so that the row is written
    once, link included: an UPDATE per row afterwards cost more than the INSERT itself
    (SQLite rewrites the record).
    """
    ids = repository.reserve_certificate_ids(len(new))
    nodes = [
        _Node(row_id, item.cert, item.info, item.tbs or _signed_part(item.values["der"]))
        for row_id, item in zip(ids, new, strict=True)
    ]
    parsed = _Parsed(RowInfoCache())
    for node in nodes:
        parsed.remember(node)
    stored_waiting = repository.orphan_ids_issued_by([n.info.subject_name_hash for n in nodes])
    waiting = [node for node in nodes if not node.info.self_signed]
    links = _choose(repository, waiting, parsed, new=nodes, known=known)
    order, loops = _parents_first(nodes, links)
    values = [item.values for item in new]
    position = {row_id: index for index, row_id in enumerate(ids)}
    repository.insert_certificates(
        [
            values[position[node.id]]
            | {"id": node.id, "issuer_id": None if node.id in loops else links.get(node.id)}
            for node in order
        ]
    )
    repository.set_issuers(loops)
    linked = _waiting_nodes(repository, stored_waiting, parsed)
    _link(repository, linked, parsed)
    _reroute_dead_ends(repository, [*nodes, *linked], parsed)
    return ids


def _choose(
    repository: Repository,
    waiting: Sequence[_Node],
    parsed: _Parsed,
    *,
    new: Sequence[_Node] = (),
    known: KnownSignatures | None = None,
    excluded: int | None = None,
    current: dict[int, int] | None = None,
) -> dict[int, int]:
    """The issuer of each of ``waiting`` (certificate id -> issuer id; none for those with
    no issuer found): the one rule every path into the store links by.

    1. Candidates: certificates whose subject is the issuer name, stored ones in id order
       (``excluded``, about to be deleted, left out), then those of ``new`` (this operation's,
       not stored yet).
    2. First choice: ``choose_issuer`` (signature-checked; ``known``: checks made in advance;
       on every core for a large batch), or the link in ``current`` when one is stored.
    3. Lookahead, only where it matters: a certificate with several candidates whose chain,
       along the choices made so far, ends short of a root takes the candidate
       ``choose_issuer`` prefers among those whose chain reaches one.
    """
    wanted = {node.info.issuer_name_hash for node in waiting}
    candidates: dict[str, list[CertificateRow | _Node]] = defaultdict(list)
    stored = [
        row
        for row in repository.certificates_with_subject_hashes(sorted(wanted))
        if row.id != excluded
    ]
    for row in sorted(stored, key=lambda row: row.id):
        candidates[row.subject_name_hash].append(row)
    for node in new:
        if node.info.subject_name_hash in wanted:
            candidates[node.info.subject_name_hash].append(node)

    def describe(candidate: CertificateRow | _Node) -> tuple[x509.Certificate, CertInfo]:
        if isinstance(candidate, _Node):
            return candidate.cert, candidate.info
        return parsed(candidate)

    def issuer_of(node: _Node) -> CertificateRow | _Node | None:
        options = candidates.get(node.info.issuer_name_hash, [])
        return choose_issuer(node.cert, node.info, options, describe, node.tbs, known)

    links = dict(current or {})
    first = [node for node in waiting if node.id not in links]
    for row in stored:  # parsed here, so that no two threads parse the same row
        describe(row)
    # Checked in advance, the choice is Python work only: threads would just take turns.
    chosen = [issuer_of(node) for node in first] if known else _in_parallel(issuer_of, first)
    links.update((node.id, issuer.id) for node, issuer in zip(first, chosen, strict=True) if issuer)
    reach = _RootReach(repository, {node.id: node for node in new}, links, parsed)
    for node in waiting:
        options = candidates.get(node.info.issuer_name_hash, [])
        if len(options) > 1 and not reach(node.id):
            better = _issuer_reaching_root(node, options, describe, reach)
            if better is not None and better.id != links.get(node.id):
                links[node.id] = better.id
                reach.forget()
    return links


Option = TypeVar("Option", CertificateRow, "CertificateRow | _Node")


def _issuer_reaching_root(
    node: _Node,
    options: Sequence[Option],
    describe: Callable[[Option], tuple[x509.Certificate, CertInfo]],
    reach: _RootReach,
) -> Option | None:
    """The issuer ``choose_issuer`` prefers among the candidates whose chain ends at a root."""
    complete = [option for option in options if reach(option.id)]
    return choose_issuer(node.cert, node.info, complete, describe, node.tbs) if complete else None


class _RootReach:
    """Whether a certificate's chain, along the links chosen so far (new ones first, then
    those stored), ends at a self-signed root; remembered until a link changes."""

    def __init__(
        self,
        repository: Repository,
        new: dict[int, _Node],
        links: dict[int, int],
        parsed: _Parsed,
    ) -> None:
        self._repository = repository
        self._new = new
        self._links = links
        self._parsed = parsed
        self._known: dict[int, bool] = {}

    def forget(self) -> None:
        self._known.clear()

    def __call__(self, certificate_id: int) -> bool:
        path: list[int] = []
        current: int | None = certificate_id
        reaches = False
        while current is not None and current not in path:
            if len(path) == MAX_CHAIN_DEPTH:  # too long to tell: remember nothing
                return False
            if current in self._known:
                reaches = self._known[current]
                break
            path.append(current)
            node = self._new.get(current)
            if node is not None:
                info, issuer = node.info, self._links.get(current)
            else:
                row = self._repository.certificate(current)
                if row is None:
                    break
                info, issuer = self._parsed.info(row), self._links.get(current, row.issuer_id)
            if info.self_signed:
                reaches = True
                break
            current = issuer
        for visited in path:
            self._known[visited] = reaches
        return reaches


def _in_parallel(function: Callable[[_Node], _Result], nodes: Sequence[_Node]) -> list[_Result]:
    """``function`` of each node, in order, on every core for a large batch: the signature
    check that dominates it lets other threads run (cryptography releases the GIL), so a
    10,000-certificate bundle's chains are built in little more than half the time on two
    cores. ``function`` must only read shared state."""
    workers = min(len(os.sched_getaffinity(0)), MAX_LINKING_THREADS)
    if workers < 2 or len(nodes) < PARALLEL_BATCH:
        return [function(node) for node in nodes]
    with ThreadPoolExecutor(workers, thread_name_prefix="certgate-linking") as pool:
        return list(pool.map(function, nodes, chunksize=PARALLEL_BATCH // 2))


def _signed_part(der: bytes) -> bytes | None:
    parts = certificate_parts(der)
    return parts[0] if parts else None


def _parents_first(
    nodes: Sequence[_Node], links: dict[int, int]
) -> tuple[list[_Node], dict[int, int]]:
    """An order in which each new certificate comes after the new issuer it links to (the
    foreign key is checked as each row is written), and the links that close a loop (two
    CAs that cross-signed each other), to be set once both rows exist."""
    by_id = {node.id: node for node in nodes}
    placed: set[int] = set()
    order: list[_Node] = []
    loops: dict[int, int] = {}
    for node in nodes:
        path: dict[int, None] = {}  # ordered, and a set: a chain may be thousands long
        current: int | None = node.id
        while current is not None and current in by_id and current not in placed:
            if current in path:
                loops[next(reversed(path))] = current
                break
            path[current] = None
            current = links.get(current)
        for row_id in reversed(path):
            order.append(by_id[row_id])
            placed.add(row_id)
    return order, loops


def _waiting_nodes(repository: Repository, ids: Sequence[int], parsed: _Parsed) -> list[_Node]:
    """Stored certificates without an issuer (the orphans found earlier), roots excepted."""
    rows = repository.certificates_by_id(ids).values()
    return [parsed.node(row) for row in rows if not parsed.info(row).self_signed]


def _reroute_dead_ends(repository: Repository, changed: Sequence[_Node], parsed: _Parsed) -> None:
    """Certificates stored earlier whose chain ends short of a root, under a subject that
    ``changed`` (new or newly linked certificates) gave a twin leading to one, take it: the
    leaf that arrived when only the cross-signed copy of its intermediate was there finds the
    root once the other copy and the root are imported."""
    done = {node.id for node in changed}
    twins = repository.twin_subjects(sorted({node.info.subject_name_hash for node in changed}))
    if not twins:
        return
    children = [row for row in repository.linked_children_of(sorted(twins)) if row.id not in done]
    if not children:
        return
    stored = {row.id: row.issuer_id for row in children if row.issuer_id is not None}
    links = _choose(repository, [parsed.node(row) for row in children], parsed, current=stored)
    links.update(_reissued_issuers(repository, links, changed, parsed))
    repository.set_issuers(
        {row_id: issuer for row_id, issuer in links.items() if stored.get(row_id) != issuer}
    )


def _reissued_issuers(
    repository: Repository, links: dict[int, int], changed: Sequence[_Node], parsed: _Parsed
) -> dict[int, int]:
    """Children whose issuer ``changed`` re-issued (the same subject and key under the same
    issuer, valid longer: a CA's renewed intermediate) take the copy that lasts longest, as
    ``choose_issuer`` would have linked them: left on the old copy, a leaf kept its expired
    chain, and its warning, after the renewed intermediate was imported. The chain above
    is the same, so no root changes."""
    copies: dict[tuple[str, str], list[tuple[_Node, int | None]]] = defaultdict(list)
    for node in changed:
        if not node.info.is_ca:  # only a CA has children: a leaf's row is never loaded
            continue
        row = repository.certificate(node.id)
        if row is not None:
            key = (node.info.subject_name_hash, node.info.public_key_fingerprint)
            copies[key].append((node, row.issuer_id))
    if not copies:
        return {}
    moved: dict[int, int] = {}
    now = dt.datetime.now(dt.UTC)  # a copy issued ahead of its time waits for it
    for child_id, issuer_id in links.items():
        issuer = repository.certificate(issuer_id)
        if issuer is None:
            continue
        info = parsed.info(issuer)
        longer = [
            node
            for node, above in copies.get((info.subject_name_hash, info.public_key_fingerprint), [])
            if above == issuer.issuer_id
            and node.info.issuer_name_hash == info.issuer_name_hash
            and node.info.not_after > info.not_after
            and node.info.not_before <= now
        ]
        if longer:
            moved[child_id] = max(longer, key=lambda node: node.info.not_after).id
    return moved


def chains_broken_by_deleting(
    repository: Repository, issuer: CertificateRow
) -> list[CertificateRow]:
    """The certificates whose chain becomes incomplete when ``issuer`` is deleted: its
    children that find no other issuer (a cross-sign), and every certificate under them.
    Reads only: the same choice ``relink_children`` makes."""
    children = [child for child in repository.children_of(issuer.id) if child.id != issuer.id]
    parsed = _Parsed(RowInfoCache())
    links = _choose(repository, [parsed.node(c) for c in children], parsed, excluded=issuer.id)
    broken: list[CertificateRow] = []
    seen = {issuer.id}
    waiting = [child for child in children if child.id not in links]
    while waiting:
        row = waiting.pop(0)
        if row.id in seen:
            continue
        seen.add(row.id)
        broken.append(row)
        waiting.extend(repository.children_of(row.id))
    return broken


def relink_children(repository: Repository, issuer: CertificateRow) -> None:
    """Before ``issuer`` is deleted: its children may find another issuer (a cross-sign)."""
    children = repository.children_of(issuer.id)
    for child in children:
        child.issuer_id = None
    repository.flush()
    parsed = _Parsed(RowInfoCache())
    _link(repository, [parsed.node(child) for child in children], parsed, excluded=issuer.id)


def _link(
    repository: Repository,
    waiting: Sequence[_Node],
    parsed: _Parsed,
    excluded: int | None = None,
) -> None:
    """Link stored certificates that have no issuer (orphans, or the children of a
    certificate about to be deleted, ``excluded``)."""
    if waiting:
        repository.set_issuers(_choose(repository, waiting, parsed, excluded=excluded))
