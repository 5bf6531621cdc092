"""The warnings the Certificates page shows and scripts filter on, derived from what a
certificate is and what stands above it (pki/diagnostics.py)."""

from __future__ import annotations

import datetime as dt

import cryptography_vectors
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from certgate.pki.certinfo import CertInfo, read_certificate
from certgate.pki.diagnostics import (
    ChainState,
    WarningCode,
    derive_warnings,
    format_time,
    uncovered_hostnames,
)
from certgate.pki.trust import matches_any
from tests.support.pki import TestCA, issue, name, new_key

#: The test CA is valid from yesterday for a year; the leaves are judged a moment after now.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
CA = TestCA.make()
ROOT = read_certificate(CA.root)
INTERMEDIATE = read_certificate(CA.intermediate)
COMPLETE = ChainState(issuers=(INTERMEDIATE, ROOT), complete=True)


def _leaf(host: str = "www.example.com", **options: object) -> CertInfo:
    options.setdefault("not_before", NOW - dt.timedelta(days=10))
    options.setdefault("days", 365)
    options.setdefault("sans", [host])
    key = options.pop("key", None) or new_key()
    certificate = issue(
        name(host),
        key.public_key(),  # type: ignore[attr-defined]
        CA.intermediate.subject,
        CA.intermediate_key,
        ca=False,
        **options,  # type: ignore[arg-type]
    )
    return read_certificate(certificate)


def _codes(
    info: CertInfo, chain: ChainState = COMPLETE, *, key: bool = True, now: dt.datetime = NOW
) -> list[WarningCode]:
    return [w.code for w in derive_warnings(info, chain, has_private_key=key, now=now)]


def test_a_good_server_certificate_with_its_chain_and_key_has_no_warning() -> None:
    assert _codes(_leaf()) == []


def test_a_self_signed_server_certificate_is_flagged_but_a_root_is_not() -> None:
    key = new_key()
    self_signed = issue(
        name("appliance.example.com"), key.public_key(), name("appliance.example.com"), key,
        ca=False, sans=["appliance.example.com"], not_before=NOW - dt.timedelta(days=1),
    )  # fmt: skip
    alone = ChainState(issuers=(), complete=True)
    assert _codes(read_certificate(self_signed), alone) == [WarningCode.SELF_SIGNED]
    assert _codes(ROOT, alone, now=dt.datetime.now(dt.UTC)) == []


def test_a_missing_issuer_is_named_with_what_to_import() -> None:
    [warning] = derive_warnings(
        _leaf(), ChainState(issuers=(), complete=False), has_private_key=True, now=NOW
    )
    assert warning.code is WarningCode.CHAIN_INCOMPLETE
    assert "the issuer 'CN=Test Intermediate' of 'CN=www.example.com' is not in the store" in (
        warning.message
    )
    assert "import the intermediate and root certificates" in warning.message
    [above] = derive_warnings(
        _leaf(), ChainState(issuers=(INTERMEDIATE,), complete=False), has_private_key=True, now=NOW
    )
    assert "the issuer 'CN=Test Root' of 'CN=Test Intermediate'" in above.message


def _validity(moment: dt.datetime) -> list[tuple[WarningCode, str]]:
    found = derive_warnings(_leaf(), COMPLETE, has_private_key=True, now=moment)
    return [(w.code, w.message) for w in found if w.code is not WarningCode.CHAIN_EXPIRED]


def test_validity_is_judged_at_the_time_of_reading() -> None:
    """_leaf() is valid from ten days before NOW for 365 days."""
    start, end = NOW - dt.timedelta(days=10), NOW + dt.timedelta(days=355)
    assert _validity(end + dt.timedelta(seconds=1)) == [
        (WarningCode.EXPIRED, f"expired on {format_time(end)}")
    ]
    assert _validity(start - dt.timedelta(seconds=1)) == [
        (WarningCode.NOT_YET_VALID, f"not valid before {format_time(start)}")
    ]
    assert _validity(end - dt.timedelta(days=10)) == [
        (WarningCode.EXPIRING_SOON, f"expires in 10 day(s), on {format_time(end)}")
    ]
    assert _validity(end - dt.timedelta(days=31)) == []  # a month and a day left: quiet


def test_an_expired_certificate_in_the_chain_is_named() -> None:
    old_key = new_key()
    expired_root = issue(
        name("Old Root"), old_key.public_key(), name("Old Root"), old_key, ca=True,
        not_before=NOW - dt.timedelta(days=400), days=30,
    )  # fmt: skip
    chain = ChainState(issuers=(INTERMEDIATE, read_certificate(expired_root)), complete=True)
    [warning] = derive_warnings(_leaf(), chain, has_private_key=True, now=NOW)
    assert (warning.code, warning.message) == (
        WarningCode.CHAIN_EXPIRED,
        "the chain certificate 'CN=Old Root' has expired",
    )


def test_weak_keys_and_signatures_are_flagged() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak = derive_warnings(_leaf(key=small), COMPLETE, has_private_key=True, now=NOW)
    assert [(w.code, w.message) for w in weak] == [
        (WarningCode.WEAK_KEY, "weak key: RSA (1024 Bits); use at least 2048 bits")
    ]
    # cryptography no longer signs with SHA-1: a CA-made one from its test vectors.
    with cryptography_vectors.open_vector_file("x509/ee-pss-sha1-cert.pem", "rb") as file:
        sha1 = read_certificate(x509.load_pem_x509_certificate(file.read()))
    found = derive_warnings(sha1, COMPLETE, has_private_key=True, now=NOW)
    [warning] = [w for w in found if w.code is WarningCode.WEAK_SIGNATURE]
    assert warning.message.startswith("weak signature: ") and "ask for SHA-256" in warning.message


def test_server_names_browsers_would_not_match_are_flagged() -> None:
    assert _codes(_leaf(sans=[])) == [WarningCode.NO_SAN]
    assert _codes(_leaf("www.example.com", sans=["example.com"])) == [WarningCode.CN_NOT_IN_SAN]
    assert _codes(_leaf("WWW.Example.com", sans=["www.example.com"])) == []
    assert _codes(_leaf("Example Web Server", sans=["www.example.com"])) == []  # not a host
    assert _codes(_leaf("bücher.example", sans=["xn--bcher-kva.example"])) == []  # its A-label
    ip_san = [WarningCode.IP_SAN]  # a Common Name that is an IP address, repeated as its SAN
    assert _codes(_leaf("192.0.2.10", sans=["192.0.2.10"])) == ip_san
    assert _codes(_leaf("192.0.2.10", sans=["192.0.2.11"])) == [WarningCode.CN_NOT_IN_SAN, *ip_san]


def test_an_ip_address_san_is_flagged() -> None:
    assert _codes(_leaf(sans=["www.example.com", "12.12.1.52"])) == [WarningCode.IP_SAN]


def test_a_server_certificate_without_its_key_says_it_cannot_be_assigned() -> None:
    [warning] = derive_warnings(_leaf(), COMPLETE, has_private_key=False, now=NOW)
    assert warning.code is WarningCode.PRIVATE_KEY_MISSING
    assert "cannot be assigned to an IP address until its key is imported" in warning.message
    assert _codes(INTERMEDIATE, ChainState((ROOT,), True), key=False, now=NOW) == []  # a CA


def test_each_warning_has_the_label_the_filter_shows() -> None:
    assert WarningCode.SELF_SIGNED.label == "Self-signed"
    assert WarningCode.CN_NOT_IN_SAN.label == "Common Name not among the SANs"
    assert WarningCode.CHAIN_INCOMPLETE.label == "Chain incomplete"
    assert len({code.label for code in WarningCode}) == len(WarningCode)


def test_times_are_shown_as_the_guide_shows_them() -> None:
    moment = dt.datetime(2013, 4, 11, 4, 30, 16, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert format_time(moment) == "2013-04-11 09:30:16 GMT"


def _hostname_warnings(info: CertInfo, hostnames: dict[str, list[str]]) -> list[str]:
    found = derive_warnings(info, COMPLETE, has_private_key=True, now=NOW, hostnames=hostnames)
    return [w.message for w in found if w.code is WarningCode.HOSTNAME_NOT_COVERED]


def test_hostnames_of_its_addresses_are_matched_as_browsers_match_them() -> None:
    """A wildcard stands for exactly one label: not the bare domain, not two labels."""
    wildcard = _leaf("www.example.com", sans=["www.example.com", "*.example.com"])
    covered = {"192.0.2.10": ["www.example.com", "shop.example.com", "SHOP.Example.com."]}
    assert _hostname_warnings(wildcard, covered) == []
    [message] = _hostname_warnings(
        wildcard,
        {
            "192.0.2.10": ["shop.example.com", "example.com", "a.b.example.com"],
            "192.0.2.11": ["example.com"],
        },
    )
    assert "example.com (192.0.2.10, 192.0.2.11), a.b.example.com (192.0.2.10)" in message
    assert "shop.example.com" not in message
    assert "browsers will warn" in message


def test_the_common_name_does_not_cover_a_hostname() -> None:
    """Browsers match the SANs only."""
    info = _leaf("portal.example.com", sans=["www.example.com"])
    [message] = _hostname_warnings(info, {"192.0.2.10": ["portal.example.com"]})
    assert "portal.example.com (192.0.2.10)" in message
    assert _hostname_warnings(info, {}) == []  # no hostname: nothing to cover
    assert WarningCode.HOSTNAME_NOT_COVERED.label == "Hostname of an address not covered"


def test_an_ip_address_san_covers_no_hostname() -> None:
    """A certificate an ACME CA issued for an address (RFC 8738) names it as an iPAddress:
    clients connecting by that address are covered (openssl -verify_ip, in the ACME tests),
    and a DNS hostname of the address is covered only by a DNS name, however its labels
    read."""
    by_address = _leaf("192.0.2.10", sans=["192.0.2.10"])
    assert [san.type for san in by_address.sans] == ["iPAddress"]
    assert uncovered_hostnames(by_address, ["shop.example.com", "10.2.0.192.in-addr.arpa"]) == [
        "shop.example.com",
        "10.2.0.192.in-addr.arpa",
    ]
    both = _leaf("192.0.2.10", sans=["192.0.2.10", "shop.example.com"])
    assert _hostname_warnings(both, {"192.0.2.10": ["shop.example.com"]}) == []
    [message] = _hostname_warnings(by_address, {"192.0.2.10": ["shop.example.com"]})
    assert "shop.example.com (192.0.2.10)" in message
    # An ordered name list with an address in it is matched the same way (the guard's rule).
    assert not matches_any(["192.0.2.10"], "shop.example.com")
    assert matches_any(["192.0.2.10", "shop.example.com"], "SHOP.example.com")
    assert matches_any(["2001:db8::a"], "2001:DB8:0:0::A")
