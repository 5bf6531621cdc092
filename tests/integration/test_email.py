"""Email Configuration through the CLI against a real SMTP relay (aiosmtpd): plain, STARTTLS
and implicit TLS, with and without AUTH; the mail read back; the relay's own answer on every
failure (refused recipient, wrong password, untrusted certificate, nothing listening, no
answer in time); the password sealed, never shown, never in an error or the audit trail."""

from __future__ import annotations

import io
import json
import socket
import threading
import zipfile
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text

from certgate.errors import MailError
from certgate.service import email
from certgate.service.appliance import Appliance
from certgate.service.audit import AuditFilter, list_events
from certgate.service.setup import initialise
from certgate.service.support import build_support_package
from tests.integration.conftest import Certgate
from tests.support.ci import missing
from tests.support.net import free_port, ipv6_loopback
from tests.support.polling import eventually
from tests.support.smtp import Relay, smtp_relay

PASSWORD = "s3cret relay password"
ADMINS = ("alice@example.com", "bob@example.net")


def configure(certgate: Certgate, port: int, security: str, *options: str) -> None:
    recipients = [part for admin in ADMINS for part in ("--to", admin)]
    certgate(
        "email",
        "set",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--security",
        security,
        "--from",
        "certgate@example.com",
        *recipients,
        *options,
    )


def configure_login(certgate: Certgate, relay: Relay, secret: Path) -> None:
    """STARTTLS with the relay's CA bundle, username ``mailer`` and the password in ``secret``."""
    ca = relay.write_ca(secret.parent)
    login = ("--username", "mailer", "--password-file", str(secret), "--ca-file", str(ca))
    configure(certgate, relay.port, "starttls", *login)


def test_a_test_email_goes_through_starttls_with_auth_and_the_password_never_shows(
    certgate: Certgate, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    with smtp_relay("starttls", users={"mailer": PASSWORD}) as relay:
        configure_login(certgate, relay, secret)
        sent = certgate("email", "test")
        assert "test email handed to 127.0.0.1:" in sent.stdout
        [mail] = relay.messages
        assert relay.logins == ["mailer"]
    assert mail["Subject"] == "certgate: test email"
    assert mail["From"] == "certgate@example.com"
    assert [str(a.addr_spec) for a in mail["To"].addresses] == list(ADMINS)
    assert "alice@example.com, bob@example.net" in mail.get_content()

    shown = certgate("email", "show")
    assert "set (not shown)" in shown.stdout and PASSWORD not in shown.stdout
    document = json.loads(certgate("email", "show", "--json").stdout)
    assert document["password_set"] is True and document["username"] == "mailer"
    assert PASSWORD not in json.dumps(document)
    assert document["to_addresses"] == list(ADMINS) and document["configured"] is True
    for stored in certgate.data_dir.glob("certgate.db*"):  # sealed: not in the database file
        assert PASSWORD.encode() not in stored.read_bytes()
    with closing(Appliance.open(certgate.data_dir)) as app:
        [event] = list_events(app, AuditFilter(action="email.update"), 10).events
        package = zipfile.ZipFile(io.BytesIO(build_support_package(app).data))
    assert not [n for n in package.namelist() if PASSWORD.encode() in package.read(n)]
    assert event.actor.startswith("cli:") and "password set" in event.detail
    assert PASSWORD not in event.detail and "'127.0.0.1'" in event.detail
    # A CA bundle (a corporate one holds a hundred roots) is counted, not copied into the trail.
    assert "BEGIN CERTIFICATE" not in event.detail and "ca_bundle=1 certificate(s)" in event.detail


def test_a_wrong_password_is_said_with_the_relays_answer_and_not_the_password(
    certgate: Certgate, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("not the password")
    with smtp_relay("starttls", users={"mailer": PASSWORD}) as relay:
        configure_login(certgate, relay, secret)
        failed = certgate("email", "test", expect=1)
        assert relay.messages == []
    assert failed.returncode == 1
    assert "refused the username and password: 535 5.7.8 Authentication credentials invalid" in (
        failed.stderr
    )
    assert "not the password" not in failed.stderr + failed.stdout


def test_implicit_tls_checks_the_relays_certificate_unless_told_otherwise(
    certgate: Certgate, tmp_path: Path
) -> None:
    with smtp_relay("tls") as relay:
        configure(certgate, relay.port, "tls")
        untrusted = certgate("email", "test", expect=1)
        assert untrusted.returncode == 1
        assert "TLS failed: the relay's certificate is not trusted" in untrusted.stderr
        assert "unable to get local issuer certificate" in untrusted.stderr  # OpenSSL's words
        assert relay.messages == []

        certgate("email", "set", "--ca-file", str(relay.write_ca(tmp_path)))
        certgate("email", "test")
        assert len(relay.messages) == 1
        assert "checked against the CA bundle" in certgate("email", "show").stdout

        certgate("email", "set", "--no-ca-file", "--no-verify")
        certgate("email", "test")
        assert len(relay.messages) == 2
        assert "NOT checked" in certgate("email", "show").stdout


def test_a_plain_relay_that_refuses_the_recipients_is_quoted(certgate: Certgate) -> None:
    with smtp_relay("none", refuse=True) as relay:
        configure(certgate, relay.port, "none")
        refused = certgate("email", "test", expect=1)
    assert refused.returncode == 1
    assert (
        "refused the recipients: alice@example.com: 550 5.1.1 <alice@example.com>: "
        "Recipient address rejected: User unknown in local recipient table"
    ) in refused.stderr


def test_a_recipient_the_relay_refuses_fails_the_test_though_the_others_got_it(
    certgate: Certgate,
) -> None:
    """smtplib raises only when every recipient is refused: one refused of two is said."""
    with smtp_relay("none", refuse={ADMINS[1]}) as relay:
        configure(certgate, relay.port, "none")
        refused = certgate("email", "test", expect=1)
        assert [message["To"] for message in relay.messages] == [", ".join(ADMINS)]
    assert refused.returncode == 1
    assert f"refused the recipients: {ADMINS[1]}: 550 5.1.1 <{ADMINS[1]}>: " in refused.stderr
    assert ADMINS[0] + ":" not in refused.stderr


def test_a_relay_that_is_down_or_silent_is_named(certgate: Certgate) -> None:
    port = free_port()
    configure(certgate, port, "none")
    down = certgate("email", "test", expect=1)
    assert down.returncode == 1
    assert f"mail to the relay 127.0.0.1:{port} failed: the connection was refused" in down.stderr

    with socket.socket() as silent:  # accepts, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        certgate("email", "set", "--port", str(silent.getsockname()[1]))
        with closing(Appliance.open(certgate.data_dir)) as app, pytest.raises(MailError) as raised:
            email.send_test(app, timeout=0.5)
    assert "no answer within 0.5 seconds (timeout)" in str(raised.value)


def test_a_relay_that_never_finishes_its_answer_is_given_up_on(certgate: Certgate) -> None:
    """A relay (or a tarpit in front of it) that keeps sending continuation lines of its
    greeting, each well within the per-step timeout, never ends the answer: the test email
    (and every expiry notice behind it) waited for ever."""
    with socket.socket() as tarpit:
        tarpit.bind(("127.0.0.1", 0))
        tarpit.listen()
        stop = threading.Event()

        def trickle() -> None:
            connection, _ = tarpit.accept()
            with connection:
                while not stop.wait(0.1):
                    try:
                        connection.sendall(b"220-please wait\r\n")
                    except OSError:
                        return

        threading.Thread(target=trickle, daemon=True).start()
        port = tarpit.getsockname()[1]
        configure(certgate, port, "none")
        outcome: list[BaseException] = []

        def send() -> None:
            with closing(Appliance.open(certgate.data_dir)) as app:
                try:
                    email.send_test(app, timeout=0.5)
                except MailError as error:
                    outcome.append(error)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        sender.join(timeout=15)
        stop.set()
    assert not sender.is_alive(), "the test email is still waiting for the relay"
    [error] = outcome
    assert str(error).startswith(f"mail to the relay 127.0.0.1:{port} failed")
    assert "no complete answer within 3 seconds (timeout)" in str(error)


def test_notify_says_what_it_found_before_email_is_configured(certgate: Certgate) -> None:
    """Run from a timer before Email Configuration exists, with nothing due: it printed
    nothing at all, not even that mail is not set up."""
    run = certgate("notify")
    assert run.stdout.strip() == "no notice due (email is not configured)"


def test_a_port_that_is_not_a_plain_smtp_relay_is_said_so(certgate: Certgate) -> None:
    """The usual slips: the SSH port (the answer quoted as '-1 2.0-OpenSSH_9.6'), and
    implicit TLS against a relay that speaks plain SMTP first (OpenSSL's 'WRONG_VERSION_NUMBER'
    alone), each said as what to change."""
    with socket.socket() as ssh:
        ssh.bind(("127.0.0.1", 0))
        ssh.listen()

        def greet() -> None:
            connection, _ = ssh.accept()
            with connection:
                connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
                connection.recv(1024)

        threading.Thread(target=greet, daemon=True).start()
        port = ssh.getsockname()[1]
        configure(certgate, port, "none")
        said = certgate("email", "test", expect=1).stderr
    assert f"mail to the relay 127.0.0.1:{port} failed: its answer is not SMTP" in said, said
    assert "-1 " not in said and "is it the relay's SMTP port?" in said

    with smtp_relay("none") as plain:
        configure(certgate, plain.port, "tls", "--no-verify")
        said = certgate("email", "test", expect=1).stderr
    assert "TLS failed: WRONG_VERSION_NUMBER" in said
    assert "the relay does not speak TLS from its first byte: choose starttls or none" in said


def test_the_settings_are_checked_before_they_are_kept(certgate: Certgate) -> None:
    unset = certgate("email", "test", expect=1)
    assert unset.returncode == 1 and "SMTP relay host: is not configured yet" in unset.stderr
    bad = certgate(
        *("email", "set", "--host", "relay.example.com", "--from", "me@example.com"),
        *("--to", "ok@example.com", "--to", "bob@example.com\r\nBcc: eve@example.com"),
        expect=1,
    )
    assert bad.returncode == 1 and "administrator addresses: " in bad.stderr
    assert "is not a mail address" in bad.stderr
    days = certgate(
        *("email", "set", "--host", "relay.example.com", "--from", "me@example.com"),
        *("--to", "ok@example.com", "--notice-days", "400"),
        expect=1,
    )
    assert "expiry notice days: each must be from 0 to 365 days" in days.stderr
    flood = [part for n in range(20_000) for part in ("--to", f"admin{n}@example.com")]
    many = certgate("email", "set", *flood, "--to", "not an address", expect=1)  # as a page form
    assert "administrator addresses: at most 20 addresses" in many.stderr
    assert json.loads(certgate("email", "show", "--json").stdout)["configured"] is False
    certgate(
        *("email", "set", "--host", "relay.example.com", "--from", "me@example.com"),
        *("--to", "ok@example.com", "--notice-days", "7,60, 0", "--security", "tls"),
    )
    document = json.loads(certgate("email", "show", "--json").stdout)
    assert document["notice_days"] == [60, 7, 0]
    assert document["port"] == 465  # the default port followed the security


def test_a_relay_on_the_ipv6_loopback_is_taken(certgate: Certgate) -> None:
    """A relay on ::1 (a local Postfix listening on IPv6) was refused as "not a host name or
    IP address": the check wanted a letter or digit first."""
    if not ipv6_loopback():
        missing("no IPv6 loopback on this host")
    with smtp_relay("none", host="::1") as relay:
        configure_host = ("email", "set", "--host", "::1", "--port", str(relay.port))
        certgate(*configure_host, "--security", "none", "--from", "certgate@example.com",
                 "--to", ADMINS[0])  # fmt: skip
        sent = certgate("email", "test")
        assert f"test email handed to [::1]:{relay.port}" in sent.stdout
        assert len(relay.messages) == 1
    refused = certgate("email", "set", "--host", ":::1", expect=1)
    assert "is not a host name or IP address" in refused.stderr


def test_a_username_or_password_smtplib_cannot_send_is_refused(
    certgate: Certgate, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("pässwörd\n")
    relay = ("--host", "127.0.0.1", "--security", "tls", "--from", "me@example.com")
    relay += ("--to", "ok@example.com")
    password = certgate(
        "email", "set", *relay, "--username", "mailer", "--password-file", secret, expect=1
    )
    assert password.returncode == 1
    assert "password: must be ASCII (SMTP AUTH sends nothing else)" in password.stderr
    assert "pässwörd" not in password.stderr + password.stdout
    username = certgate("email", "set", *relay, "--username", "mäiler", expect=1)
    assert "username: must be ASCII (SMTP AUTH sends nothing else)" in username.stderr
    # a byte that is not UTF-8 in the environment (Python keeps it as a lone surrogate)
    unreadable = {"CERTGATE_SMTP_PASSWORD": "pass\udcffword"}
    environment = certgate("email", "set", *relay, "--username", "mailer", env=unreadable, expect=2)
    assert "$CERTGATE_SMTP_PASSWORD is not UTF-8 text" in environment.stderr
    assert json.loads(certgate("email", "show", "--json").stdout)["configured"] is False


def test_the_stored_password_goes_nowhere_but_the_relay_it_was_given_for(
    certgate: Certgate, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    with smtp_relay("starttls", users={"mailer": PASSWORD}) as relay:
        configure_login(certgate, relay, secret)
        moved = certgate("email", "set", "--host", "localhost")
        assert "note: the stored SMTP password was removed" in moved.stdout
        assert json.loads(certgate("email", "show", "--json").stdout)["password_set"] is False
        certgate("email", "set", "--host", "127.0.0.1", "--password-file", secret)
        kept = certgate("email", "set", "--notice-days", "7", "--host", "127.0.0.1", "--json")
        assert kept.json()["password_set"] is True and kept.json()["notices"] == []
        certgate("email", "test")
        assert relay.logins == ["mailer"]
    clear = certgate("email", "set", "--security", "none", expect=1)
    assert clear.returncode == 1
    assert "connection security: none would send the SMTP username and password in clear" in (
        clear.stderr
    )
    with closing(Appliance.open(certgate.data_dir)) as app:
        events = list_events(app, AuditFilter(action="email.update"), 10).events
    assert any("password removed because the relay changed (host)" in e.detail for e in events)
    assert json.loads(certgate("email", "show", "--json").stdout)["password_set"] is True


def test_two_changes_at_once_both_stay_on_postgresql(data_dir: Path, postgresql_url: str) -> None:
    """Two PUT /email at once, each changing one field of the one settings document: the
    second reads what the first wrote (the row is locked when read), so neither is lost."""
    initialise(data_dir, postgresql_url)
    holder = create_engine(postgresql_url)
    with closing(Appliance.open(data_dir, postgresql_url)) as app, holder.connect() as held:
        email.update_settings(
            app, host="relay.example.com", from_address="a@example.com", to_addresses=["o@x.test"]
        )
        held.execute(text("SELECT value FROM settings WHERE name = 'email' FOR UPDATE"))
        changes = [{"notice_days": [7]}, {"from_address": "certgate@example.com"}]
        errors = _run_behind(holder, held, app, changes)
        settings = email.get_settings(app)
    holder.dispose()
    assert errors == []
    assert settings.notice_days == (7,) and settings.from_address == "certgate@example.com"


def test_two_first_saves_at_once_both_stay_on_postgresql(
    data_dir: Path, postgresql_url: str
) -> None:
    """The first two saves ever, at once: no settings row to lock yet. Both used to insert
    one, and the second failed on the key (a 500); now the row is made without conflict
    first, the second waits for the first's lock, and both changes stay."""
    initialise(data_dir, postgresql_url)
    holder = create_engine(postgresql_url)
    with closing(Appliance.open(data_dir, postgresql_url)) as app, holder.connect() as held:
        # An insert of the row, not committed: both saves reach the key and wait behind it
        held.execute(text("INSERT INTO settings (name, value) VALUES ('email', '{}')"))
        relay = {
            "host": "relay.example.com",
            "from_address": "certgate@example.com",
            "to_addresses": ["o@x.test"],
        }
        changes = [{**relay, "notice_days": [7]}, {**relay, "verify_certificate": False}]
        errors = _run_behind(holder, held, app, changes)
        settings = email.get_settings(app)
    holder.dispose()
    assert errors == []
    assert settings.notice_days == (7,) and settings.verify_certificate is False


def _run_behind(
    holder: Engine, held: Connection, app: Appliance, changes: list[dict[str, Any]]
) -> list[BaseException]:
    """Start ``email.update_settings`` once per change while ``held`` holds a lock they
    need; once both wait behind it, roll it back and let them finish: their errors."""
    holder_pid = held.execute(text("SELECT pg_backend_pid()")).scalar_one()
    errors: list[BaseException] = []

    def save(change: dict[str, Any]) -> None:
        try:
            email.update_settings(app, **change)
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=save, args=(change,)) for change in changes]
    for thread in threads:
        thread.start()
    blocked = (  # behind the holder, or behind one that waits for the holder
        "SELECT count(*) FROM pg_stat_activity a WHERE :p = ANY(pg_blocking_pids(a.pid)) "
        "OR EXISTS (SELECT FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid)) "
        "AND :p = ANY(pg_blocking_pids(b.pid)))"
    )
    with holder.connect() as watching:  # both wait behind the holder: then let them go

        def waiting() -> int:
            with watching.begin():  # a new transaction: a fresh pg_stat_activity
                return int(watching.execute(text(blocked), {"p": holder_pid}).scalar_one())

        eventually(lambda: waiting() == len(changes), what="both changes waiting")
    held.rollback()
    for thread in threads:
        thread.join()
    return errors


def test_to_replaces_the_administrators_as_its_help_says(certgate: Certgate) -> None:
    """``--to`` said only "An administrator (repeatable)"; one --to replaced them all."""
    relay = ("--host", "smtp.example.test", "--from", "certgate@example.test")
    certgate("email", "set", *relay, "--to", "one@example.test", "--to", "two@example.test")

    after = certgate.json("email", "set", "--to", "three@example.test")

    assert after["to_addresses"] == ["three@example.test"]
    assert "replace" in certgate("email", "set", "--help").stdout.split("--to ADDR")[1]
