"""The Certificates list's views, kept between commits (service/view_cache.py): never older
than the store or the clock allow, built again only where something changed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from certgate.service import certificates, imports, networking
from certgate.service.appliance import Appliance
from tests.support.pki import TestCA, fingerprint, pem


def view_of(app: Appliance, leaf_fingerprint: str) -> certificates.CertificateView:
    [view] = [
        v
        for v in certificates.cached_certificate_views(app)
        if v.fingerprint_sha256 == leaf_fingerprint
    ]
    return view


def test_a_commit_rebuilds_what_it_changed_and_keeps_the_rest(
    new_appliance: Callable[[], Appliance],
) -> None:
    app = new_appliance()
    ca = TestCA.make()
    leaves = [ca.leaf(f"site{n}.example.test") for n in range(3)]
    imports.import_files(app, [(f"{n}.pem", pem(leaf)) for n, (_, leaf) in enumerate(leaves)])
    first = {v.fingerprint_sha256: v for v in certificates.cached_certificate_views(app)}
    one, two = fingerprint(leaves[0][1]), fingerprint(leaves[1][1])
    assert not first[one].has_private_key and first[one].chain == [one]  # no issuer yet

    certificates.rename(app, one, "renamed")
    imports.import_files(app, [("key.pem", pem(leaves[1][0]))])  # two's key arrives
    imports.import_files(app, [("i.pem", pem(ca.intermediate)), ("r.pem", pem(ca.root))])
    networking.add_address(app, "127.0.0.9")
    networking.assign(app, ["127.0.0.9"], two)
    after = {v.fingerprint_sha256: v for v in certificates.cached_certificate_views(app)}
    assert after[one].friendly_name == "renamed"
    assert after[one].chain == [one, fingerprint(ca.intermediate), fingerprint(ca.root)]
    assert after[two].has_private_key and after[two].ip_addresses == ["127.0.0.9"]
    # Every view is what a one-off reader builds from nothing.
    fresh = {v.fingerprint_sha256: v for v in certificates.list_certificates(app)}
    assert after == fresh


def test_the_clock_alone_brings_expiry_warnings_and_their_day_count_up_to_date(
    new_appliance: Callable[[], Appliance],
) -> None:
    app = new_appliance()
    start = dt.datetime.now(dt.UTC)
    ca = TestCA.make()
    _, leaf = ca.leaf("soon.example.test", not_before=start - dt.timedelta(days=1), days=41)
    imports.import_files(app, [("leaf.pem", pem(leaf))])
    leaf_fingerprint = fingerprint(leaf)

    def expiry_messages(at: dt.datetime) -> list[str]:
        app.clock = lambda: at
        return [
            w.message
            for w in view_of(app, leaf_fingerprint).warnings
            if w.code in ("expiring-soon", "expired")
        ]

    assert expiry_messages(start) == []  # 40 days left
    assert expiry_messages(start + dt.timedelta(days=10.5))[0].startswith("expires in 29 day(s)")
    assert expiry_messages(start + dt.timedelta(days=11.5))[0].startswith("expires in 28 day(s)")
    assert expiry_messages(start + dt.timedelta(days=41))[0].startswith("expired on")


def test_a_page_builds_only_the_views_it_shows(new_appliance: Callable[[], Appliance]) -> None:
    app = new_appliance()
    ca = TestCA.make()
    leaves = [ca.leaf(f"site{n}.example.test")[1] for n in range(6)]
    imports.import_files(app, [("leaves.pem", b"".join(pem(leaf) for leaf in leaves))])
    query = certificates.CertificateQuery(limit=2, offset=1)  # by id: no parsed field read
    page = certificates.query_certificates(app, query)
    assert page.total == 7  # the factory certificate and six leaves
    cache = app.cache["view_cache"]
    assert set(cache.kept) == {view.id for view in page.items}
    assert set(cache.infos) == {view.fingerprint_sha256 for view in page.items}
    # A search reads every certificate's parsed fields, yet builds the views of its page.
    found = certificates.query_certificates(app, certificates.CertificateQuery(text="site3"))
    assert [view.issued_to for view in found.items] == ["site3.example.test"]
    assert len(cache.infos) == 7 and len(cache.kept) == 3


def test_every_filter_and_sort_shows_what_the_whole_list_holds(
    new_appliance: Callable[[], Appliance],
) -> None:
    """Filters and sorts read the row's columns and parsed fields, not the views: the
    pages they give are those of the views a one-off reader builds for every certificate."""
    app = new_appliance()
    start = dt.datetime.now(dt.UTC)
    ca = TestCA.make()
    keyed, named = ca.leaf("b-keyed.example.test"), ca.leaf("a-soon.example.test", days=20)
    imports.import_files(
        app,
        [
            ("chain.pem", pem(ca.intermediate) + pem(ca.root)),
            ("keyed.pem", pem(keyed[1]) + pem(keyed[0])),
            ("soon.pem", pem(named[1])),
            ("c.pem", pem(ca.leaf("c-plain.example.test")[1])),
        ],
    )
    certificates.rename(app, fingerprint(named[1]), "Zulu")
    everything = certificates.list_certificates(app)
    Query = certificates.CertificateQuery
    expected: dict[Query, Callable[[certificates.CertificateView], bool]] = {
        Query(): lambda v: True,
        Query(text="KEYED"): lambda v: "keyed" in v.subject,
        Query(text="dnsname - c-plain"): lambda v: "c-plain" in v.issued_to,
        Query(role="intermediate"): lambda v: v.issued_to == "Test Intermediate",
        Query(role="server", has_private_key=True): lambda v: (
            v.role == "server" and v.has_private_key  # the factory's and keyed's
        ),
        Query(has_private_key=False): lambda v: not v.has_private_key,
        Query(warning="any"): lambda v: bool(v.warnings),
        Query(warning="expiring-soon"): lambda v: v.friendly_name == "Zulu",
        Query(expiring_before=start + dt.timedelta(days=30)): lambda v: v.friendly_name == "Zulu",
    }
    for query, wanted in expected.items():
        shown = [v for v in everything if wanted(v)]
        assert shown and certificates.query_certificates(app, query).items == shown, query
    orders = {
        "friendly_name": lambda v: v.friendly_name.lower(),
        "issued_to": lambda v: v.issued_to.lower(),
        "issued_by": lambda v: v.issued_by.lower(),
        "expiration": lambda v: v.not_after,
    }
    for sort, key in orders.items():
        for descending in (False, True):
            query = Query(sort=sort, descending=descending, offset=1, limit=3)
            page = certificates.query_certificates(app, query)
            whole = sorted(everything, key=key, reverse=descending)
            assert (page.total, page.items) == (len(everything), whole[1:4]), query
