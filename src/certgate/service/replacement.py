"""Replace in one step (the guide's "select the IP addresses which are currently assigned to
the old certificate ... Save Configuration"): every address one certificate secures moves to
another in one transaction, live on the next handshake. The old certificate stays; it may be
removed and/or revoked as necessary.

Two steps inside that transaction: ``plan_replacement`` computes the moves and refuses, with
a specific error and nothing changed, what cannot be done; ``apply_replacement`` makes them.
Between the two, ``guard.check_moves`` checks the moves themselves (the guard before a change
of CA, or a certificate clients refuse), and refuses them unless confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from certgate.errors import NothingToReplaceError, ValidationError
from certgate.pki.chain import Role, role_of
from certgate.service import guard
from certgate.service.appliance import Appliance
from certgate.service.certificates import cached_certificate_views
from certgate.service.keystore import require_key
from certgate.service.lookup import find_certificate
from certgate.service.networking import record_key_served
from certgate.service.views import CertificateView, row_info
from certgate.store.audit import APPLIANCE, Actor, AuditAction, certificate_target
from certgate.store.models import CertificateRow
from certgate.store.repository import Repository

#: What the guide says of the old certificate once its addresses have moved.
OLD_CERTIFICATE_NOTE = "stays on the appliance and may be removed and/or revoked as necessary"


@dataclass(frozen=True)
class Party:
    """One side of a replacement."""

    id: int
    friendly_name: str
    fingerprint_sha256: str


@dataclass(frozen=True)
class Replacement:
    """The moves: each address of ``addresses`` goes from ``old`` to ``new``."""

    old: Party
    new: Party
    addresses: tuple[str, ...]


def replace_certificate(
    app: Appliance,
    old_reference: str | int,
    new_reference: str | int,
    actor: Actor = APPLIANCE,
    *,
    confirm: bool = False,
) -> Replacement:
    """Move every address of ``old_reference`` to ``new_reference``, all or none; to
    another root, or to a certificate clients refuse, only with ``confirm``."""
    with app.store.transaction(actor) as repository:
        old = find_certificate(repository, old_reference)
        new = find_certificate(repository, new_reference)
        replacement = plan_replacement(repository, old, new)
        moves = [
            guard.Move(row, new) for row in repository.ip_addresses_of(old.id, for_update=True)
        ]
        confirmed = guard.check_moves(repository, moves, confirm=confirm, now=app.now())
        apply_replacement(repository, replacement, confirmed)
        return replacement


def plan_replacement(
    repository: Repository, old: CertificateRow, new: CertificateRow
) -> Replacement:
    """The moves, or the reason there are none (nothing is changed here). The addresses are
    locked until the transaction ends."""
    if new.id == old.id:
        raise ValidationError(
            "with", f"{new.friendly_name!r} is the certificate being replaced: choose another"
        )
    addresses = tuple(row.address for row in repository.ip_addresses_of(old.id, for_update=True))
    if not addresses:
        raise NothingToReplaceError(
            f"certificate {old.friendly_name!r} secures no IP address: there is nothing to "
            f"replace. Assign {new.friendly_name!r} to the addresses it should secure instead"
        )
    require_key(
        repository,
        new,
        f"cannot replace {old.friendly_name!r}",
        "choose a certificate whose Private Key is Available",
    )
    role = role_of(row_info(new), has_private_key=True)
    if role is not Role.SERVER:
        raise ValidationError(
            "with",
            f"{new.friendly_name!r} is {'a root' if role is Role.ROOT else 'an intermediate'} "
            "certificate authority's certificate, not a server certificate: choose the "
            "certificate issued for the appliance",
        )
    return Replacement(_party(old), _party(new), addresses)


def apply_replacement(
    repository: Repository,
    replacement: Replacement,
    confirmed: Sequence[guard.Concern] = (),
) -> None:
    """Make the moves, with their audit events (the change with what was confirmed, and the
    new key's use)."""
    new = repository.certificate(replacement.new.id)
    assert new is not None  # found by plan_replacement in this transaction
    moved = set(replacement.addresses)
    for row in repository.ip_addresses_of(replacement.old.id, for_update=True):
        if row.address in moved:
            row.certificate_id = new.id
    shown = ", ".join(replacement.addresses)
    old = replacement.old
    repository.audit(
        AuditAction.CERTIFICATE_REPLACE,
        certificate_target(old.friendly_name, old.fingerprint_sha256),
        f"by {new.friendly_name!r} ({new.fingerprint}) on {shown}; the old certificate "
        + OLD_CERTIFICATE_NOTE
        + guard.confirmed_note(confirmed),
    )
    record_key_served(repository, new, replacement.addresses)


def _party(row: CertificateRow) -> Party:
    return Party(row.id, row.friendly_name, row.fingerprint)


def replacement_candidates(app: Appliance, reference: str | int) -> list[CertificateView]:
    """What the page offers for "Replace with": the other server certificates whose key is
    stored, the latest expiry first (a renewed certificate is found by its Expiration), the
    factory certificate last."""
    with app.store.reading() as repository:
        old_id = find_certificate(repository, reference).id
    views = cached_certificate_views(
        app, lambda e: e.id != old_id and e.has_private_key and e.role == Role.SERVER
    )
    views.sort(key=lambda view: view.not_after, reverse=True)
    return sorted(views, key=lambda view: view.is_factory)
