"""Security > ACME, the account: the appliance's account with an ACME CA (Let's Encrypt, its
staging server, or any RFC 8555 CA), registered or changed with ``set_account``.

The account key is sealed with the master key like a private key (its own associated data).
Talking to the CA blocks (seconds to a minute): the faces call these on a thread.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from certgate.errors import ValidationError
from certgate.service import keystore
from certgate.service.appliance import Appliance
from certgate.service.email import checked_address, checked_ca_bundle
from certgate.store import acme as queries
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.models import AcmeAccountRow, utcnow
from certgate.store.repository import Repository
from certgate.store.sealing import Sealer
from certgate.text import has_control

#: The associated data the account key is sealed with: a sealed key moved here does not open.
ACCOUNT_KEY_SEALED_AS = "acme account key"
URL_MAX = 500
EAB_KID_MAX = 200
EAB_HMAC_KEY_MAX = 1000
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+=*")


class Preset(StrEnum):
    """Directories an administrator names instead of typing their URL."""

    LETSENCRYPT = "letsencrypt"
    LETSENCRYPT_STAGING = "letsencrypt-staging"

    @property
    def url(self) -> str:
        return _PRESET_URLS[self]

    @property
    def label(self) -> str:
        return _PRESET_LABELS[self]


_PRESET_URLS = {
    Preset.LETSENCRYPT: "https://acme-v02.api.letsencrypt.org/directory",
    Preset.LETSENCRYPT_STAGING: "https://acme-staging-v02.api.letsencrypt.org/directory",
}
_PRESET_LABELS = {
    Preset.LETSENCRYPT: "Let's Encrypt",
    Preset.LETSENCRYPT_STAGING: "Let's Encrypt staging (test certificates, generous limits)",
}


@dataclass(frozen=True)
class AccountView:
    """What every face shows of the account: never its key."""

    configured: bool
    directory_url: str | None = None
    preset: str | None = None
    email: str | None = None
    terms_agreed: str | None = None
    eab_kid: str | None = None
    ca_bundle: str | None = None
    account_url: str | None = None
    status: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


def directory_url(text: str) -> str:
    """A preset's name, or an https URL (http only for a CA on this host)."""
    value = text.strip()
    for preset in Preset:
        if value.lower() == preset.value:
            return preset.url
    if len(value) > URL_MAX or has_control(value) or " " in value:
        raise ValidationError("directory", f"{value[:60]!r} is not a URL")
    local = re.match(r"http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?/", value)
    if not value.startswith("https://") and local is None:
        choices = ", ".join(preset.value for preset in Preset)
        raise ValidationError(
            "directory", f"give the CA's https:// directory URL, or one of {choices}"
        )
    return value


def _preset_of(url: str) -> str | None:
    return next((preset.value for preset in Preset if preset.url == url), None)


def _view(row: AcmeAccountRow | None) -> AccountView:
    if row is None:
        return AccountView(configured=False)
    return AccountView(
        configured=True,
        directory_url=row.directory_url,
        preset=_preset_of(row.directory_url),
        email=row.email,
        terms_agreed=row.terms_agreed,
        eab_kid=row.eab_kid,
        ca_bundle=row.ca_bundle,
        account_url=row.account_url,
        status=str(row.registration.get("status") or "valid"),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_account(app: Appliance) -> AccountView:
    with app.store.reading() as repository:
        return _view(queries.account(repository))


def _email(value: str) -> str | None:
    return checked_address(value, "email") if value.strip() else None


def _ca_bundle(pem: str) -> str | None:
    """A private ACME server's roots (the Email Configuration's rule); empty: none."""
    return checked_ca_bundle(pem) if pem.strip() else None


def _eab(kid: str | None, hmac_key: str | None) -> tuple[str, str] | None:
    if not kid and not hmac_key:
        return None
    if not kid or not hmac_key:
        raise ValidationError(
            "eab_kid" if not kid else "eab_hmac_key",
            "an external account binding needs both the key id and the HMAC key",
        )
    kid = kid.strip()
    key = hmac_key.strip()
    if len(kid) > EAB_KID_MAX or has_control(kid):
        raise ValidationError("eab_kid", f"must be one line of at most {EAB_KID_MAX} characters")
    if len(key) > EAB_HMAC_KEY_MAX or not _BASE64URL.fullmatch(key):
        raise ValidationError("eab_hmac_key", "is not a base64url-encoded key")
    return kid, key


def unseal_account_key(repository: Repository, sealer: Sealer, row: AcmeAccountRow) -> bytes:
    """The account key's PEM, opened with the master key (orders and renewals sign with it)."""
    return keystore.unseal(repository, sealer, ACCOUNT_KEY_SEALED_AS, row.key_sealed)


def reseal_account_key(repository: Repository, reseal: keystore.Reseal) -> int:
    """The account key under a new master key (a rotation); 1 if there is an account."""
    row = queries.account(repository)
    if row is None:
        return 0
    row.key_sealed = reseal(ACCOUNT_KEY_SEALED_AS, row.key_sealed, "the ACME account key")
    repository.flush()
    return 1


def set_account(
    app: Appliance,
    *,
    directory: str | None = None,
    email: str | None = None,
    agree_tos: bool = False,
    ca_bundle: str | None = None,
    eab_kid: str | None = None,
    eab_hmac_key: str | None = None,
    actor: Actor = APPLIANCE,
) -> AccountView:
    """Register an account with the CA, or change the one there is (None keeps a value).

    A new directory, or an external account binding, registers a new account with a new
    key, and so does the same directory when the CA no longer knows the account or it was
    deactivated there (a CA refuses its every order); a new e-mail address updates the account's
    contact at the CA. An empty ``email``
    removes the contact, an empty ``ca_bundle`` trusts the system's roots again.
    """
    with app.store.reading() as repository:
        current = queries.account(repository)
        key_pem = None if current is None else unseal_account_key(repository, app.sealer, current)
    url = directory_url(directory) if directory is not None else None
    if current is None and url is None:
        raise ValidationError("directory", "is required: the CA's directory URL or a preset")
    new_email = _email(email) if email is not None else (current.email if current else None)
    bundle = _ca_bundle(ca_bundle) if ca_bundle is not None else (current and current.ca_bundle)
    binding = _eab(eab_kid, eab_hmac_key)
    from certgate.service import acme_ca

    server = acme_ca.Server(url or (current.directory_url if current else ""), bundle or None)
    said: list[str] = []
    register = url not in (None, current and current.directory_url) or binding is not None
    if current is not None and key_pem is not None and not register:
        gone = acme_ca.account_gone(server, key_pem, current.account_url, current.registration)
        if gone is not None:
            said.append(gone)
            register = True
    if register or current is None:
        key_pem = acme_ca.new_account_key()
        registration = acme_ca.register(server, key_pem, new_email, agree_tos, binding)
        said.insert(0, f"registered at {server.directory_url} as {registration.account_url}")
    else:
        assert key_pem is not None
        registration = acme_ca.Registration(
            current.account_url, current.registration, current.terms_agreed
        )
        if new_email != current.email:
            registration = acme_ca.update_contact(
                server, key_pem, current.account_url, current.registration, new_email
            )
    with app.store.transaction(actor) as repository:
        row = queries.account(repository)
        if row is None:
            row = AcmeAccountRow()
            repository.add(row)
        before = _view(row) if row.id else AccountView(configured=False)
        row.directory_url = server.directory_url
        row.email = new_email
        row.ca_bundle = server.ca_pem
        if register:
            row.key_sealed = keystore.seal(repository, app.sealer, ACCOUNT_KEY_SEALED_AS, key_pem)
            row.terms_agreed = registration.terms
            row.eab_kid = binding[0] if binding else None
        row.account_url = registration.account_url
        row.registration = registration.document
        row.updated_at = utcnow()
        if before.email != new_email:
            said.append(f"contact {new_email or '(none)'}")
        if before.ca_bundle != row.ca_bundle:
            said.append("CA bundle " + ("set" if row.ca_bundle else "removed"))
        repository.audit(
            AuditAction.ACME_ACCOUNT, server.directory_url, ", ".join(said) or "unchanged"
        )
        repository.flush()
        return _view(row)


def hmac_key_from_file(data: bytes) -> str:
    """An EAB HMAC key file's first line (as CAs hand it out: base64url text)."""
    text = data.decode("ascii", errors="replace").strip().splitlines()
    if not text:
        raise ValidationError("eab_hmac_key", "the file is empty")
    key = text[0].strip()
    try:
        base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    except ValueError:
        raise ValidationError("eab_hmac_key", "is not a base64url-encoded key") from None
    return key
