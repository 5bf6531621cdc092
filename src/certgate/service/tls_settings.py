"""The guide's SSL CONFIGURATION: TLS versions, the TLS 1.2 cipher list and the HTTPS port."""

from __future__ import annotations

import dataclasses
import ssl
from dataclasses import dataclass
from typing import Any

from certgate.errors import ValidationError
from certgate.service.appliance import Appliance
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.repository import Repository
from certgate.tls.policy import DEFAULT_TLS12_CIPHERS, TlsVersionName

VERSIONS = tuple(version.value for version in TlsVersionName)
DEFAULT_PORT = 8443


@dataclass(frozen=True)
class TlsSettings:
    minimum_version: str = TlsVersionName.TLS_1_2.value
    maximum_version: str = TlsVersionName.TLS_1_3.value
    tls12_ciphers: str = DEFAULT_TLS12_CIPHERS
    https_port: int = DEFAULT_PORT

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def tls_version(self, which: str) -> ssl.TLSVersion:
        return TlsVersionName(which).version


def read_settings(repository: Repository) -> TlsSettings:
    stored = repository.setting("tls", {})
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
    if not settings.tls12_ciphers.isascii() or not settings.tls12_ciphers.isprintable():
        raise ValidationError("tls12_ciphers", "use an OpenSSL cipher list (printable ASCII)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.set_ciphers(settings.tls12_ciphers)
    except ssl.SSLError:
        raise ValidationError(
            "tls12_ciphers", f"{settings.tls12_ciphers!r} selects no cipher OpenSSL knows"
        ) from None
