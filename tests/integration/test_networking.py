"""IP addresses and assignment, on both store backends (guide: "Assign IP Addresses")."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.errors import (
    ConflictError,
    InUseError,
    KeyMissingError,
    NotFoundError,
    ValidationError,
)
from certgate.pki.names import SubjectFields
from certgate.service import certificates, configuration, imports, networking, tls_settings
from certgate.service.appliance import Appliance
from tests.support.pki import make_chain


def _self_signed(app: Appliance, name: str) -> int:
    form = certificates.CreateForm(name, SubjectFields(common_name=f"{name}.example.com"))
    return certificates.create(app, form, "self-signed").id


def test_new_address_gets_the_factory_certificate(appliance: Appliance) -> None:
    view = networking.add_address(appliance, "127.0.0.2")
    assert view.is_factory_certificate
    assert [v.address for v in networking.list_addresses(appliance)] == ["127.0.0.2"]
    ipv6 = networking.add_address(appliance, "0:0::1")
    assert ipv6.address == "::1"  # one canonical text per address


def test_address_rules(appliance: Appliance) -> None:
    networking.add_address(appliance, "127.0.0.2")
    with pytest.raises(ConflictError):
        networking.add_address(appliance, "127.0.0.2")
    with pytest.raises(ValidationError, match="not an IPv4 or IPv6"):
        networking.add_address(appliance, "127.0.0.300")
    with pytest.raises(NotFoundError):
        networking.remove_address(appliance, "127.0.0.9")


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("0.0.0.0", "wildcard"),
        ("::", "wildcard"),
        ("0::0", "wildcard"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("fe80::1", "link-local address without its interface"),
        ("::ffff:127.0.0.2", "add it as 127.0.0.2"),
    ],
)
def test_addresses_that_are_not_one_address_of_this_host_are_refused(
    appliance: Appliance, address: str, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        networking.add_address(appliance, address)
    assert networking.list_addresses(appliance) == []


def test_assign_moves_addresses_and_one_certificate_secures_several(appliance: Appliance) -> None:
    for address in ("127.0.0.2", "127.0.0.3", "::1"):
        networking.add_address(appliance, address)
    site = _self_signed(appliance, "site")
    networking.assign(appliance, ["127.0.0.2", "::1"], site)
    assigned = {v.address: v.certificate_id for v in networking.list_addresses(appliance)}
    assert assigned["127.0.0.2"] == assigned["::1"] == site
    assert assigned["127.0.0.3"] != site
    assert certificates.show_certificate(appliance, site).ip_addresses == ["127.0.0.2", "::1"]


def test_assign_is_all_or_nothing(appliance: Appliance) -> None:
    networking.add_address(appliance, "127.0.0.2")
    site = _self_signed(appliance, "site")
    with pytest.raises(NotFoundError):
        networking.assign(appliance, ["127.0.0.2", "127.0.0.7"], site)
    assert networking.list_addresses(appliance)[0].is_factory_certificate


def test_a_certificate_without_its_key_cannot_be_assigned(appliance: Appliance) -> None:
    chain = make_chain()
    networking.add_address(appliance, "127.0.0.2")
    [entry] = imports.import_files(appliance, [("leaf.crt", chain.leaf.public_bytes(Encoding.PEM))])
    with pytest.raises(KeyMissingError, match="Private Key is not Available"):
        networking.assign(appliance, ["127.0.0.2"], entry.id or 0)


def test_deleting_a_certificate_that_secures_addresses(appliance: Appliance) -> None:
    networking.add_address(appliance, "127.0.0.2")
    site = _self_signed(appliance, "site")
    networking.assign(appliance, ["127.0.0.2"], site)
    with pytest.raises(InUseError, match=r"127\.0\.0\.2"):
        certificates.delete_certificate(appliance, site)
    assert networking.list_addresses(appliance)[0].certificate_id == site
    deleted = certificates.delete_certificate(appliance, site, reassign_to_factory=True)
    assert deleted.addresses_moved_to_factory == ["127.0.0.2"]
    assert networking.list_addresses(appliance)[0].is_factory_certificate


def test_tls_settings_are_checked_as_a_whole(appliance: Appliance) -> None:
    assert tls_settings.get_settings(appliance).minimum_version == "1.2"
    with pytest.raises(ValidationError, match="maximum"):
        tls_settings.update_settings(appliance, minimum_version="1.3", maximum_version="1.2")
    with pytest.raises(ValidationError, match="selects no cipher"):
        tls_settings.update_settings(appliance, tls12_ciphers="NOPE-CIPHER")
    updated = tls_settings.update_settings(appliance, minimum_version="1.3", https_port=9443)
    assert (updated.minimum_version, updated.https_port) == ("1.3", 9443)
    assert tls_settings.get_settings(appliance) == updated


def test_every_change_bumps_the_revision_listeners_watch(appliance: Appliance) -> None:
    before = appliance.store.revision()
    networking.add_address(appliance, "127.0.0.2")
    assert appliance.store.revision() == before + 1
    certificates.list_certificates(appliance)  # reading changes nothing
    assert appliance.store.revision() == before + 1


def test_odd_input_is_refused_with_a_clear_error(appliance: Appliance) -> None:
    with pytest.raises(ValidationError, match="neither an id nor a fingerprint"):
        certificates.show_certificate(appliance, "²")
    with pytest.raises(ValidationError, match="printable ASCII"):
        tls_settings.update_settings(appliance, tls12_ciphers="ECDHE\x00")


def test_save_configuration_is_all_or_nothing(appliance: Appliance) -> None:
    chain = make_chain()
    networking.add_address(appliance, "127.0.0.2")
    [entry] = imports.import_files(appliance, [("leaf.crt", chain.leaf.public_bytes(Encoding.PEM))])
    keyless = entry.id or 0
    wanted = configuration.Configuration("renamed", "automatic", ["127.0.0.2"])
    with pytest.raises(KeyMissingError):
        configuration.save_configuration(appliance, keyless, wanted)
    assert certificates.show_certificate(appliance, keyless).friendly_name != "renamed"
    site = _self_signed(appliance, "site")
    saved = configuration.save_configuration(
        appliance, site, configuration.Configuration("site 2026", "automatic", ["127.0.0.2"])
    )
    assert (saved.changed, saved.notices) == (["name", "addresses"], [])
    view = certificates.show_certificate(appliance, site)
    assert (view.friendly_name, view.ip_addresses) == ("site 2026", ["127.0.0.2"])


def test_the_certificates_table_follows_every_commit(appliance: Appliance) -> None:
    query = certificates.CertificateQuery(text="fresh")
    assert certificates.query_certificates(appliance, query).total == 0
    _self_signed(appliance, "fresh")  # committed: the next read must show it
    assert certificates.query_certificates(appliance, query).total == 1
    # Only the clock moved, past the day its certificate expires: the next read says so.
    [view] = certificates.query_certificates(appliance, query).items
    assert not [w for w in view.warnings if w.code == "expired"]
    appliance.clock = lambda: view.not_after + dt.timedelta(seconds=1)
    [view] = certificates.query_certificates(appliance, query).items
    assert [w for w in view.warnings if w.code == "expired"]
