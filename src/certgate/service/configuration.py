"""Save Configuration of the Edit Certificate Configuration page: name, chain and IP
addresses of one certificate, committed together or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from certgate.errors import ValidationError
from certgate.fields import item
from certgate.service import certificates, guard, networking
from certgate.service.appliance import Appliance
from certgate.service.lookup import find_certificate
from certgate.store.audit import APPLIANCE, Actor


@dataclass(frozen=True)
class Configuration:
    friendly_name: str
    chain_mode: Literal["automatic", "manual"]
    addresses: Sequence[str]
    manual_chain_pem: bytes | None = None  # a new PEM chain; None keeps the current one


@dataclass(frozen=True)
class Saved:
    changed: list[str]  # the parts that changed: "name", "chain", "addresses"
    notices: list[str]  # what was done to the input (a manual chain put in order)


def save_configuration(
    app: Appliance,
    reference: str | int,
    wanted: Configuration,
    actor: Actor = APPLIANCE,
    *,
    confirm: bool = False,
) -> Saved:
    """Apply what differs from the stored configuration, in one transaction; addresses that
    would change root or present a certificate clients refuse only with ``confirm`` (the
    guard sees the new chain and name of this same transaction)."""
    new_chain = (
        certificates.read_manual_chain(wanted.manual_chain_pem)
        if wanted.chain_mode == "manual" and wanted.manual_chain_pem
        else None
    )
    now = app.now()
    with app.store.transaction(actor) as repository:
        row = find_certificate(repository, reference)
        changed: list[str] = []
        notices: list[str] = []
        # Each change's concerns are gathered (as if confirmed) and refused together, so
        # that a confirmation confirms everything it showed, and nothing it did not.
        concerns: list[guard.Concern] = []
        if new_chain is not None:
            ordered, concerns = certificates.use_manual_chain(
                repository, row, new_chain, confirm=True, now=now
            )
            notices += ordered
            changed.append("chain")
        elif wanted.chain_mode == "manual" and row.chain_mode != "manual":
            raise ValidationError("pem", "choose the PEM file of the chain")
        elif wanted.chain_mode == "automatic" and row.chain_mode == "manual":
            concerns = certificates.use_automatic_chain(repository, row, confirm=True, now=now)
            changed.append("chain")
        if wanted.friendly_name.strip() != row.friendly_name:
            certificates.rename_row(repository, row, wanted.friendly_name)
            changed.append("name")
        current = {address.address for address in repository.ip_addresses_of(row.id)}
        wanted_addresses = {
            networking.normalise_address(text, item("addresses", index))
            for index, text in enumerate(wanted.addresses)
        }
        if wanted_addresses != current:
            concerns += networking.set_addresses_of(
                repository, row, wanted.addresses, confirm=True, now=now
            )
            changed.append("addresses")
        guard.require_confirmation(concerns, confirm=confirm)
        return Saved(changed, notices)
