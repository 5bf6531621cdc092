"""Every certificate as the lists see it, kept between commits: a read costs what it shows.

A commit (the store's revision moved) costs one query of the certificates' small columns
(``Listing``): id, fingerprint, name, chain columns, whether the key is stored, addresses.
Each certificate's parsed fields (``info``, which never change for a fingerprint) are read
only when a list needs them (a text search, a sort by a name or a date, a role filter,
``/metrics``) and kept by fingerprint; each view (chain and warnings) is built only for the
certificates a read shows or filters by warning, and kept with its signature (name, chain,
key, addresses, hostnames) and the moment its warnings next change (``views.valid_until``).

Measured on 100,000 certificates (2 shared cores): building every view after an import of
them held the serving process's GIL for 9 s (5 s of it with the cycle collector paused), and
every API call meanwhile waited its turn for the GIL at each step (p99 0.33 s, issue 16). The
Certificates page's first page now costs the small-columns query and 25 views.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from certgate.pki.certinfo import CertInfo, sha1_fingerprint
from certgate.pki.chain import Role, role_of
from certgate.service.collector import collector_paused
from certgate.service.views import (
    UNREADABLE_INFO,
    CertificateView,
    certificate_view,
    chain_rows,
    info_from_json,
    row_info,
    san_texts,
    valid_until,
)
from certgate.store.repository import CertificateSummary, Repository


@dataclass(frozen=True)
class _Kept:
    signature: Hashable
    valid_until: dt.datetime
    view: CertificateView


class Listed:
    """One certificate in a list: its row's small columns, and its parsed fields once a
    ``Listing`` has read them (``Listing.parse``). The fields a list filters and sorts by
    have the names and values of its ``CertificateView``'s."""

    __slots__ = ("has_private_key", "hostnames", "info", "ip_addresses", "summary")

    def __init__(
        self,
        summary: CertificateSummary,
        has_private_key: bool,
        ip_addresses: list[str],
        hostnames: dict[str, list[str]] | None,
        info: CertInfo | None,
    ) -> None:
        self.summary = summary
        self.has_private_key = has_private_key
        self.ip_addresses = ip_addresses
        self.hostnames = hostnames
        self.info = info

    @property
    def id(self) -> int:
        return self.summary.id

    @property
    def fingerprint_sha256(self) -> str:
        return self.summary.fingerprint

    @property
    def friendly_name(self) -> str:
        return self.summary.friendly_name

    @property
    def is_factory(self) -> bool:
        return self.summary.is_factory

    @property
    def parsed(self) -> CertInfo:
        if self.info is None:
            raise LookupError(f"certificate {self.summary.id}'s fields were not read")
        return self.info

    @property
    def role(self) -> Role:
        return role_of(self.parsed, has_private_key=self.has_private_key)

    @property
    def subject(self) -> str:
        return self.parsed.subject

    @property
    def issuer(self) -> str:
        return self.parsed.issuer

    @property
    def issued_to(self) -> str:
        return self.parsed.issued_to

    @property
    def issued_by(self) -> str:
        return self.parsed.issued_by

    @property
    def not_after(self) -> dt.datetime:
        return self.parsed.not_after

    @property
    def sans(self) -> list[str]:
        return san_texts(self.parsed)


class Listing:
    """The certificates of one revision of the store, by id; parsed fields and views are
    added as reads ask for them. Use it under its ``ViewCache``'s lock, in a read
    transaction of the same revision."""

    def __init__(self, cache: ViewCache, revision: int, repository: Repository) -> None:
        self.revision = revision
        self._cache = cache
        summaries = repository.certificate_summaries()
        keys = repository.key_fingerprints()
        addresses: dict[int, list[str]] = defaultdict(list)
        hostnames: dict[int, dict[str, list[str]]] = defaultdict(dict)
        for address in repository.ip_addresses():
            addresses[address.certificate_id].append(address.address)
            if address.hostnames:
                hostnames[address.certificate_id][address.address] = list(address.hostnames)
        infos = cache.infos
        self.entries = [
            Listed(
                summary,
                summary.public_key_fingerprint in keys,
                addresses.get(summary.id, []),
                hostnames.get(summary.id),
                infos.get(summary.fingerprint),
            )
            for summary in summaries
        ]
        #: views known to stand at this revision (until their ``valid_until``)
        self._checked: dict[int, _Kept] = {}
        self._by_id = {entry.summary.id: entry for entry in self.entries}
        self._by_fingerprint = {entry.summary.fingerprint: entry for entry in self.entries}

    def parse(self, repository: Repository, entries: Iterable[Listed]) -> None:
        """Read the parsed fields of these certificates where they are not known yet."""
        missing = [entry for entry in entries if entry.info is None]
        if not missing:
            return
        infos = self._cache.infos
        with collector_paused():
            for fingerprint, info in repository.certificate_infos(e.id for e in missing):
                try:
                    infos[fingerprint] = info_from_json(info)
                except UNREADABLE_INFO:  # read from its DER again
                    row = repository.certificate_by_fingerprint(fingerprint)
                    assert row is not None  # read in this transaction
                    infos[fingerprint] = row_info(row)
            for entry in missing:
                entry.info = infos[entry.summary.fingerprint]

    def views(
        self, repository: Repository, entries: Sequence[Listed], now: dt.datetime
    ) -> list[CertificateView]:
        """The views of these certificates at ``now``, built where the kept one is stale."""
        checked = self._checked
        unchecked = [e for e in entries if not now < _until(checked.get(e.id))]
        if unchecked:
            with collector_paused():
                self._check(repository, unchecked, now)
        return [checked[entry.id].view for entry in entries]

    def _check(self, repository: Repository, entries: Sequence[Listed], now: dt.datetime) -> None:
        """Take the kept views of these certificates that still stand; build the others."""
        chains = {entry.id: self._chain(entry) for entry in entries}
        self.parse(repository, [*entries, *(link for c in chains.values() for link in c)])
        kept = self._cache.kept
        stale = [e for e in entries if not _fresh(kept.get(e.id), e, chains[e.id], now)]
        sha1s = self._cache.sha1s
        unhashed = [entry for entry in stale if entry.summary.fingerprint not in sha1s]
        for fingerprint, der in repository.certificate_ders(e.id for e in unhashed):
            sha1s[fingerprint] = sha1_fingerprint(der)
        for entry in stale:
            kept[entry.id] = self._build(entry, chains[entry.id], now)
        for entry in entries:
            self._checked[entry.id] = kept[entry.id]

    def _chain(self, entry: Listed) -> list[Listed]:
        lookup, by_fingerprint = self._by_id.get, self._by_fingerprint.get
        return [
            self._by_id[link.id]
            for link in chain_rows(
                entry.summary,
                lambda i: _summary(lookup(i)),
                lambda f: _summary(by_fingerprint(f)),
            )
        ]

    def _build(self, entry: Listed, chain: list[Listed], now: dt.datetime) -> _Kept:
        infos = [entry.parsed, *(link.parsed for link in chain)]
        view = certificate_view(
            entry.summary,
            [link.summary for link in chain],
            has_private_key=entry.has_private_key,
            ip_addresses=entry.ip_addresses,
            infos=lambda row: self._by_id[row.id].parsed,
            sha1=self._cache.sha1s[entry.summary.fingerprint],
            now=now,
            hostnames=entry.hostnames,
        )
        return _Kept(_signature(entry, chain), valid_until(infos, now), view)


def _until(kept: _Kept | None) -> dt.datetime:
    return _PAST if kept is None else kept.valid_until


_PAST = dt.datetime.min.replace(tzinfo=dt.UTC)


def _fresh(kept: _Kept | None, entry: Listed, chain: list[Listed], now: dt.datetime) -> bool:
    """Whether the kept view stands: nothing it depends on moved, nor the clock past it."""
    if kept is None or not now < kept.valid_until:
        return False
    return kept.signature == _signature(entry, chain)


def _summary(entry: Listed | None) -> CertificateSummary | None:
    return None if entry is None else entry.summary


def _signature(entry: Listed, chain: list[Listed]) -> Hashable:
    """What a view depends on besides the parsed fields and the clock."""
    summary, names = entry.summary, entry.hostnames
    return (
        summary.fingerprint,
        summary.friendly_name,
        summary.chain_mode,
        summary.is_factory,
        tuple(link.summary.fingerprint for link in chain),
        entry.has_private_key,
        tuple(entry.ip_addresses),
        tuple((a, tuple(hosts)) for a, hosts in names.items()) if names else (),
    )


class ViewCache:
    """One appliance's certificates, kept between reads; one reader at a time (``lock``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.infos: dict[str, CertInfo] = {}  # parsed fields, by fingerprint
        self.sha1s: dict[str, str] = {}  # SHA-1 fingerprints, by SHA-256 fingerprint
        self.kept: dict[int, _Kept] = {}  # views, by id
        self._listing: Listing | None = None

    def listing(self, repository: Repository) -> Listing:
        """The certificates as of the revision ``repository`` reads (under ``lock``)."""
        revision = repository.revision()
        if self._listing is None or self._listing.revision != revision:
            with collector_paused():
                self._listing = Listing(self, revision, repository)
                self._forget_all_but(self._listing)
        return self._listing

    def _forget_all_but(self, listing: Listing) -> None:
        """Drop what belongs to certificates deleted since (so memory follows the store)."""
        ids = {entry.id for entry in listing.entries}
        used = {entry.summary.fingerprint for entry in listing.entries}
        self.kept = {i: kept for i, kept in self.kept.items() if i in ids}
        self.infos = {fp: info for fp, info in self.infos.items() if fp in used}
        self.sha1s = {fp: sha1 for fp, sha1 in self.sha1s.items() if fp in used}
