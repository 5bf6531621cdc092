"""Hostnames of an address (issue 10, point 5): the DNS names clients use to reach it
(the guide: "The correct IP address is the one which has a DNS hostname registered for it").
Stored on both backends, checked before anything changes, and a certificate that does not
cover one of them is warned about (``hostname-not-covered``) for as long as that holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from certgate.errors import NotFoundError, ValidationError
from certgate.pki.diagnostics import WarningCode
from certgate.pki.names import SubjectFields
from certgate.service import audit, certificates, networking
from certgate.service.appliance import Appliance
from certgate.store.audit import AuditFilter
from certgate.store.database import SCHEMA_HEAD
from tests.integration.conftest import Certgate
from tests.support.migration import store_at


def _self_signed(app: Appliance, name: str, *sans: str) -> int:
    form = certificates.CreateForm(name, SubjectFields(common_name=name), sans=list(sans))
    return certificates.create(app, form, "self-signed").id


def _not_covered(app: Appliance, certificate: int) -> list[str]:
    """The hostname-not-covered messages of the certificate, as every face reads them (the
    cached views of the Certificates table and the API's list)."""
    query = certificates.CertificateQuery(warning=WarningCode.HOSTNAME_NOT_COVERED)
    return [
        warning.message
        for view in certificates.query_certificates(app, query).items
        if view.id == certificate
        for warning in view.warnings
        if warning.code is WarningCode.HOSTNAME_NOT_COVERED
    ]


def test_hostnames_are_stored_checked_and_replaced(appliance: Appliance) -> None:
    added = networking.add_address(
        appliance,
        "127.0.0.2",
        hostnames=["Support.Example.test", "bücher.example", "", "support.example.test"],
    )
    assert added.hostnames == ["support.example.test", "xn--bcher-kva.example"]  # each once
    assert networking.show_address(appliance, "127.0.0.2").hostnames == added.hostnames
    assert networking.list_addresses(appliance)[0].hostnames == added.hostnames

    for wrong, says in [
        (["ok.example.test", "*.example.test"], "'*.example.test' is a wildcard"),
        (["192.0.2.7"], "is an IP address"),
        (["bad host.example"], "is not a valid DNS name"),
    ]:
        with pytest.raises(ValidationError, match=says):
            networking.set_hostnames(appliance, "127.0.0.2", wrong)
    with pytest.raises(ValidationError, match="at most 20 hostnames"):
        networking.set_hostnames(appliance, "127.0.0.2", [f"h{n}.example.test" for n in range(21)])
    flood = [f"h{n}.example.test" for n in range(20_000)] + ["bad host.example"]  # a 4 MiB form
    with pytest.raises(ValidationError, match="at most 20 hostnames per address") as counted:
        networking.set_hostnames(appliance, "127.0.0.2", flood)  # counted before each is read
    assert counted.value.field == "hostnames"
    with pytest.raises(ValidationError, match="wildcard"):
        networking.add_address(appliance, "127.0.0.3", hostnames=["*.example.test"])
    # nothing changed by a refusal
    assert [v.address for v in networking.list_addresses(appliance)] == ["127.0.0.2"]
    assert networking.show_address(appliance, "127.0.0.2").hostnames == added.hostnames

    with pytest.raises(NotFoundError):
        networking.set_hostnames(appliance, "127.0.0.9", ["a.example.test"])
    assert networking.set_hostnames(appliance, "127.0.0.2", ["www.example.test"]).hostnames == [
        "www.example.test"
    ]
    assert networking.set_hostnames(appliance, "127.0.0.2", []).hostnames == []


def test_a_change_of_hostnames_is_audited_and_followed_by_the_listeners(
    appliance: Appliance,
) -> None:
    networking.add_address(appliance, "127.0.0.2", hostnames=["a.example.test"])
    before = appliance.store.revision()
    networking.set_hostnames(appliance, "127.0.0.2", ["b.example.test", "c.example.test"])
    assert appliance.store.revision() == before + 1  # cached views of every process drop
    networking.set_hostnames(appliance, "127.0.0.2", ["b.example.test", "c.example.test"])
    assert appliance.store.revision() == before + 1  # the same list changes nothing
    networking.set_hostnames(appliance, "127.0.0.2", [])
    wanted = AuditFilter(action=audit.AuditAction.ADDRESS_HOSTNAMES)
    details = [(e.target, e.detail) for e in audit.list_events(appliance, wanted).events]
    assert details == [
        ("127.0.0.2", "none"),
        ("127.0.0.2", "hostnames: b.example.test, c.example.test"),
    ]
    [add] = audit.list_events(appliance, AuditFilter(action=audit.AuditAction.ADDRESS_ADD)).events
    assert add.detail == "hostnames: a.example.test"


def test_the_warning_follows_the_hostnames_and_the_assignment(appliance: Appliance) -> None:
    """Warm cached views first: a change of hostnames alone must refresh them."""
    site = _self_signed(appliance, "shop.example.test", "shop.example.test", "*.cdn.example.test")
    networking.add_address(appliance, "127.0.0.2")
    networking.add_address(appliance, "127.0.0.3")
    networking.assign(appliance, ["127.0.0.2", "127.0.0.3"], site)
    assert _not_covered(appliance, site) == []

    networking.set_hostnames(appliance, "127.0.0.2", ["shop.example.test", "img.cdn.example.test"])
    assert _not_covered(appliance, site) == []  # a wildcard covers one label
    networking.set_hostnames(
        appliance, "127.0.0.2", ["shop.example.test", "a.b.cdn.example.test", "cdn.example.test"]
    )
    networking.set_hostnames(appliance, "127.0.0.3", ["cdn.example.test"])
    [message] = _not_covered(appliance, site)
    assert "a.b.cdn.example.test (127.0.0.2), cdn.example.test (127.0.0.2, 127.0.0.3)" in message
    view = certificates.show_certificate(appliance, site)
    assert [w.message for w in view.warnings if w.code == "hostname-not-covered"] == [message]
    address = networking.show_address(appliance, "127.0.0.3")
    assert address.hostnames_not_covered == ["cdn.example.test"]
    assert "does not cover cdn.example.test" in networking.coverage_note(address)

    # The address moves to a certificate that covers it: the warning moves with it. Before
    # the move, the Edit page can say what each certificate would cover.
    other = _self_signed(appliance, "cdn.example.test", "cdn.example.test")
    assert networking.hostnames_not_covered_by(appliance, other) == {
        "127.0.0.2": ["shop.example.test", "a.b.cdn.example.test"]
    }
    networking.assign(appliance, ["127.0.0.3"], other, confirm=True)
    assert _not_covered(appliance, other) == []
    assert "127.0.0.3" not in _not_covered(appliance, site)[0]
    networking.set_hostnames(appliance, "127.0.0.2", ["shop.example.test"])
    assert _not_covered(appliance, site) == []
    assert networking.show_address(appliance, "127.0.0.2").hostnames_not_covered == []


def test_the_factory_certificate_is_warned_about_without_saying_it_may_be_ignored(
    appliance: Appliance,
) -> None:
    """Its other warnings may be ignored (the guide); a name clients were told to use that
    it does not cover is what assigning a certificate is for."""
    networking.add_address(appliance, "127.0.0.2", hostnames=["portal.example.test"])
    factory = networking.show_address(appliance, "127.0.0.2").certificate_id
    [message] = _not_covered(appliance, factory)
    assert "portal.example.test (127.0.0.2)" in message and "ignored" not in message


# --- the migration ------------------------------------------------------------------------------


def test_the_migration_adds_empty_hostnames_to_existing_addresses(
    tmp_path: Path, database_url: str | None
) -> None:
    """A store at 0004 with an address is upgraded (the address keeps its certificate and
    gets no hostname), then downgraded and upgraded again, on SQLite and PostgreSQL."""
    from alembic import command

    with store_at("0004", tmp_path, database_url) as (engine, config):
        command.upgrade(config, "head")
        from certgate.store.models import IpAddressRow

        with engine.begin() as connection:
            row = connection.execute(
                select(IpAddressRow.address, IpAddressRow.certificate_id, IpAddressRow.hostnames)
            ).one()
            assert tuple(row) == ("192.0.2.10", 1, [])
            connection.execute(
                insert(IpAddressRow).values(
                    id=2, address="192.0.2.11", certificate_id=1, hostnames=["a.example.test"]
                )
            )
        command.downgrade(config, "0004")
        with engine.begin() as connection:
            columns = connection.execute(text("SELECT * FROM ip_addresses")).keys()
            assert "hostnames" not in columns
        command.upgrade(config, "head")
        with engine.begin() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert version.scalar() == SCHEMA_HEAD
            found = connection.execute(select(IpAddressRow.hostnames)).scalars().all()
            assert found == [[], []]


# --- the command line ---------------------------------------------------------------------------


def test_ip_add_set_and_list_with_hostnames(certgate: Certgate) -> None:
    done = certgate("ip", "add", "127.0.0.2", "--hostname", "Portal.Example.test",
                    "--hostname", "bücher.example")  # fmt: skip
    assert "127.0.0.2 hostnames: portal.example.test, xn--bcher-kva.example" in done.stdout
    # The factory certificate covers neither: said at once, with the warning's code.
    assert "warning (hostname-not-covered)" in done.stdout
    assert "does not cover portal.example.test, xn--bcher-kva.example" in done.stdout

    listed = certgate("ip", "list").stdout
    assert "Hostnames" in listed and "portal.example.test, xn--bcher-kva.example" in listed
    [document] = certgate.json("ip", "list")
    assert document["hostnames"] == ["portal.example.test", "xn--bcher-kva.example"]
    assert document["hostnames_not_covered"] == document["hostnames"]

    factory = document["certificate_id"]
    warnings = certgate.show(factory)["warnings"]
    assert [w["code"] for w in warnings].count("hostname-not-covered") == 1
    shown = certgate("cert", "show", str(factory)).stdout
    assert "[hostname-not-covered] does not cover the hostname(s)" in shown

    created = certgate.json("cert", "create", "--name", "portal", "--cn", "portal.example.test")
    site = created["certificate"]["id"]
    certgate("ip", "assign", "127.0.0.2", "--cert", str(site), "--confirm")
    changed = certgate.json("ip", "set", "127.0.0.2", "--hostname", "portal.example.test")
    assert changed["hostnames"] == ["portal.example.test"]
    assert changed["hostnames_not_covered"] == []
    assert "hostname-not-covered" not in [w["code"] for w in certgate.show(site)["warnings"]]
    assert "warning" not in certgate("ip", "set", "127.0.0.2", "--hostname",
                                     "portal.example.test").stdout  # fmt: skip

    refused = certgate("ip", "set", "127.0.0.2", "--hostname", "ok.example.test",
                       "--hostname", "*.example.test", expect=None)  # fmt: skip
    assert refused.returncode == 1
    assert refused.error_lines == [
        "error: Hostnames: '*.example.test' is a wildcard; name one host a client uses"
    ]
    assert certgate.json("ip", "list")[0]["hostnames"] == ["portal.example.test"]

    cleared = certgate("ip", "set", "127.0.0.2", "--no-hostname").stdout
    assert "127.0.0.2 has no hostname" in cleared
    assert certgate.json("ip", "list")[0]["hostnames"] == []
    usage = certgate("ip", "set", "127.0.0.2", expect=None)
    assert usage.returncode == 2 and "--no-hostname" in usage.stderr
