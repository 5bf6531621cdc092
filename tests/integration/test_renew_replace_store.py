"""Issue 10, points 3 and 4 on both stores (SQLite and PostgreSQL): a renewal request shares
its certificate's one sealed key row (no copy); the key stays while anything uses it; a
replacement moves exactly the old certificate's addresses, in one transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from certgate.errors import NothingToReplaceError, ValidationError
from certgate.pki.keys import KeySpec
from certgate.pki.names import SubjectFields
from certgate.service import certificates, networking, renewal, replacement, requests
from certgate.service.appliance import Appliance
from certgate.store.models import KeyRow


def self_signed(app: Appliance, name: str) -> int:
    form = certificates.CreateForm(
        friendly_name=name,
        subject=SubjectFields(common_name=f"{name}.example.test"),
        key=KeySpec.EC_P256,
    )
    return certificates.create(app, form, "self-signed").id


def key_rows(app: Appliance) -> int:
    with app.store.reading() as repository:
        return int(repository.session.scalar(select(func.count()).select_from(KeyRow)) or 0)


def test_a_renewal_request_shares_the_key_row_until_nothing_uses_it(appliance: Appliance) -> None:
    certificate = self_signed(appliance, "shop")
    keys = key_rows(appliance)
    prefill = renewal.renewal_form(appliance, certificate)
    first = renewal.create_renewal_request(appliance, certificate, prefill.form)
    second = renewal.renew_request(appliance, certificate, renewal.Changes(friendly_name="second"))
    assert key_rows(appliance) == keys  # the same sealed row, not a copy

    [found] = requests.keys_after_deleting(appliance, [first.id])
    assert (found.used_by, found.deleted) == (["certificate 'shop'", "request 'second'"], False)
    certificates.delete_certificate(appliance, certificate)
    assert key_rows(appliance) == keys  # both requests still use it
    both = requests.keys_after_deleting(appliance, [first.id, second.id])
    assert [(f.used_by, f.deleted) for f in both] == [([], True), ([], True)]
    assert requests.delete_request(appliance, first.id).private_key_deleted is False
    assert requests.delete_request(appliance, second.id).private_key_deleted is True
    assert key_rows(appliance) == keys - 1


def test_a_replacement_moves_exactly_the_old_certificates_addresses(
    appliance: Appliance,
) -> None:
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        networking.add_address(appliance, address)
    old, new, other = (self_signed(appliance, n) for n in ("old", "new", "other"))
    networking.assign(appliance, ["192.0.2.1", "192.0.2.3"], old)
    networking.assign(appliance, ["192.0.2.2"], other)

    # two self-signed certificates: another root, which the guard asks to confirm
    done = replacement.replace_certificate(appliance, old, new, confirm=True)
    assert done.addresses == ("192.0.2.1", "192.0.2.3")
    assigned = {v.address: v.certificate_name for v in networking.list_addresses(appliance)}
    assert assigned == {"192.0.2.1": "new", "192.0.2.2": "other", "192.0.2.3": "new"}
    with pytest.raises(NothingToReplaceError):
        replacement.replace_certificate(appliance, old, new)
    with pytest.raises(ValidationError):
        replacement.replace_certificate(appliance, new, new)
    assert certificates.show_certificate(appliance, old).ip_addresses == []
