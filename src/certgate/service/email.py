"""Security > Email Configuration: the SMTP relay the appliance's mail goes through (host,
port, connection security, the relay's certificate check and an optional CA bundle, optional
username and password), the From address, the administrators it goes to, and the days before
expiry at which a certificate's notice is sent (``service/notices.py``).

The password is sealed with the master key like a private key (AES-256-GCM, its own
associated data), never shown back by any face, never logged, never in an error message or
the support package: the views below say only whether one is set.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.errors import ValidationError
from certgate.fields import item
from certgate.pki.names import is_ip_address
from certgate.service import keystore, smtp
from certgate.service.appliance import SERIAL_SETTING, Appliance
from certgate.service.smtp import MailSecurity, Relay
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.repository import Repository
from certgate.store.sealing import Sealer
from certgate.text import has_control, visible

SETTING = "email"
#: The associated data the password is sealed with: a sealed key moved here does not open.
PASSWORD_SEALED_AS = "smtp password"
#: How long each step of a conversation with the relay may take (connect, each reply).
SEND_TIMEOUT = 20.0
#: The guide's "be proactive": 30, 14, 7 and 1 days before expiry, and on the day it expires.
DEFAULT_NOTICE_DAYS = (30, 14, 7, 1, 0)
NOTICE_DAYS_MAX = 365
NOTICE_THRESHOLDS_MAX = 10
RECIPIENTS_MAX = 20
ADDRESS_MAX = 254  # RFC 5321's path limit
HOST_MAX = 253
USERNAME_MAX = 200
PASSWORD_MAX = 500
CA_BUNDLE_MAX = 1024 * 1024
#: A mailbox as an administrator types it: local@domain, nothing that could end a header or
#: name another mailbox (no spaces, quotes, brackets, commas, semicolons).
_ADDRESS = re.compile(r"[^@\s<>\"',;:()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._:-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class EmailSettings:
    """What every face shows: never the password, only whether one is set."""

    host: str = ""
    port: int = MailSecurity.STARTTLS.default_port
    security: MailSecurity = MailSecurity.STARTTLS
    verify_certificate: bool = True
    ca_bundle: str | None = None
    from_address: str = ""
    to_addresses: tuple[str, ...] = ()
    username: str | None = None
    password_set: bool = False
    notice_days: tuple[int, ...] = DEFAULT_NOTICE_DAYS
    #: what a change did beyond what was asked (the answer of ``update_settings`` only)
    notices: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        """Mail can be sent: a relay, a sender and at least one recipient."""
        return bool(self.host and self.from_address and self.to_addresses)


@dataclass(frozen=True)
class TestResult:
    relay: str
    recipients: tuple[str, ...]


def _stored(repository: Repository, *, for_update: bool = False) -> dict[str, Any]:
    return dict(repository.setting(SETTING, {}, for_update=for_update))


def reseal_password(repository: Repository, reseal: keystore.Reseal) -> int:
    """The relay's password under a new master key (a rotation); 1 if one is set."""
    stored = _stored(repository, for_update=True)
    sealed = stored.get("password_sealed")
    if not sealed:
        return 0
    again = reseal(PASSWORD_SEALED_AS, base64.b64decode(sealed), "the SMTP relay's password")
    repository.set_setting(SETTING, {**stored, "password_sealed": base64.b64encode(again).decode()})
    repository.flush()
    return 1


def read_settings(repository: Repository) -> EmailSettings:
    stored = _stored(repository)
    return EmailSettings(
        host=stored.get("host", ""),
        port=int(stored.get("port", MailSecurity.STARTTLS.default_port)),
        security=MailSecurity(stored.get("security", MailSecurity.STARTTLS)),
        verify_certificate=bool(stored.get("verify_certificate", True)),
        ca_bundle=stored.get("ca_bundle"),
        from_address=stored.get("from_address", ""),
        to_addresses=tuple(stored.get("to_addresses", ())),
        username=stored.get("username"),
        password_set=bool(stored.get("password_sealed")),
        notice_days=tuple(stored.get("notice_days", DEFAULT_NOTICE_DAYS)),
    )


def get_settings(app: Appliance) -> EmailSettings:
    with app.store.reading() as repository:
        return read_settings(repository)


def read_relay(repository: Repository, sealer: Sealer) -> tuple[EmailSettings, Relay]:
    """The settings and the relay they name, its password unsealed (for sending only)."""
    settings = read_settings(repository)
    sealed = _stored(repository).get("password_sealed")
    password = (
        keystore.unseal(repository, sealer, PASSWORD_SEALED_AS, base64.b64decode(sealed)).decode()
        if sealed
        else None
    )
    return settings, Relay(
        host=settings.host,
        port=settings.port,
        security=settings.security,
        verify_certificate=settings.verify_certificate,
        ca_pem=settings.ca_bundle,
        username=settings.username,
        password=password,
    )


def update_settings(
    app: Appliance,
    *,
    host: str | None = None,
    port: int | None = None,
    security: str | None = None,
    verify_certificate: bool | None = None,
    ca_bundle: str | None = None,
    from_address: str | None = None,
    to_addresses: Sequence[str] | None = None,
    username: str | None = None,
    password: str | None = None,
    notice_days: Sequence[int] | None = None,
    actor: Actor = APPLIANCE,
) -> EmailSettings:
    """Change some settings (None keeps a value); the result is checked as a whole.

    An empty ``ca_bundle`` trusts the system's roots again; an empty ``username`` removes the
    username and password, an empty ``password`` the password. A new ``security`` without a
    ``port`` moves a port that was the old security's default to the new one's.

    The stored password goes only to the relay it was given for: a change of host, port,
    security, certificate check or CA bundle without a new password removes it (a notice
    says so), so that a session cannot send it elsewhere; and security ``none`` (in clear)
    is refused with a username or password.
    """
    with app.store.transaction(actor) as repository:
        stored = _stored(repository, for_update=True)  # two changes at once: none lost
        current = read_settings(repository)
        changes: dict[str, Any] = {}
        if host is not None:
            changes["host"] = host.strip()
        if security is not None:
            changes["security"] = _security(security)
            if port is None and current.port == current.security.default_port:
                changes["port"] = changes["security"].default_port
        if port is not None:
            changes["port"] = port
        if verify_certificate is not None:
            changes["verify_certificate"] = verify_certificate
        if ca_bundle is not None:
            changes["ca_bundle"] = checked_ca_bundle(ca_bundle) if ca_bundle.strip() else None
        if from_address is not None:
            changes["from_address"] = checked_address(from_address, "from_address")
        if to_addresses is not None:
            changes["to_addresses"] = _recipients(to_addresses)
        if username is not None:
            changes["username"] = _username(username)
            if changes["username"] is None:
                password = ""
        if notice_days is not None:
            changes["notice_days"] = _notice_days(notice_days)
        updated = dataclasses.replace(current, **changes)
        _check(updated)
        if not changes and password is None:  # nothing given (an API PUT of no field)
            return current  # nothing written or recorded
        moved = [name for name in _RELAY if getattr(updated, name) != getattr(current, name)]
        dropped = bool(moved) and password is None and current.password_set
        if dropped:
            password = ""
        if updated.security is MailSecurity.NONE and (
            updated.username or (current.password_set if password is None else password)
        ):
            raise ValidationError(
                "security",
                "none would send the SMTP username and password in clear: choose starttls or "
                "tls, or remove the username",
            )
        value = {
            **stored,
            **{
                name: list(v) if isinstance(v, tuple) else str(v) if name == "security" else v
                for name, v in dataclasses.asdict(updated).items()
                if name not in ("password_set", "notices")
            },
        }
        if password is not None:
            _check_password(password)
            if password:
                secret = password.encode()
                sealed = keystore.seal(repository, app.sealer, PASSWORD_SEALED_AS, secret)
                value["password_sealed"] = base64.b64encode(sealed).decode()
            else:
                value.pop("password_sealed", None)
        repository.set_setting(SETTING, value)
        said = [
            f"{name}={_audited(name, getattr(updated, name))}"
            for name in changes
            if getattr(updated, name) != getattr(current, name)
        ]
        because = f"the relay changed ({', '.join(moved)})"
        if password is not None and (password or current.password_set):
            said.append("password " + ("set" if password else "removed"))
            said[-1] += f" because {because}" if dropped else ""
        repository.audit(AuditAction.EMAIL_UPDATE, "Email settings", ", ".join(said))
        notices = [f"the stored SMTP password was removed: {because}; give it again"] * dropped
        return dataclasses.replace(read_settings(repository), notices=tuple(notices))


def _audited(name: str, value: object) -> str:
    """A changed setting as the audit trail says it: a CA bundle by its count of certificates
    (a corporate bundle is hundreds of kilobytes of PEM), the others as they are."""
    if name == "ca_bundle" and isinstance(value, str):
        return f"{value.count('-----BEGIN CERTIFICATE-----')} certificate(s)"
    return repr(value)


#: The settings that say where the password goes: a change of any removes it
_RELAY = ("host", "port", "security", "verify_certificate", "ca_bundle")


def _security(value: str) -> MailSecurity:
    try:
        return MailSecurity(value)
    except ValueError:
        choices = ", ".join(choice.value for choice in MailSecurity)
        raise ValidationError("security", f"choose one of {choices}") from None


def checked_address(value: str, field: str) -> str:
    address = value.strip()
    if not address:
        raise ValidationError(field, "is required")
    if len(address) > ADDRESS_MAX or has_control(address) or not _ADDRESS.fullmatch(address):
        raise ValidationError(field, f"{address[:60]!r} is not a mail address (name@example.com)")
    return address


def _recipients(values: Sequence[str]) -> tuple[str, ...]:
    """Each address once (whatever its case), refused as soon as there are too many: a page's
    form can hold 4 MiB of them."""
    addresses: dict[str, str] = {}
    for index, value in enumerate(values):
        if not value.strip():
            continue
        address = checked_address(value, item("to_addresses", index))
        addresses.setdefault(address.lower(), address)
        if len(addresses) > RECIPIENTS_MAX:
            raise ValidationError("to_addresses", f"at most {RECIPIENTS_MAX} addresses")
    return tuple(addresses.values())


#: smtplib encodes the username and password of AUTH as ASCII (a UnicodeEncodeError else)
_NOT_ASCII = "must be ASCII (SMTP AUTH sends nothing else)"


def _username(value: str) -> str | None:
    username = value.strip()
    if len(username) > USERNAME_MAX or has_control(username):
        raise ValidationError("username", f"must be one line of at most {USERNAME_MAX} characters")
    if not username.isascii():
        raise ValidationError("username", _NOT_ASCII)
    return username or None


def _check_password(password: str) -> None:
    if len(password) > PASSWORD_MAX or "\n" in password or "\r" in password or "\0" in password:
        raise ValidationError("password", f"must be one line of at most {PASSWORD_MAX} characters")
    if not password.isascii():
        raise ValidationError("password", _NOT_ASCII)


def checked_ca_bundle(pem: str) -> str:
    if len(pem) > CA_BUNDLE_MAX:
        raise ValidationError("ca_bundle", "is larger than 1 MiB")
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise ValidationError(
            "ca_bundle", "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates)


def _notice_days(values: Sequence[int]) -> tuple[int, ...]:
    days = sorted(set(values), reverse=True)
    if not days:
        raise ValidationError("notice_days", "give at least one number of days (0: on expiry)")
    if len(days) > NOTICE_THRESHOLDS_MAX:
        raise ValidationError("notice_days", f"at most {NOTICE_THRESHOLDS_MAX} thresholds")
    for value in days:
        if isinstance(value, bool) or not 0 <= value <= NOTICE_DAYS_MAX:
            raise ValidationError("notice_days", f"each must be from 0 to {NOTICE_DAYS_MAX} days")
    return tuple(days)


def _check(settings: EmailSettings) -> None:
    host = settings.host
    if not host:
        raise ValidationError("host", "is required")
    # an IP address as written too: ::1 begins with no letter or digit
    if len(host) > HOST_MAX or not (_HOST.fullmatch(host) or is_ip_address(host)):
        raise ValidationError("host", f"{host[:60]!r} is not a host name or IP address")
    if not 1 <= settings.port <= 65535:
        raise ValidationError("port", "must be between 1 and 65535")
    if not settings.from_address:
        raise ValidationError("from_address", "is required")
    if not settings.to_addresses:
        raise ValidationError("to_addresses", "give at least one administrator address")


def describe_days(days: Sequence[int]) -> str:
    """``(30, 14, 0)`` -> "30 and 14 days before a certificate expires, and on the day it
    expires"."""
    before = [str(d) for d in days if d]
    said = []
    if before:
        listed = ", ".join(before[:-1]) + " and " + before[-1] if len(before) > 1 else before[0]
        unit = "day" if before == ["1"] else "days"
        said.append(f"{listed} {unit} before a certificate expires")
    if 0 in days:
        said.append("on the day it expires")
    return ", and ".join(said)


def message(settings: EmailSettings, subject: str, body: str) -> EmailMessage:
    """A plain-text mail from the configured sender to every administrator. Mail is a face
    like the others: every control character but the body's line breaks is shown as its
    escape (``text.visible``), whatever a certificate or a CA's answer put in the text."""
    mail = EmailMessage()
    mail["Subject"] = visible(subject)
    mail["From"] = settings.from_address
    mail["To"] = ", ".join(settings.to_addresses)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid("certgate", domain=settings.from_address.rsplit("@", 1)[-1])
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    mail.set_content(visible(body, keep="\n"))
    return mail


def send_test(app: Appliance, timeout: float = SEND_TIMEOUT) -> TestResult:
    """Send a test mail now; ``MailError`` with the relay's answer when it fails."""
    with app.store.reading() as repository:
        settings, relay = read_relay(repository, app.sealer)
        serial = repository.setting(SERIAL_SETTING, "")
    if not settings.configured:
        raise ValidationError(
            "host", "is not configured yet: set the relay, the From address and a recipient"
        )
    body = (
        f"This is a test email from certgate (appliance serial number {serial}).\n\n"
        f"It went through the relay {relay.where} ({settings.security.value}).\n"
        f"Certificate expiry notices go to: {', '.join(settings.to_addresses)}\n"
        f"They are sent {describe_days(settings.notice_days)}.\n"
    )
    refused = smtp.send(relay, message(settings, "certgate: test email", body), timeout)
    if refused:  # it went to the others: a test says which address will not be told
        raise smtp.refusal(relay, refused)
    return TestResult(relay=relay.where, recipients=settings.to_addresses)
