"""The guide's SSL CONFIGURATION: TLS versions, the TLS 1.2 cipher list and the HTTPS port,
and the deadlines of every connection (nginx's timeouts) and of stopping.

The rules of what a policy may be live in ``certgate.tls.policy`` (checked with the OpenSSL that
serves); these settings are the stored, user-facing form of it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from certgate.errors import CertgateError, ValidationError
from certgate.fields import label
from certgate.service.appliance import Appliance
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.repository import Repository
from certgate.tls import Deadlines, TlsPolicy
from certgate.tls.policy import DEFAULT_GROUPS, DEFAULT_TLS12_CIPHERS, TlsVersionName

log = logging.getLogger("certgate.tls")

#: TLS 1.0 and 1.1 cannot be chosen: see ``certgate.tls.policy.TlsVersionName``.
VERSIONS = tuple(version.value for version in TlsVersionName)
#: Stored by versions before TLS 1.0/1.1 were withdrawn; they never took effect (OpenSSL 3
#: refuses them at security level 2), so they read as TLS 1.2.
RETIRED_VERSIONS = ("1.0", "1.1")
DEFAULT_PORT = 8443
_DEADLINES = Deadlines()
#: The longest any deadline may be set to, in seconds.
MAXIMUM_DEADLINE = 3600.0


@dataclass(frozen=True)
class DeadlineSetting:
    """One deadline as a setting: the TlsSettings field (its label is in certgate.fields), the
    tls.Deadlines field it sets, the shortest it may be, and what it bounds (nginx's name in
    brackets)."""

    name: str
    field: str
    minimum: float
    help: str

    @property
    def label(self) -> str:
        text = label(self.name)
        return text[:1].upper() + text[1:]


DEADLINE_SETTINGS = (
    DeadlineSetting(
        "handshake_timeout",
        "handshake",
        0.1,
        "A client must finish its TLS handshake within this time.",
    ),
    DeadlineSetting(
        "header_timeout",
        "header",
        0.1,
        "A client must send a whole request header within this time "
        "(and its first one this long after its handshake) [client_header_timeout].",
    ),
    DeadlineSetting(
        "body_timeout",
        "body",
        0.1,
        "The longest pause between two parts of a request body [client_body_timeout].",
    ),
    DeadlineSetting(
        "send_timeout",
        "send",
        0.1,
        "A client that takes nothing of a response for this long is let go [send_timeout].",
    ),
    DeadlineSetting(
        "keepalive_timeout",
        "keepalive",
        0.1,
        "How long an idle connection stays open between requests [keepalive_timeout].",
    ),
    DeadlineSetting(
        "shutdown_grace",
        "shutdown_grace",
        0.0,
        "On stop, how long requests in flight may take before every connection is closed.",
    ),
)


@dataclass(frozen=True)
class TlsSettings:
    minimum_version: str = TlsVersionName.TLS_1_2.value
    maximum_version: str = TlsVersionName.TLS_1_3.value
    tls12_ciphers: str = DEFAULT_TLS12_CIPHERS
    https_port: int = DEFAULT_PORT
    #: The plain HTTP listener on every address (0: none): ACME http-01 answers and a 308
    #: redirect of everything else to HTTPS. 80 when a public CA validates.
    http_port: int = 0
    # The TLS profile beyond the guide: key-exchange groups, whether the chain sent
    # includes its root (clients already have the root; sending it only costs bytes).
    groups: str = DEFAULT_GROUPS
    send_root: bool = False
    # --- deadlines (seconds): see tls.plan.Deadlines -------------------------------------
    handshake_timeout: float = _DEADLINES.handshake
    header_timeout: float = _DEADLINES.header
    body_timeout: float = _DEADLINES.body
    send_timeout: float = _DEADLINES.send
    keepalive_timeout: float = _DEADLINES.keepalive
    shutdown_grace: float = _DEADLINES.shutdown_grace
    # --- end of deadlines ---------------------------------------------------------------

    def tls_version(self, which: str) -> ssl.TLSVersion:
        return TlsVersionName(which).version

    def policy(self) -> TlsPolicy:
        """The policy these settings ask for; ValidationError when it cannot be served."""
        return TlsPolicy(
            minimum_version=self.tls_version(self.minimum_version),
            maximum_version=self.tls_version(self.maximum_version),
            tls12_ciphers=self.tls12_ciphers,
            groups=self.groups,
        )

    def deadlines(self) -> Deadlines:
        return Deadlines(**{d.field: float(getattr(self, d.name)) for d in DEADLINE_SETTINGS})


def read_settings(repository: Repository, *, for_update: bool = False) -> TlsSettings:
    """The stored settings; ``for_update`` locks them for a read-modify-write."""
    return settings_from(repository.setting("tls", {}, for_update=for_update))


def settings_from(stored: Mapping[str, Any]) -> TlsSettings:
    """Settings from their stored form (the store's row, or serve's cached state:
    ``service/served_state.py``); what is not there is the default. A value that is no
    valid setting (a damaged row) is logged and its default applies, and a field this
    certgate does not know (written by a newer one, another node) is left out: the
    listeners go on serving either way."""
    if not isinstance(stored, Mapping):  # a damaged row (store.database._json_or_none)
        log.error("the stored TLS settings are not valid (%r): the defaults apply", stored)
        return TlsSettings()
    return _settings_from(json.dumps(dict(stored), sort_keys=True, default=str))


@functools.lru_cache(maxsize=16)  # read at each plan and page; checked once per content
def _settings_from(text: str) -> TlsSettings:
    values = json.loads(text)
    known = {field.name for field in dataclasses.fields(TlsSettings)}
    for name in sorted(set(values) - known):
        log.info("the stored TLS settings hold %r, which this certgate does not know", name)
        del values[name]
    for name in ("minimum_version", "maximum_version"):
        if values.get(name) in RETIRED_VERSIONS:
            values[name] = "1.2"
    default = TlsSettings()
    stored = _checked(dataclasses.replace(default, **values))
    if stored is not None:
        return stored
    for name, value in values.items():  # the one value that spoils them, else all
        repaired = _checked(
            dataclasses.replace(default, **{**values, name: getattr(default, name)})
        )
        if repaired is not None:
            log.error(_DAMAGED, name, value, getattr(default, name))
            return repaired
    log.error("the stored TLS settings are not valid (%s): the defaults apply", text)
    return default


_DAMAGED = "the stored TLS setting %s (%r) is not valid: the default, %r, applies"


def _checked(settings: TlsSettings) -> TlsSettings | None:
    try:
        validate(settings)
    except (ValidationError, TypeError, ValueError):
        return None
    return settings


def get_settings(app: Appliance) -> TlsSettings:
    with app.store.reading() as repository:
        return read_settings(repository)


def shutdown_grace(app: Appliance) -> float:
    """The shutdown grace, or its default when the store cannot be read (stopping must not
    fail because the database is gone)."""
    try:
        return get_settings(app).shutdown_grace
    except (CertgateError, SQLAlchemyError):
        return _DEADLINES.shutdown_grace


def update_settings(
    app: Appliance,
    *,
    minimum_version: str | None = None,
    maximum_version: str | None = None,
    tls12_ciphers: str | None = None,
    https_port: int | None = None,
    http_port: int | None = None,
    groups: str | None = None,
    send_root: bool | None = None,
    deadlines: dict[str, float | None] | None = None,
    actor: Actor = APPLIANCE,
) -> TlsSettings:
    """Change some settings; the result is checked as a whole before it is stored.
    ``deadlines`` maps the names of :data:`DEADLINE_SETTINGS` to seconds."""
    with app.store.transaction(actor) as repository:
        current = read_settings(repository, for_update=True)  # two changes at once: none lost
        changes: dict[str, Any] = {
            name: value
            for name, value in {
                "minimum_version": minimum_version,
                "maximum_version": maximum_version,
                "tls12_ciphers": tls12_ciphers,
                "https_port": https_port,
                "http_port": http_port,
                "groups": groups,
                "send_root": send_root,
                **_deadline_changes(deadlines or {}),
            }.items()
            if value is not None
        }
        if not changes:  # nothing given (an API PUT of no field): nothing written or recorded
            return current
        updated = dataclasses.replace(current, **changes)
        validate(updated)
        repository.set_setting("tls", dataclasses.asdict(updated))
        repository.audit(
            AuditAction.TLS_UPDATE,
            "TLS settings",
            ", ".join(f"{k}={v}" for k, v in changes.items()),
        )
        return updated


def _deadline_changes(deadlines: dict[str, float | None]) -> dict[str, float | None]:
    unknown = set(deadlines) - {d.name for d in DEADLINE_SETTINGS}
    if unknown:
        raise ValidationError("deadlines", f"unknown: {', '.join(sorted(unknown))}")
    return {name: None if value is None else float(value) for name, value in deadlines.items()}


def validate(settings: TlsSettings) -> None:
    for field_name in ("minimum_version", "maximum_version"):
        if getattr(settings, field_name) not in VERSIONS:
            raise ValidationError(field_name, f"choose one of {', '.join(VERSIONS)}")
    if float(settings.minimum_version) > float(settings.maximum_version):
        raise ValidationError("minimum_version", "must not be above the maximum version")
    if not 1 <= settings.https_port <= 65535:
        raise ValidationError("https_port", "must be between 1 and 65535")
    if not 0 <= settings.http_port <= 65535:
        raise ValidationError("http_port", "must be between 1 and 65535 (0: no HTTP listener)")
    if settings.http_port == settings.https_port:
        raise ValidationError("http_port", "must not be the HTTPS port")
    for deadline in DEADLINE_SETTINGS:
        value = getattr(settings, deadline.name)
        if not deadline.minimum <= value <= MAXIMUM_DEADLINE:  # false for NaN too
            raise ValidationError(
                deadline.name,
                f"must be between {deadline.minimum:g} and {MAXIMUM_DEADLINE:g} seconds",
            )
    settings.policy()
