"""``certgate email``: Security > Email Configuration (show, set) and Send Test Email."""

from __future__ import annotations

from pathlib import Path

import click

from certgate.cli.ca_bundle import ca_bundle, ca_bundle_options
from certgate.cli.context import Options, command_options
from certgate.cli.output import echo, emit_document, report, report_fields
from certgate.cli.secrets_input import Secret
from certgate.errors import MailError
from certgate.schemas import EmailSettings, EmailTestResult, NoticeCheck
from certgate.service import email, notices
from certgate.service.smtp import MailSecurity

PASSWORD = Secret("--password-file", "the SMTP password", "CERTGATE_SMTP_PASSWORD")


def _days(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> list[int] | None:
    """``30,14,7,1,0`` -> days before expiry (0: on the day it expires)."""
    if value is None:
        return None
    try:
        return [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of days") from None


@click.group("email")
def email_group() -> None:
    """The SMTP relay, the administrators' addresses and certificate expiry notices."""


@email_group.command("show")
@command_options
def email_show(options: Options, as_json: bool) -> None:
    """The email settings (the password is never shown, only whether one is set)."""
    settings = options.call(email.get_settings)
    if not (as_json or settings.configured):
        echo("Email is not configured: certgate email set --host H --from ADDR --to ADDR")
    report_fields(as_json, EmailSettings, settings, _settings_fields)


def _settings_fields(settings: email.EmailSettings) -> list[tuple[str, object]]:
    return [
        ("SMTP relay", f"{settings.host or '(none)'} port {settings.port}"),
        ("Connection security", settings.security.value),
        ("Relay certificate", _checked(settings)),
        ("Username", settings.username or "(none)"),
        ("Password", "set (not shown)" if settings.password_set else "(none)"),
        ("From", settings.from_address or "(none)"),
        ("To", list(settings.to_addresses) or ["(none)"]),
        ("Expiry notices", email.describe_days(settings.notice_days)),
    ]


def _checked(settings: email.EmailSettings) -> str:
    if settings.security is MailSecurity.NONE:
        return "no TLS"
    if not settings.verify_certificate:
        return "NOT checked"
    return "checked against the CA bundle" if settings.ca_bundle else "checked (system roots)"


@email_group.command("set")
@click.option("--host", help="The SMTP relay: host name or IP address.")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Default: 25, 587 or 465 by --security."
)
@click.option(
    "--security",
    type=click.Choice([choice.value for choice in MailSecurity]),
    help="none, starttls (STARTTLS before anything else), or tls (implicit TLS).",
)
@click.option(
    "--verify/--no-verify",
    "verify_certificate",
    default=None,
    help="Check the relay's certificate and name (default: yes).",
)
@ca_bundle_options("an internal relay's certificate")
@click.option("--from", "from_address", metavar="ADDR", help="The From address.")
@click.option(
    "--to",
    "to_addresses",
    metavar="ADDR",
    multiple=True,
    help="An administrator's address (repeatable): those given replace the list.",
)
@click.option("--username", help="SMTP username ('' removes username and password).")
@PASSWORD.option
@click.option(
    "--notice-days",
    metavar="DAYS,...",
    callback=_days,
    help="Days before expiry to send a certificate's notice; 0: on expiry (default 30,14,7,1,0).",
)
@command_options
def email_set(
    options: Options,
    host: str | None,
    port: int | None,
    security: str | None,
    verify_certificate: bool | None,
    ca_file: Path | None,
    no_ca_file: bool,
    from_address: str | None,
    to_addresses: tuple[str, ...],
    username: str | None,
    password_file: Path | None,
    notice_days: list[int] | None,
    as_json: bool,
) -> None:
    """Change the email settings; options left out keep their value."""
    roots = ca_bundle(ca_file, no_ca_file)
    secret = PASSWORD.read(password_file)  # its file or its variable
    given = (host, port, security, verify_certificate, roots, from_address, username, secret)
    if all(v is None for v in (*given, notice_days)) and not to_addresses:
        raise click.UsageError("give a setting to change ('certgate email show' shows them)")
    settings = options.call(
        email.update_settings,
        host=host,
        port=port,
        security=security,
        verify_certificate=verify_certificate,
        ca_bundle=roots,
        from_address=from_address,
        to_addresses=list(to_addresses) or None,
        username=username,
        password=None if secret is None else secret.decode(),
        notice_days=notice_days,
        actor=options.actor,
    )
    notes = [f"note: {notice}" for notice in settings.notices]
    report(as_json, EmailSettings, settings, "saved", *notes)


@email_group.command("test")
@command_options
def email_test(options: Options, as_json: bool) -> None:
    """Send a test email now to every administrator address (exit 1 with the relay's answer
    when it fails)."""
    result = options.call(email.send_test)
    relayed = f"test email handed to {result.relay} for {', '.join(result.recipients)}"
    report(as_json, EmailTestResult, result, relayed)


@click.command("notify")
@command_options
def notify_command(options: Options, as_json: bool) -> None:
    """Check certificate expiry once and send the notices due (for cron or a systemd
    timer; 'certgate serve' checks hourly by itself). Each notice goes once, whoever checks.
    Exit status 1 when a send failed (retried at the next check) or notices are due while
    email is not configured."""
    result = options.call(notices.check)
    if as_json:
        emit_document(NoticeCheck, result)
    else:
        for notice in result.sent:
            echo(f"sent: {notice.friendly_name} ({notice.when})")
        for notice in result.failed:
            echo(f"failed: {notice.friendly_name} ({notice.when}): {notice.error}", err=True)
        if result.waiting:
            echo(
                f"email is not configured: {len(result.waiting)} notice(s) due "
                "(certgate email set ...)",
                err=True,
            )
        if not (result.sent or result.failed or result.waiting):
            echo("no notice due" + ("" if result.configured else " (email is not configured)"))
    if result.failed:
        raise MailError(f"{len(result.failed)} notice(s) not sent; the next check retries them")
    if result.waiting:
        raise SystemExit(1)
