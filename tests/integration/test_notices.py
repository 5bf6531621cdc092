"""Expiry notices against a real relay (aiosmtpd), on SQLite and PostgreSQL: one mail per
certificate per threshold crossed, assigned certificates first, naming the certificate and
the addresses that will present it; never twice (checks racing on threads, a restart, a
``serve --workers 2`` beside ``certgate notify``); a refused or absent relay is retried at
the next check and shown on Diagnostic Status meanwhile."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from certgate.errors import MailError
from certgate.service import certificates, email, imports, networking, notices
from certgate.service.appliance import Appliance
from certgate.service.health import FindingCode, diagnose
from certgate.service.setup import initialise
from tests.support.net import free_port
from tests.support.pki import fingerprint, issue, make_chain, new_key, pem
from tests.support.polling import eventually
from tests.support.server import run_cli, running_appliance
from tests.support.smtp import Relay, smtp_relay
from tests.support.smtp import configure_plain as configure

ADDRESS = "127.0.0.2"
ADMIN = "ops@example.com"


def add_expiring(app: Appliance, host: str, days_left: int) -> str:
    """Import a certificate (with its key) for ``host`` that expires in ``days_left`` days;
    its fingerprint."""
    chain = make_chain(host, days=days_left + 1)  # issued a day ago
    imports.import_files(app, [(f"{host}.pem", pem(chain.leaf, chain.leaf_key))])
    return fingerprint(chain.leaf)


@pytest.fixture
def relay() -> Iterator[Relay]:
    with smtp_relay("none") as running:
        yield running


def test_one_notice_per_threshold_assigned_first_never_repeated(
    appliance: Appliance, relay: Relay
) -> None:
    configure(appliance, relay.port)
    spare = add_expiring(appliance, "spare.example.test", 3)  # sooner, but nobody presents it
    site = add_expiring(appliance, "site.example.test", 5)
    networking.add_address(appliance, ADDRESS)
    networking.assign(appliance, [ADDRESS], site, confirm=True)

    result = notices.check(appliance)
    assert [(n.friendly_name, n.threshold) for n in result.sent] == [
        ("site.example.test", 7),  # assigned first; one mail, not three (30, 14 and 7 crossed)
        ("spare.example.test", 7),
    ]
    first, second = relay.messages
    assert first["Subject"] == "certgate: the certificate 'site.example.test' expires in 4 day(s)"
    body = first.get_content()
    assert "Subject              CN=site.example.test" in body
    assert f"SHA-256 fingerprint  {site}" in body
    assert "Not valid after      " in body and " GMT" in body
    assert f"The addresses that will present an expired certificate:\n  {ADDRESS}\n" in body
    assert "No IP address presents it" in second.get_content()
    assert first["To"] == ADMIN

    assert notices.check(appliance).sent == []  # once
    later = appliance.now() + dt.timedelta(days=4, hours=12)
    appliance.clock = lambda: later  # both cross 1 day; spare has expired
    assert sorted((n.friendly_name, n.threshold) for n in notices.check(appliance).sent) == [
        ("site.example.test", 1),
        ("spare.example.test", 0),
    ]
    assert "has expired" in relay.messages[-1]["Subject"] + relay.messages[-2]["Subject"]
    assert notices.check(appliance).sent == []
    assert len(relay.messages) == 4
    assert spare not in [n.fingerprint for n in notices.unsent_notices(appliance)]


def test_checks_racing_on_threads_send_each_notice_once(appliance: Appliance, relay: Relay) -> None:
    configure(appliance, relay.port)
    for index in range(3):
        add_expiring(appliance, f"race{index}.example.test", 5)
    start = threading.Barrier(4)

    def race() -> None:
        start.wait()
        notices.check(appliance)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(str(m["Subject"]) for m in relay.messages) == [
        f"certgate: the certificate 'race{index}.example.test' expires in 4 day(s)"
        for index in range(3)
    ]


def test_a_check_longer_than_the_lease_keeps_its_later_claims(appliance: Appliance) -> None:
    """Each send takes 6 minutes of the appliance's clock: the second claim of a check is
    made 6 minutes after it started, and a check running meanwhile must not take it over
    as abandoned (the lease is 10 minutes from the claim, not from the check's start)."""
    moment = [appliance.now()]
    appliance.clock = lambda: moment[0]
    for host, days_left in (("first.example.test", 3), ("second.example.test", 5)):
        add_expiring(appliance, host, days_left)
    beside: list[notices.CheckResult] = []

    async def slow_relay(relay: Relay) -> None:
        moment[0] += dt.timedelta(minutes=6)
        if len(relay.messages) == 2:  # the second notice is being sent: another sender checks
            loop = asyncio.get_running_loop()
            beside.append(await loop.run_in_executor(None, notices.check, appliance))

    with smtp_relay("none", on_mail=slow_relay) as relay:
        configure(appliance, relay.port)
        result = notices.check(appliance)
    assert [n.friendly_name for n in result.sent] == ["first.example.test", "second.example.test"]
    assert [n.sent for n in beside] == [[]]
    assert len(relay.messages) == 2


def test_a_certificate_deleted_while_a_check_runs_is_not_told_about(appliance: Appliance) -> None:
    """The administrator deletes a certificate while the relay takes the notice before it:
    no mail announces the expiry of a certificate that is no longer on the appliance."""
    add_expiring(appliance, "first.example.test", 3)
    doomed = add_expiring(appliance, "doomed.example.test", 5)

    async def meanwhile(relay: Relay) -> None:
        if len(relay.messages) == 1:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, certificates.delete_certificate, appliance, doomed)

    with smtp_relay("none", on_mail=meanwhile) as relay:
        configure(appliance, relay.port)
        result = notices.check(appliance)
    assert [str(m["Subject"]) for m in relay.messages] == [
        "certgate: the certificate 'first.example.test' expires in 2 day(s)"
    ]
    assert [n.friendly_name for n in result.sent] == ["first.example.test"]
    assert notices.notice_counts(appliance) == {"sent": 1, "failed": 0, "sending": 0}


def test_a_hostile_subject_reaches_the_mail_visibly_escaped(
    appliance: Appliance, relay: Relay
) -> None:
    """A certificate's subject and issuer are the CA's text: escape sequences (read in a
    terminal mail client) and a line break that forges a line of the notice are shown as
    their escapes, as on every other face."""
    key = new_key()
    hostile = "esc\x1b]0;PWNED\x07\x1b[2J\nNot valid after      never"
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostile)])
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "right\u202eleft\x9b")])
    certificate = issue(subject, key.public_key(), issuer, key, ca=False, days=6)
    imports.import_files(appliance, [("hostile.pem", pem(certificate))])
    configure(appliance, relay.port)
    assert len(notices.check(appliance).sent) == 1
    [mail] = relay.messages
    body = mail.get_content()
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in body + str(mail["Subject"])
    assert "Subject              CN=esc\\x1b]0\\;PWNED\\x07\\x1b[2J\\x0aNot valid after" in body
    assert "Issuer               O=right\\u202eleft\\x9b\n" in body
    dates = [line for line in body.splitlines() if line.strip().startswith("Not valid after")]
    assert len(dates) == 1 and "never" not in dates[0]  # no forged line


def test_a_friendly_name_stored_with_a_line_break_forges_no_line_of_the_notice(
    appliance: Appliance, relay: Relay
) -> None:
    """A name an older certgate stored before names were checked (as
    test_names_stored_before_the_rule_are_printed_visibly): the body's Friendly name line
    shows its line break as an escape."""
    site = add_expiring(appliance, "legacy.example.test", 5)
    with appliance.store.transaction("test") as repository:
        row = repository.certificate_by_fingerprint(site)
        assert row is not None
        row.friendly_name = "legacy\nNot valid after      never"
    configure(appliance, relay.port)
    assert len(notices.check(appliance).sent) == 1
    body = relay.messages[0].get_content()
    assert "  Friendly name        legacy\\x0aNot valid after      never\n" in body
    dates = [line for line in body.splitlines() if line.strip().startswith("Not valid after")]
    assert len(dates) == 1 and "never" not in dates[0]


def test_a_check_made_while_the_clock_was_ahead_does_not_silence_the_real_notices(
    appliance: Appliance, relay: Relay
) -> None:
    """The appliance booted with its clock 25 days ahead (a dead RTC battery, a bad NTP
    answer) and a check ran: the certificate, 20 days from expiry, looked expired and its
    "has expired" mail went. Once the clock is right, its notices must still go when due, not
    be taken as sent already (by that clock's records) and never sent at all."""
    moment = [appliance.now()]
    appliance.clock = lambda: moment[0]
    add_expiring(appliance, "site.example.test", 20)
    configure(appliance, relay.port)
    right = moment[0]

    moment[0] = right + dt.timedelta(days=25)
    [early] = notices.check(appliance).sent
    assert early.threshold == 0  # what the wrong clock said: nothing to undo

    moment[0] = right  # the clock is set right
    [sent] = notices.check(appliance).sent
    assert (sent.threshold, len(relay.messages)) == (30, 2)
    assert "expires in 19 day(s)" in str(relay.messages[-1]["Subject"])
    assert notices.check(appliance).sent == []  # once
    moment[0] = right + dt.timedelta(days=6, hours=12)  # 14 days crossed
    assert [n.threshold for n in notices.check(appliance).sent] == [14]
    moment[0] = right + dt.timedelta(days=20, hours=1)  # expired
    assert [n.threshold for n in notices.check(appliance).sent] == [0]
    assert notices.unsent_notices(appliance) == []


def test_a_failed_send_is_retried_and_shown_until_it_goes(
    appliance: Appliance, data_dir: Path
) -> None:
    add_expiring(appliance, "retry.example.test", 5)
    assert [n.state for n in notices.unsent_notices(appliance)] == ["due"]  # not configured
    assert notices.check(appliance).waiting

    with smtp_relay("none", refuse=True) as refusing:
        configure(appliance, refusing.port)
        [failed] = notices.check(appliance).failed
    assert "550 5.1.1 <ops@example.com>: Recipient address rejected" in str(failed.error)
    [finding] = [
        f for f in diagnose(appliance, [], None).findings if f.code == FindingCode.NOTICE_NOT_SENT
    ]
    assert "'retry.example.test' (7 day(s) before expiry) could not be sent" in finding.message
    assert "550 5.1.1" in finding.message

    configure(appliance, free_port())  # the relay is down
    [down] = notices.check(appliance).failed
    assert "the connection was refused" in str(down.error) and down.attempts == 2

    with smtp_relay("none") as working:
        configure(appliance, working.port)
        [sent] = notices.check(appliance).sent
        assert sent.friendly_name == "retry.example.test" and len(working.messages) == 1
        assert notices.check(appliance).sent == []
    assert notices.unsent_notices(appliance) == []
    assert not [f for f in diagnose(appliance, [], None).findings]

    again = Appliance.open(data_dir, appliance.store.url)  # a restart: still once
    with closing(again), smtp_relay("none") as after_restart:
        configure(again, after_restart.port)
        assert notices.check(again).sent == [] and after_restart.messages == []


def test_a_relay_that_fails_one_notice_is_not_tried_for_each_of_the_others(
    appliance: Appliance,
) -> None:
    """Forty certificates due at once and a relay that does not answer: the check waited the
    timeout for each of them in turn (20 s each by default: 13 minutes here, hours for a
    large import), and a relay that said "421 try again later" got every other mail anyway.
    The first failure is the answer for the check: the others are recorded failed with it
    (shown, retried at the next check) without a connection each."""
    for index in range(40):
        add_expiring(appliance, f"batch{index}.example.test", 5)
    with socket.socket() as silent:  # accepts, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        configure(appliance, silent.getsockname()[1])
        result = notices.check(appliance, timeout=0.5)
        silent.setblocking(False)
        accepted = []
        with contextlib.suppress(BlockingIOError):
            while True:
                accepted.append(silent.accept()[0])
        for connection in accepted:
            connection.close()
    assert len(result.failed) == 40 and result.sent == []
    assert len(accepted) == 1
    first, *others = result.failed
    assert "no answer within 0.5 seconds (timeout)" in str(first.error)
    assert all("no answer within 0.5 seconds (timeout)" in str(n.error) for n in others)
    assert len(notices.unsent_notices(appliance)) == 40
    [finding] = diagnose(appliance, [], None).findings  # one fault, not forty warnings
    assert finding.message.startswith("40 expiry notices could not be sent ('batch")
    assert " and 35 more; retried at the next check): mail to the relay" in finding.message


def test_a_message_the_relay_refuses_does_not_hold_back_the_others(appliance: Appliance) -> None:
    """A content filter refuses one notice (it comes first: it expires soonest); the relay
    itself works, so the next notices go, at every check."""
    add_expiring(appliance, "filtered.example.test", 3)
    add_expiring(appliance, "fine.example.test", 5)
    with smtp_relay("none", refuse_content="filtered") as relay:
        configure(appliance, relay.port)
        result = notices.check(appliance)
        assert [n.friendly_name for n in result.sent] == ["fine.example.test"]
        [failed] = result.failed
        assert "the relay refused the message: 554 5.7.1 Message rejected" in str(failed.error)
        again = notices.check(appliance)
        assert (again.sent, len(again.failed)) == ([], 1)
    assert len(relay.messages) == 1


def test_a_relay_that_took_the_notice_and_answered_quit_oddly_is_not_sent_it_again(
    appliance: Appliance,
) -> None:
    """The relay queued the notice ("250 Ok: queued"), then answered QUIT with something other
    than 221: the notice went, and must not be recorded failed and mailed again at every
    check."""
    add_expiring(appliance, "queued.example.test", 5)
    with smtp_relay("none", quit_answer="250 2.0.0 Bye") as relay:
        configure(appliance, relay.port)
        result = notices.check(appliance)
        assert [n.friendly_name for n in result.sent] == ["queued.example.test"]
        assert result.failed == []
        assert notices.check(appliance).sent == []
        email.send_test(appliance)
    assert len(relay.messages) == 2  # the notice once, and the test email
    assert notices.unsent_notices(appliance) == []


def test_a_relay_closing_its_service_at_the_end_of_a_mail_holds_back_the_others(
    appliance: Appliance,
) -> None:
    """'421 try again later' after the first mail's content is the relay's answer, not a
    refusal of that message (a content filter says 5xx): the next notices waited for the
    next check instead of each going to a relay that asked to be left alone."""
    add_expiring(appliance, "first.example.test", 3)
    add_expiring(appliance, "second.example.test", 5)
    closing_down = "421 4.3.2 Service shutting down, try again later"
    with smtp_relay("none", refuse_content="first", content_refusal=closing_down) as relay:
        configure(appliance, relay.port)
        result = notices.check(appliance)
    assert result.sent == [] and relay.messages == []
    assert [n.friendly_name for n in result.failed] == ["first.example.test", "second.example.test"]
    assert all("421 4.3.2 Service shutting down" in str(n.error) for n in result.failed)


def test_a_notice_one_recipient_refused_is_sent_once_and_the_refusal_logged(
    appliance: Appliance, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay took it for the other administrator: sent again, it would reach them twice."""
    add_expiring(appliance, "partly.example.test", 5)
    with smtp_relay("none", refuse={"typo@example.com"}) as relay:
        configure(appliance, relay.port)
        email.update_settings(appliance, to_addresses=[ADMIN, "typo@example.com"])
        with caplog.at_level(logging.WARNING, logger="certgate.notices"):
            [sent] = notices.check(appliance).sent
        assert notices.check(appliance).sent == [] and len(relay.messages) == 1
    assert sent.friendly_name == "partly.example.test"
    assert "refused the recipients: typo@example.com: 550 5.1.1" in caplog.text
    assert notices.unsent_notices(appliance) == []
    # Diagnostic Status says who was not told (a typo there loses every notice), until a
    # later notice of the certificate reaches every administrator.
    [finding] = diagnose(appliance, [], None).findings
    assert finding.code is FindingCode.NOTICE_NOT_SENT
    assert finding.message.startswith(
        "the expiry notice for 'partly.example.test' (7 day(s) before expiry) went, but not "
        "to every administrator: mail to the relay"
    )
    assert "refused the recipients: typo@example.com: 550 5.1.1" in finding.message
    moment = appliance.now() + dt.timedelta(days=4, hours=12)
    appliance.clock = lambda: moment
    with smtp_relay("none") as fixed:
        email.update_settings(appliance, port=fixed.port)
        assert [n.threshold for n in notices.check(appliance).sent] == [1]
    assert diagnose(appliance, [], None).findings == []


def test_a_failed_notice_names_the_certificate_as_it_is_named_now(appliance: Appliance) -> None:
    """Renamed after its notice failed: Diagnostic Status names what the Certificates page
    shows (and the retried mail will say), not the name it had at the first attempt."""
    fingerprint_ = add_expiring(appliance, "old-name.example.test", 5)
    with smtp_relay("none", refuse=True) as refusing:
        configure(appliance, refusing.port)
        notices.check(appliance)
    certificates.rename(appliance, fingerprint_, "Portal 2026")
    [finding] = diagnose(appliance, [], None).findings
    assert "the expiry notice for 'Portal 2026' (7 day(s) before expiry)" in finding.message
    [unsent] = notices.unsent_notices(appliance)
    assert unsent.friendly_name == "Portal 2026"


def test_a_failed_notice_is_not_shown_for_ever(appliance: Appliance) -> None:
    """A failed notice that a more urgent one superseded, or whose certificate was deleted or
    expired over FORGOTTEN_AFTER ago, is never retried: not shown, not counted as failed."""
    moment = [appliance.now()]
    appliance.clock = lambda: moment[0]
    add_expiring(appliance, "superseded.example.test", 5)
    deleted = add_expiring(appliance, "deleted.example.test", 6)
    with smtp_relay("none", refuse=True) as refusing:
        configure(appliance, refusing.port)
        assert len(notices.check(appliance).failed) == 2
    assert notices.notice_counts(appliance)["failed"] == 2
    certificates.delete_certificate(appliance, deleted)

    moment[0] += dt.timedelta(days=4, hours=12)  # superseded.example.test crosses 1 day
    with smtp_relay("none") as working:
        configure(appliance, working.port)
        [sent] = notices.check(appliance).sent
    assert (sent.friendly_name, sent.threshold) == ("superseded.example.test", 1)
    assert notices.unsent_notices(appliance) == []
    assert not [f for f in diagnose(appliance, [], None).findings]
    assert notices.notice_counts(appliance) == {"sent": 1, "failed": 0, "sending": 0}

    add_expiring(appliance, "forgotten.example.test", 5)  # half a day left by the clock
    with smtp_relay("none", refuse=True) as refusing:
        configure(appliance, refusing.port)
        [failed] = notices.check(appliance).failed
    assert [n.friendly_name for n in notices.unsent_notices(appliance)] == [failed.friendly_name]
    moment[0] += dt.timedelta(days=50)  # it expired 49 days ago: history, never retried
    assert notices.unsent_notices(appliance) == []
    assert notices.notice_counts(appliance)["failed"] == 0


def test_a_password_smtplib_cannot_send_fails_the_notice_and_stays_out_of_the_log(
    appliance: Appliance, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-ASCII password stored by a certgate that did not refuse it yet: smtplib cannot
    send it (AUTH is ASCII); the notice is recorded failed, the password is in no message."""
    password = "mötley-crüe"
    add_expiring(appliance, "auth.example.test", 5)
    with smtp_relay("starttls", users={"mailer": password}) as relay:
        email.update_settings(
            appliance,
            host="127.0.0.1",
            port=relay.port,
            security="starttls",
            ca_bundle=relay.ca_pem.decode(),
            from_address="certgate@example.com",
            to_addresses=[ADMIN],
            username="mailer",
            password="ascii placeholder",
        )
        with appliance.store.transaction() as repository:  # as an older certgate kept it
            stored = dict(repository.setting(email.SETTING, {}))
            sealed = appliance.sealer.seal("smtp password", password.encode())
            stored["password_sealed"] = base64.b64encode(sealed).decode()
            repository.set_setting(email.SETTING, stored)
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(MailError) as raised:
                email.send_test(appliance)
            [failed] = notices.check(appliance).failed
        assert relay.messages == []
    said = [str(raised.value), str(failed.error), caplog.text]
    assert "username and password must be ASCII" in said[0] and said[0] == said[1]
    assert not [text for text in said if "ö" in text or "ü" in text or "tley" in text]
    assert [n.state for n in notices.unsent_notices(appliance)] == ["failed"]


@pytest.mark.tls  # a real certgate serve (slow: see tests/conftest.py)
def test_serve_with_two_workers_and_notify_beside_it_send_one_mail(
    data_dir: Path, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    initialise(data_dir)
    with closing(Appliance.open(data_dir)) as app:
        configure(app, relay.port)
        add_expiring(app, "both.example.test", 5)
    monkeypatch.setenv(notices.INTERVAL_ENV, "0.2")  # serve checks all the time meanwhile
    with running_appliance(data_dir, ADDRESS, serve_options=("--workers", "2")):
        runs = [run_cli(data_dir, "notify", "--json", check=False) for _ in range(2)]
        eventually(lambda: relay.messages, what="the notice")
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    sent_by_notify = sum(len(json.loads(run.stdout)["sent"]) for run in runs)
    after = json.loads(run_cli(data_dir, "notify", "--json").stdout)  # a new process
    assert len(relay.messages) == 1 and sent_by_notify <= 1 and after["sent"] == []
    log = (data_dir / "serve.log").read_text()
    assert "[worker 1] expiry notice" not in log  # the first worker checks, the other serves
