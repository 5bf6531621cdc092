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
