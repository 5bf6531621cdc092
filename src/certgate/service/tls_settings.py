"""The guide's SSL CONFIGURATION: TLS versions, the TLS 1.2 cipher list and the HTTPS port.

The rules of what a policy may be live in ``certgate.tls.policy`` (checked with the OpenSSL that
serves); these settings are the stored, user-facing form of it.
"""

from __future__ import annotations

import dataclasses
import ssl
from dataclasses import dataclass
from typing import Any

from certgate.errors import ValidationError
from certgate.service.appliance import Appliance
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.repository import Repository
from certgate.tls import TlsPolicy
from certgate.tls.policy import DEFAULT_GROUPS, DEFAULT_TLS12_CIPHERS, TlsVersionName

#: TLS 1.0 and 1.1 cannot be chosen: see ``certgate.tls.policy.TlsVersionName``.
VERSIONS = tuple(version.value for version in TlsVersionName)
#: Stored by versions before TLS 1.0/1.1 were withdrawn; they never took effect (OpenSSL 3
#: refuses them at security level 2), so they read as TLS 1.2.
RETIRED_VERSIONS = ("1.0", "1.1")
DEFAULT_PORT = 8443


@dataclass(frozen=True)
class TlsSettings:
    minimum_version: str = TlsVersionName.TLS_1_2.value
    maximum_version: str = TlsVersionName.TLS_1_3.value
    tls12_ciphers: str = DEFAULT_TLS12_CIPHERS
    https_port: int = DEFAULT_PORT
    # The TLS profile beyond the guide: key-exchange groups, whether the chain sent
    # includes its root (clients already have the root; sending it only costs bytes).
    groups: str = DEFAULT_GROUPS
    send_root: bool = False

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


def read_settings(repository: Repository) -> TlsSettings:
    stored = dict(repository.setting("tls", {}))
    for name in ("minimum_version", "maximum_version"):
        if stored.get(name) in RETIRED_VERSIONS:
            stored[name] = "1.2"
    return TlsSettings(**{**dataclasses.asdict(TlsSettings()), **stored})


def get_settings(app: Appliance) -> TlsSettings:
    with app.store.reading() as repository:
        return read_settings(repository)


def update_settings(
    app: Appliance,
    *,
    minimum_version: str | None = None,
    maximum_version: str | None = None,
    tls12_ciphers: str | None = None,
    https_port: int | None = None,
    groups: str | None = None,
    send_root: bool | None = None,
    actor: Actor = APPLIANCE,
) -> TlsSettings:
    """Change some settings; the result is checked as a whole before it is stored."""
    with app.store.transaction(actor) as repository:
        current = read_settings(repository)
        changes: dict[str, Any] = {
            name: value
            for name, value in {
                "minimum_version": minimum_version,
                "maximum_version": maximum_version,
                "tls12_ciphers": tls12_ciphers,
                "https_port": https_port,
                "groups": groups,
                "send_root": send_root,
            }.items()
            if value is not None
        }
        updated = dataclasses.replace(current, **changes)
        validate(updated)
        repository.set_setting("tls", dataclasses.asdict(updated))
        repository.audit(
            AuditAction.TLS_UPDATE,
            "TLS settings",
            ", ".join(f"{k}={v}" for k, v in changes.items()),
        )
        return updated


def validate(settings: TlsSettings) -> None:
    for field_name in ("minimum_version", "maximum_version"):
        if getattr(settings, field_name) not in VERSIONS:
            raise ValidationError(field_name, f"choose one of {', '.join(VERSIONS)}")
    if float(settings.minimum_version) > float(settings.maximum_version):
        raise ValidationError("minimum_version", "must not be above the maximum version")
    if not 1 <= settings.https_port <= 65535:
        raise ValidationError("https_port", "must be between 1 and 65535")
    settings.policy()
