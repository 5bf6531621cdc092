"""ACME Renewal Information (RFC 9773) against a CA that offers it: Debian's Pebble does not,
so a proxy in front of it (tests/support/ca_proxy.py) adds ``renewalInfo`` to its directory
and answers each certificate's suggested window, everything else passed to Pebble as sent.
``certgate serve`` renews a certificate as soon as the CA's window has begun, though nearly
all of its five years are left; not while the window is ahead; and asks again only once the
answer's ``Retry-After`` has passed. Renewal information the CA cannot give (a 500) keeps
its last suggestion; with none given before, or none offered (test_acme.py's 30-second
certificate), a third of the validity decides."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from cryptography import x509

from certgate.errors import AcmeError
from certgate.service import acme_orders, acme_renewal
from certgate.service.appliance import Appliance
from certgate.store.acme import claim_renewal
from tests.api.client import Server
from tests.support.ca_proxy import ALREADY_REPLACED, UNAUTHORIZED, CaProxy, running_ca_proxy
from tests.support.net import free_port
from tests.support.pebble import order, orders, register, running_pebble
from tests.support.polling import eventually
from tests.support.served import handshake, served_fingerprint, wait_until_served
from tests.support.server import RunningAppliance, run_cli, running_appliance

ADDRESS = "127.0.0.74"
DAY = dt.timedelta(days=1)


def certificate_id(der: bytes) -> str:
    """RFC 9773 4.1: base64url(the authority key identifier's keyIdentifier) "."
    base64url(the serial number's DER content octets), unpadded."""
    certificate = x509.load_der_x509_certificate(der)
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier is not None
    serial = certificate.serial_number
    octets = serial.to_bytes(serial.bit_length() // 8 + 1, "big")  # a leading 0 keeps it >= 0

    def encoded(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return f"{encoded(aki.key_identifier)}.{encoded(octets)}"


@contextmanager
def ca_offering_renewal_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retry_after: int, interval: int = 1
) -> Iterator[tuple[RunningAppliance, CaProxy]]:
    """A serve checking for renewals every ``interval`` seconds, registered with the proxy in
    front of Pebble (certificates valid five years), whose window is a month ahead."""
    monkeypatch.setenv("CERTGATE_RENEWAL_INTERVAL", str(interval))
    http_port = free_port()
    now = dt.datetime.now(dt.UTC)
    with (
        running_appliance(
            tmp_path / "data", ADDRESS, serve_options=("--http-port", str(http_port))
        ) as appliance,
        running_pebble(tmp_path / "pebble", ADDRESS, http_port) as pebble,
        running_ca_proxy(tmp_path / "proxy", pebble) as proxy,
    ):
        proxy.window = (now + 30 * DAY, now + 31 * DAY)
        proxy.retry_after = retry_after
        register(appliance.data_dir, proxy)
        yield appliance, proxy


def shown_moment(text: str) -> dt.datetime:
    """The moment at the end of ``text``, as the CLI and the page write it."""
    return dt.datetime.strptime(text[-20:], "%Y-%m-%d %H:%M UTC").replace(tzinfo=dt.UTC)


def begun() -> tuple[dt.datetime, dt.datetime]:
    """A window that began an hour ago and ends now."""
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(hours=1), now


def renewal_of(appliance: RunningAppliance, first: dict[str, object]) -> dict[str, object]:
    """The order serve placed to renew ``first``, once its certificate is served."""
    eventually(
        lambda: served_fingerprint(ADDRESS, appliance.port) != first["certificate_fingerprint"],
        timeout=60,
        what="serve renews the certificate",
    )
    [second] = [entry for entry in orders(appliance.data_dir) if entry["renewal_of"]]
    assert second["renewal_of"] == first["id"] and second["state"] == "valid"
    assert second["created_by"] == "appliance"
    assert served_fingerprint(ADDRESS, appliance.port) == second["certificate_fingerprint"]
    return second


def test_serve_renews_when_the_cas_window_has_begun_not_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ca_offering_renewal_info(tmp_path, monkeypatch, retry_after=1) as (appliance, proxy):
        first = order(appliance.data_dir, "ari", "ari.example.test", ADDRESS)
        wait_until_served(ADDRESS, appliance.port, str(first["certificate_fingerprint"]))
        leaf = handshake(ADDRESS, appliance.port)
        assert leaf.fingerprint == first["certificate_fingerprint"]
        asked_for = certificate_id(leaf.der)
        # Asked at each check (Retry-After: 1), for this certificate; the window is ahead.
        eventually(lambda: len(proxy.renewal_info_asked) >= 3, timeout=30, what="ARI asked")
        assert set(proxy.renewal_info_asked) == {asked_for}
        [listed] = orders(appliance.data_dir)
        assert listed["id"] == first["id"] and listed["renewed_by"] is None
        suggested = dt.datetime.fromisoformat(str(listed["renewal_suggested_at"]))
        start, end = proxy.window or (None, None)
        assert start is not None and end is not None and start <= suggested <= end
        # The CLI and the ACME page show it (a moment picked again at each answer).
        [line] = [
            line
            for line in run_cli(appliance.data_dir, "acme", "orders").stdout.splitlines()
            if line.startswith(f"order {first['id']}: the CA suggests renewing at ")
        ]
        assert start - dt.timedelta(minutes=1) <= shown_moment(line) <= end
        server = Server(appliance, admin_token="")
        with server.pages(server.login()) as pages:
            page = pages.get("/security/acme").text
        [said] = re.findall(r"The CA suggests renewing at [0-9-]+ [0-9:]+ UTC", page)
        assert start - dt.timedelta(minutes=1) <= shown_moment(said) <= end
        assert served_fingerprint(ADDRESS, appliance.port) == first["certificate_fingerprint"]

        # The CA's window of this certificate begins: renewed at the next check, with years
        # of validity left.
        proxy.windows[asked_for] = begun()
        second = renewal_of(appliance, first)
        certificate = x509.load_der_x509_certificate(leaf.der)
        left = certificate.not_valid_after_utc - dt.datetime.now(dt.UTC)
        assert left > 4 * 365 * DAY  # far more than a third: the CA's word decided
        assert "the CA suggests renewing 'ari' at" in appliance.log_text()
        # The renewal's order names the certificate it replaces (RFC 9773 5).
        placed, renewing = proxy.new_orders
        assert "replaces" not in placed and renewing["replaces"] == asked_for
        # The renewed certificate is asked about in turn (its own id): its window is ahead,
        # so it stays.
        renewed = handshake(ADDRESS, appliance.port)
        assert renewed.fingerprint == second["certificate_fingerprint"]
        eventually(
            lambda: proxy.renewal_info_asked.count(certificate_id(renewed.der)) >= 3,
            timeout=30,
            what="ARI asked about the renewed certificate",
        )
        assert len(orders(appliance.data_dir)) == 2
        assert served_fingerprint(ADDRESS, appliance.port) == second["certificate_fingerprint"]


def test_a_window_that_ends_before_it_begins_is_no_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 9773 4.3.3: a suggested window whose end precedes its start is malformed and
    treated as no answer. Read as given, its moments lie in the past, and the five-year
    certificate would be renewed at once; instead the suggestion shown before is withdrawn
    and the one-third rule keeps the certificate."""
    with ca_offering_renewal_info(tmp_path, monkeypatch, retry_after=1) as (appliance, proxy):
        first = order(appliance.data_dir, "inverted", "inverted.example.test", ADDRESS)
        eventually(
            lambda: orders(appliance.data_dir)[0]["renewal_suggested_at"] is not None,
            timeout=30,
            what="the window ahead is shown",
        )
        start, end = begun()
        proxy.window = (end, start)  # ends an hour before it starts
        asked = len(proxy.renewal_info_asked)
        eventually(lambda: len(proxy.renewal_info_asked) >= asked + 3, timeout=30, what="ARI asked")
        [listed] = orders(appliance.data_dir)
        assert listed["renewed_by"] is None and listed["renewal_suggested_at"] is None
        assert listed["renewal_error"] is None
        assert "not after it starts" in appliance.log_text()
        assert served_fingerprint(ADDRESS, appliance.port) == first["certificate_fingerprint"]
        assert len(proxy.new_orders) == 1


def test_the_retry_after_of_the_cas_answer_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window moves into the past right after the CA's first answer, which said to ask
    again in 6 s: the checks in between (every second), and ``certgate acme renew``, keep to
    that answer; the renewal follows the second question."""
    with ca_offering_renewal_info(tmp_path, monkeypatch, retry_after=6) as (appliance, proxy):
        first = order(appliance.data_dir, "patient", "patient.example.test", ADDRESS)
        eventually(lambda: proxy.renewal_info_asked, timeout=30, what="ARI asked")
        asked_for = proxy.renewal_info_asked[0]
        proxy.windows[asked_for] = begun()
        # The CA says another order replaced the certificate already: asked again without.
        proxy.refuse_replaces = (409, ALREADY_REPLACED)
        [not_due] = json.loads(run_cli(appliance.data_dir, "acme", "renew", "--json").stdout)
        assert time.monotonic() - proxy.renewal_info_times[0] < 5, "the answer still stands"
        assert not_due["state"] == "not-due" and len(proxy.renewal_info_asked) == 1
        assert served_fingerprint(ADDRESS, appliance.port) == first["certificate_fingerprint"]
        renewal_of(appliance, first)
        _, refused, renewing = proxy.new_orders
        assert refused["replaces"] == asked_for and "replaces" not in renewing
        assert f"the CA refused to replace {asked_for} ({ALREADY_REPLACED})" in appliance.log_text()
        first_asked, second_asked = proxy.renewal_info_times[:2]
        assert second_asked - first_asked >= 5.0, proxy.renewal_info_times  # 6 s, less a check's


def test_a_suggestion_stands_while_the_ca_cannot_be_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CA suggested renewing a few seconds from now, then its renewal information
    breaks (500): the suggestion shown is the one kept, and ``certgate acme renew`` renews
    the five-year certificate once that moment has passed, without a new answer."""
    only_acme_renew_asks = 3600  # serve's own check waits an hour
    with ca_offering_renewal_info(
        tmp_path, monkeypatch, retry_after=1, interval=only_acme_renew_asks
    ) as (appliance, proxy):
        first = order(appliance.data_dir, "steady", "steady.example.test", ADDRESS)
        now = dt.datetime.now(dt.UTC)
        proxy.window = (now + dt.timedelta(seconds=4), now + dt.timedelta(seconds=5))
        [not_due] = json.loads(run_cli(appliance.data_dir, "acme", "renew", "--json").stdout)
        assert not_due["state"] == "not-due"
        [listed] = orders(appliance.data_dir)
        suggested = dt.datetime.fromisoformat(str(listed["renewal_suggested_at"]))
        assert now < suggested <= proxy.window[1]  # the window, sent to the second

        proxy.renewal_info_broken = True
        asked = len(proxy.renewal_info_asked)

        def renewed() -> bool:
            [outcome] = json.loads(run_cli(appliance.data_dir, "acme", "renew", "--json").stdout)
            assert outcome["state"] in ("not-due", "renewed"), outcome
            return bool(outcome["state"] == "renewed")

        eventually(renewed, timeout=30, what="acme renew keeps to the CA's suggestion")
        assert dt.datetime.now(dt.UTC) >= suggested
        assert len(proxy.renewal_info_asked) > asked  # asked, and it could not say
        [second] = [entry for entry in orders(appliance.data_dir) if entry["renewal_of"]]
        assert second["renewal_of"] == first["id"] and second["state"] == "valid"
        wait_until_served(ADDRESS, appliance.port, str(second["certificate_fingerprint"]))


def test_renewal_information_the_ca_cannot_give_leaves_it_to_a_third_of_the_validity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CA offers renewalInfo but answers 500: logged, not a failed renewal; the
    30-second certificate is renewed when a third of it is left, not before."""
    monkeypatch.setenv("CERTGATE_RENEWAL_INTERVAL", "1")
    http_port = free_port()
    with (
        running_appliance(
            tmp_path / "data", ADDRESS, serve_options=("--http-port", str(http_port))
        ) as appliance,
        running_pebble(tmp_path / "pebble", ADDRESS, http_port, validity=30) as pebble,
        running_ca_proxy(tmp_path / "proxy", pebble) as proxy,
    ):
        proxy.window = begun()  # offered, but never answered
        proxy.renewal_info_broken = True
        register(appliance.data_dir, proxy)
        first = order(appliance.data_dir, "fallback", "fallback.example.test", ADDRESS)
        wait_until_served(ADDRESS, appliance.port, str(first["certificate_fingerprint"]))
        leaf = x509.load_der_x509_certificate(handshake(ADDRESS, appliance.port).der)
        eventually(lambda: len(proxy.renewal_info_asked) >= 2, timeout=30, what="ARI asked")
        second = renewal_of(appliance, first)
        renewed = dt.datetime.fromisoformat(str(second["created_at"]))
        validity = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        due = leaf.not_valid_after_utc - validity / 3
        assert renewed >= due - dt.timedelta(seconds=1), (renewed, due)
        listed = {entry["id"]: entry for entry in orders(appliance.data_dir)}
        assert listed[first["id"]]["renewal_suggested_at"] is None
        assert listed[first["id"]]["renewal_error"] is None  # the renewal did not fail
        assert "no renewal information for 'fallback'" in appliance.log_text()


def test_a_renewal_the_ca_will_not_let_replace_the_old_certificate_is_ordered_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An account registered anew since the first order (the CA lost the old one, an
    external account binding, staging to production) may not name the old account's
    certificate in ``replaces``: Let's Encrypt answers 403 ``unauthorized``. The renewal is
    ordered once more without it, instead of failing until the certificate expires."""
    with ca_offering_renewal_info(tmp_path, monkeypatch, retry_after=3600) as (appliance, proxy):
        first = order(appliance.data_dir, "moved", "moved.example.test", ADDRESS)
        proxy.refuse_replaces = (403, UNAUTHORIZED)
        renew = ("acme", "renew", str(first["certificate_id"]), "--force", "--json")
        [renewed] = json.loads(run_cli(appliance.data_dir, *renew).stdout)
        assert renewed["state"] == "renewed", renewed
        _, refused, plain = proxy.new_orders
        assert "replaces" in refused and "replaces" not in plain
        [second] = [entry for entry in orders(appliance.data_dir) if entry["renewal_of"]]
        assert second["state"] == "valid" and second["renewal_of"] == first["id"]
        wait_until_served(ADDRESS, appliance.port, str(second["certificate_fingerprint"]))


def test_a_suggestion_after_the_certificate_expires_leaves_it_to_a_third_of_the_validity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A CA that suggests renewing after the certificate has expired (its window beyond the
    five years) is not followed into the lapse: a day before the end, a third of the
    validity decides, and the renewal is placed. The suggestion is logged as not followed,
    and not kept to be shown (the ACME page and ``acme orders`` would name a moment that
    decides nothing)."""
    caplog.set_level(logging.INFO, logger="certgate")
    now = dt.datetime.now(dt.UTC)
    serve_waits = {"retry_after": 1, "interval": 3600}  # only this test asks
    with ca_offering_renewal_info(tmp_path, monkeypatch, **serve_waits) as (appliance, proxy):
        proxy.window = (now + 2000 * DAY, now + 2001 * DAY)
        first = order(appliance.data_dir, "late", "late.example.test", ADDRESS)
        app = Appliance.open(appliance.data_dir)
        try:
            with app.store.reading() as repository:
                certificate = repository.certificate(int(str(first["certificate_id"])))
                assert certificate is not None
            expires = x509.load_der_x509_certificate(certificate.der).not_valid_after_utc
            assert expires < proxy.window[0]
            [outcome] = acme_renewal.renew(app, now=expires - DAY)
        finally:
            app.close()
        assert outcome.state == "renewed", outcome
        assert proxy.renewal_info_asked  # the CA was asked, and said after the expiry
        assert "suggests renewing 'late'" in caplog.text and "once it has expired" in caplog.text
        listed = {entry["id"]: entry for entry in orders(appliance.data_dir)}
        assert listed[first["id"]]["renewal_suggested_at"] is None


def test_a_lease_taken_after_a_long_renewal_dates_from_when_it_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One check renews the certificates due one after another, each as long as the CA takes
    (up to a minute and a half). The lease on the next one dates from when it was taken, not
    from when the check began: else, after renewals longer than the lease in all, another
    renewer (a node whose check came later) takes it as lapsed while it is being renewed,
    and the certificate is renewed twice."""
    with ca_offering_renewal_info(tmp_path, monkeypatch, retry_after=3600, interval=3600) as (
        appliance,
        proxy,
    ):
        order(appliance.data_dir, "slow", "slow.example.test")
        second = order(appliance.data_dir, "next", "next.example.test")
        elapsed = [dt.timedelta(0)]

        def clock() -> dt.datetime:
            return dt.datetime.now(dt.UTC) + elapsed[0]

        app, other = Appliance.open(appliance.data_dir), Appliance.open(appliance.data_dir)
        app.clock = other.clock = clock
        taken: list[bool] = []

        def meanwhile(payload: dict[str, object]) -> None:
            if "slow.example.test" in json.dumps(payload):  # the CA takes its time
                elapsed[0] += acme_renewal.RENEWAL_LEASE + dt.timedelta(minutes=1)
                return
            now = other.now()  # another renewer, while this one renews "next"
            with other.store.transaction() as repository:
                lapsed = now - acme_renewal.RENEWAL_LEASE
                taken.append(
                    claim_renewal(repository, int(str(second["id"])), "b", now, lapsed, True)
                )

        proxy.on_new_order = meanwhile
        try:
            outcomes = acme_renewal.renew(app, force=True)
        finally:
            app.close()
            other.close()
        assert [outcome.state for outcome in outcomes] == ["renewed", "renewed"], outcomes
        assert taken and not any(taken)


def test_an_order_the_ca_validated_but_did_not_issue_in_time_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CA that validated the names but is still ``processing`` the order at the deadline
    (issuing slowly, RFC 8555 7.1.6) has validated it: the order fails saying so, not that
    the CA did not validate it and that it is still pending."""
    with ca_offering_renewal_info(tmp_path, monkeypatch, retry_after=3600, interval=3600) as (
        appliance,
        proxy,
    ):
        proxy.processing = True
        with closing(Appliance.open(appliance.data_dir)) as app, pytest.raises(AcmeError) as failed:
            acme_orders.place_order(
                app, name="slow", domains=["slow.example.test"], deadline=dt.timedelta(seconds=10)
            )
        said = str(failed.value)
        assert "validated the order but did not issue the certificate in time" in said, said
        assert "pending" not in said
        [listed] = orders(appliance.data_dir)
        assert listed["state"] == "failed" and listed["error"] == said.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<html>Bad Gateway</html>", "answered with something that is not JSON"),
        (b'{"status": 5, "identifiers": "x"}', "answered with something that is not ACME"),
    ],
    ids=["not-json", "not-an-order"],
)
def test_a_ca_answering_nonsense_fails_the_renewal_and_is_tried_again_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bytes, said: str
) -> None:
    """A CA (or a proxy in front of it) answering an order with a page that is not JSON, or
    JSON that is not an order: the renewal fails with that said, and is tried again after
    its backoff, as any failed renewal (no traceback; its lease is not left held)."""
    with ca_offering_renewal_info(tmp_path, monkeypatch, retry_after=3600, interval=3600) as (
        appliance,
        proxy,
    ):
        first = order(appliance.data_dir, "garbled", "garbled.example.test", ADDRESS)
        proxy.garbled_new_order = body
        renew = ("acme", "renew", str(first["certificate_id"]), "--force", "--json")
        failed = run_cli(appliance.data_dir, *renew, check=False)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
        [outcome] = json.loads(failed.stdout)
        assert outcome["state"] == "failed" and said in outcome["error"], outcome
        [entry] = [e for e in orders(appliance.data_dir) if e["id"] == first["id"]]
        assert entry["renewal_attempts"] == 1 and said in str(entry["renewal_error"])
