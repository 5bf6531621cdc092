"""The guard (issue 10, point 6): an assignment or replacement that would make an address
present a chain ending at another root, or a certificate clients refuse (expired, not yet
valid, incomplete chain, a hostname of the address not covered), is applied only when
confirmed; on both store backends, and through the CLI (exit 1 naming both roots, then
--confirm). Renewals and replacements under the same root, and leaving the factory
certificate, go through as before."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from certgate.errors import InUseError, UnconfirmedChangeError
from certgate.pki.names import SubjectFields
from certgate.service import (
    audit,
    certificates,
    configuration,
    guard,
    imports,
    networking,
    replacement,
)
from certgate.service.appliance import Appliance
from certgate.service.guard import GUIDE_CA_WARNING, ConcernCode
from certgate.service.setup import FACTORY_NAME
from certgate.store.audit import AuditAction, AuditFilter
from tests.integration.conftest import Certgate
from tests.support.pki import TestCA, fingerprint, issue, new_key, pem
from tests.support.pki import name as named

ADDRESS = "127.0.0.2"


@pytest.fixture(scope="module")
def roots() -> tuple[TestCA, TestCA]:
    """Two certificate authorities: Root A and Root B, each with its issuing CA."""
    return (
        TestCA.make(root_name="Root A", intermediate_name="Issuing A"),
        TestCA.make(root_name="Root B", intermediate_name="Issuing B"),
    )


def _leaf_pem(ca: TestCA, host: str, *, chain: bool = True, **options: object) -> bytes:
    key, leaf = ca.leaf(host, **options)  # type: ignore[arg-type]
    return pem(leaf, *((ca.intermediate, ca.root) if chain else ()), key)


def _import(app: Appliance, content: bytes) -> int:
    """The first certificate of ``content`` (a leaf, its chain and key): its id."""
    entries = imports.import_files(app, [("site.pem", content)])
    assert all(entry.status != "error" for entry in entries), entries
    return next(e.id for e in entries if e.kind == "certificate" and e.id is not None)


def _issued(app: Appliance, ca: TestCA, host: str, **options: object) -> int:
    return _import(app, _leaf_pem(ca, host, **options))


def _assigned(app: Appliance, address: str = ADDRESS) -> int:
    return networking.show_address(app, address).certificate_id


def _refused(call: Callable[[], object]) -> UnconfirmedChangeError:
    with pytest.raises(UnconfirmedChangeError) as caught:
        call()
    return caught.value


def _presented(certgate: Certgate) -> str:
    [address] = certgate.json("ip", "list")
    name: str = address["certificate_name"]
    return name


def _details(app: Appliance, action: AuditAction) -> list[str]:
    found = audit.list_events(app, AuditFilter(action=action)).events
    return [event.detail for event in found]


def test_a_change_of_root_waits_for_confirmation_a_same_root_renewal_does_not(
    appliance: Appliance, roots: tuple[TestCA, TestCA]
) -> None:
    a, b = roots
    networking.add_address(appliance, ADDRESS)
    site_a = _issued(appliance, a, "a.example.test")
    networking.assign(appliance, [ADDRESS], site_a)  # leaving the factory certificate: no question
    site_b = _issued(appliance, b, "b.example.test")

    refused = _refused(lambda: networking.assign(appliance, [ADDRESS], site_b))
    assert refused.status == 409 and refused.code == "unconfirmed-change"
    [concern] = refused.concerns
    assert (concern.address, concern.code) == (ADDRESS, ConcernCode.ROOT_CHANGE)
    assert (concern.current_root.subject, concern.new_root.subject) == ("CN=Root A", "CN=Root B")
    assert concern.current_root.fingerprint_sha256 == fingerprint(a.root)
    assert "'CN=Root A'" in str(refused) and "'CN=Root B'" in str(refused)
    assert GUIDE_CA_WARNING in str(refused)
    assert _assigned(appliance) == site_a  # nothing changed

    networking.assign(appliance, [ADDRESS], site_b, confirm=True)
    assert _assigned(appliance) == site_b
    assert _details(appliance, AuditAction.ADDRESS_ASSIGN)[0] == (
        f"{ADDRESS}; confirmed despite: {ADDRESS} root-change"
    )

    # A renewal under the same root (a new certificate from the same CA), assigned or
    # replacing, needs no confirmation; assigning what the address presents raises nothing.
    renewed = _issued(appliance, b, "b.example.test", days=730)
    networking.assign(appliance, [ADDRESS], renewed)
    networking.assign(appliance, [ADDRESS], renewed)
    again = _issued(appliance, b, "b.example.test", days=800)
    done = replacement.replace_certificate(appliance, renewed, again)
    assert done.addresses == (ADDRESS,) and _assigned(appliance) == again
    assert "confirmed" not in _details(appliance, AuditAction.CERTIFICATE_REPLACE)[0]

    # Replacing it with one under Root A again is another change of root.
    back = _refused(lambda: replacement.replace_certificate(appliance, again, site_a))
    assert [c.code for c in back.concerns] == [ConcernCode.ROOT_CHANGE]
    assert _assigned(appliance) == again
    replacement.replace_certificate(appliance, again, site_a, confirm=True)
    assert _assigned(appliance) == site_a
    assert _details(appliance, AuditAction.CERTIFICATE_REPLACE)[0].endswith(
        f"; confirmed despite: {ADDRESS} root-change"
    )


def test_a_root_of_the_same_name_and_another_key_is_another_root(
    appliance: Appliance, roots: tuple[TestCA, TestCA]
) -> None:
    """Chains that stop short of their root are told apart by the key their top names its
    issuer by, not by the issuer's name alone. (Such a chain is incomplete, which needs
    confirming anyway; the change of root is said beside it.)"""
    first, _ = roots
    twin = TestCA.make(root_name="Root A", intermediate_name="Issuing A")  # another key

    def codes(certificate_id: int) -> list[ConcernCode]:
        refused = _refused(lambda: networking.assign(appliance, [ADDRESS], certificate_id))
        return sorted(concern.code for concern in refused.concerns)

    networking.add_address(appliance, ADDRESS)
    site = _import(appliance, pem(*first.leaf("a.example.test"), first.intermediate))
    networking.assign(appliance, [ADDRESS], site, confirm=True)
    renewed = _import(appliance, pem(*first.leaf("a.example.test", days=730)))
    assert codes(renewed) == [ConcernCode.CHAIN_INCOMPLETE]  # the same root
    other = _import(appliance, pem(*twin.leaf("a.example.test"), twin.intermediate))
    assert codes(other) == [ConcernCode.CHAIN_INCOMPLETE, ConcernCode.ROOT_CHANGE]

    refused = _refused(lambda: networking.assign(appliance, [ADDRESS], other))
    [concern] = [c for c in refused.concerns if c.code is ConcernCode.ROOT_CHANGE]
    assert concern.current_root.subject == concern.new_root.subject == "CN=Root A"
    assert concern.current_root.key_id != concern.new_root.key_id
    assert f"key identifier {concern.new_root.key_id}" in concern.message
    assert _assigned(appliance) == site

    # Once the first root is in the store, its key decides against the other's identifier;
    # the first chain is complete now, the other's root still unknown.
    _import(appliance, pem(first.root))
    refused = _refused(lambda: networking.assign(appliance, [ADDRESS], other))
    [concern] = [c for c in refused.concerns if c.code is ConcernCode.ROOT_CHANGE]
    assert concern.current_root.fingerprint_sha256 == fingerprint(first.root)
    assert concern.new_root.fingerprint_sha256 is None
    # Two roots of one name: the message tells them apart (fingerprint, key identifier).
    assert f"'CN=Root A' (SHA-256 {fingerprint(first.root)[:16]}…)" in concern.message
    assert f"(not in the store, key identifier {concern.new_root.key_id})" in concern.message


def test_a_root_without_a_key_identifier_is_told_apart_by_its_key(appliance: Appliance) -> None:
    """A root in the store that carries no subject key identifier (an older or hand-made
    one) is known by its key, which its issuers name it by: a chain whose top names another
    key for a root of that name ends at another root; its own CA's renewal does not."""
    root_key, intermediate_key = new_key(), new_key()
    root = issue(
        named("Root C"), root_key.public_key(), named("Root C"), root_key, ca=True, key_ids=False
    )
    intermediate = issue(
        named("Issuing C"), intermediate_key.public_key(), root.subject, root_key, ca=True
    )
    bare = TestCA(root_key, root, intermediate_key, intermediate)
    twin = TestCA.make(root_name="Root C", intermediate_name="Issuing C")  # another key

    networking.add_address(appliance, ADDRESS)
    site = _issued(appliance, bare, "c.example.test")
    networking.assign(appliance, [ADDRESS], site)
    renewed = _issued(appliance, bare, "c.example.test", days=730)
    networking.assign(appliance, [ADDRESS], renewed)  # the same root: no question
    other = _import(appliance, pem(*twin.leaf("c.example.test"), twin.intermediate))
    refused = _refused(lambda: networking.assign(appliance, [ADDRESS], other))
    codes = sorted(concern.code for concern in refused.concerns)
    assert codes == [ConcernCode.CHAIN_INCOMPLETE, ConcernCode.ROOT_CHANGE]
    assert _assigned(appliance) == renewed


def test_self_signed_to_ca_signed_and_back_to_the_factory_certificate(
    appliance: Appliance, roots: tuple[TestCA, TestCA]
) -> None:
    a, _ = roots
    networking.add_address(appliance, ADDRESS)
    form = certificates.CreateForm("own", SubjectFields(common_name="own.example.test"))
    own = certificates.create(appliance, form, "self-signed").id
    networking.assign(appliance, [ADDRESS], own)
    site_a = _issued(appliance, a, "a.example.test")

    [concern] = _refused(lambda: networking.assign(appliance, [ADDRESS], site_a)).concerns
    assert concern.current_root.subject == "CN=own.example.test"  # its own root
    assert concern.new_root.subject == "CN=Root A"
    networking.assign(appliance, [ADDRESS], site_a, confirm=True)

    # Unchecked on the Edit page, the address goes back to the factory certificate: a change
    # of root too, on Save Configuration as through the API's PUT .../addresses.
    view = certificates.show_certificate(appliance, site_a)
    unchecked = configuration.Configuration(view.friendly_name, "automatic", [])
    refused = _refused(lambda: configuration.save_configuration(appliance, site_a, unchecked))
    [concern] = refused.concerns
    assert concern.new_certificate == FACTORY_NAME
    assert concern.new_root.subject == f"CN={FACTORY_NAME}"
    assert concern.current_root.subject == "CN=Root A"
    assert _assigned(appliance) == site_a
    _refused(lambda: networking.set_certificate_addresses(appliance, site_a, []))
    saved = configuration.save_configuration(appliance, site_a, unchecked, confirm=True)
    assert saved.changed == ["addresses"]
    assert networking.show_address(appliance, ADDRESS).is_factory_certificate


def test_a_certificate_clients_refuse_waits_for_confirmation_even_off_the_factory_one(
    appliance: Appliance, roots: tuple[TestCA, TestCA]
) -> None:
    a, _ = roots
    now = dt.datetime.now(dt.UTC)
    cases = {
        "127.0.0.3": (_leaf_pem(a, "old.example.test", not_before=now - dt.timedelta(days=30),
                                days=10), ConcernCode.EXPIRED, "expired on"),
        "127.0.0.4": (_leaf_pem(a, "soon.example.test", not_before=now + dt.timedelta(days=5)),
                      ConcernCode.NOT_YET_VALID, "not valid before"),
        "127.0.0.5": (_leaf_pem(TestCA.make(root_name="Root C", intermediate_name="Issuing C"),
                                "alone.example.test", chain=False),
                      ConcernCode.CHAIN_INCOMPLETE, "the chain is incomplete: the issuer "
                      "'CN=Issuing C'"),
        "127.0.0.6": (_leaf_pem(a, "other.example.test"), ConcernCode.HOSTNAME_NOT_COVERED,
                      "does not cover portal.example.test"),
    }  # fmt: skip
    for address, (content, code, says) in cases.items():
        hostnames = ["portal.example.test"] if code is ConcernCode.HOSTNAME_NOT_COVERED else []
        factory = networking.add_address(appliance, address, hostnames=hostnames).certificate_id
        certificate = _import(appliance, content)
        refused = _refused(functools.partial(networking.assign, appliance, [address], certificate))
        [concern] = refused.concerns
        assert (concern.address, concern.code) == (address, code)
        assert says in concern.message and says in str(refused)
        assert GUIDE_CA_WARNING not in str(refused)  # no root changes
        assert _assigned(appliance, address) == factory
        networking.assign(appliance, [address], certificate, confirm=True)
        assert _assigned(appliance, address) == certificate
    [hostname] = refused.concerns
    assert hostname.hostnames == ("portal.example.test",)

    # One covering its hostname, valid, under a known root: no question leaving the factory.
    networking.add_address(appliance, "127.0.0.7", hostnames=["portal.example.test"])
    good = _issued(appliance, a, "portal.example.test")
    networking.assign(appliance, ["127.0.0.7"], good)
    assert _assigned(appliance, "127.0.0.7") == good


def test_the_cli_refuses_naming_both_roots_until_confirm(
    certgate: Certgate, roots: tuple[TestCA, TestCA], tmp_path: Path
) -> None:
    a, b = roots
    ids = {}
    for name, ca in (("a", a), ("b", b)):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(_leaf_pem(ca, f"{name}.example.test"))
        certgate("cert", "import", path)
        [entry] = [
            c for c in certgate.certificates() if c["friendly_name"] == f"{name}.example.test"
        ]
        ids[name] = str(entry["id"])
    certgate("ip", "add", ADDRESS)
    assert (
        "now presents a.example.test"
        in certgate("ip", "assign", ADDRESS, "--cert", ids["a"]).stdout
    )

    refused = certgate("ip", "assign", ADDRESS, "--cert", ids["b"], expect=1)
    [line] = refused.error_lines
    assert line.startswith(
        f"error: this change needs confirming: {ADDRESS}: presents 'a.example.test'"
    )
    assert "'CN=Root A'" in line and "'CN=Root B'" in line and "--confirm" in line
    assert _presented(certgate) == "a.example.test"
    certgate("ip", "assign", ADDRESS, "--cert", ids["b"], "--confirm")
    assert _presented(certgate) == "b.example.test"

    refused = certgate("cert", "replace", ids["b"], "--with", ids["a"], expect=1)
    assert "'CN=Root B'" in refused.stderr and "'CN=Root A'" in refused.stderr
    assert _presented(certgate) == "b.example.test"
    done = certgate.json("cert", "replace", ids["b"], "--with", ids["a"], "--confirm")
    assert done["addresses"] == [ADDRESS]
    [event] = certgate.json("audit", "list", "--action", "certificate.replace")["events"]
    assert event["detail"].endswith(f"; confirmed despite: {ADDRESS} root-change")

    # A chain through Issuing A cross-signed by Root B: the address's root changes.
    cross = issue(
        a.intermediate.subject, a.intermediate_key.public_key(), b.root.subject, b.root_key,
        ca=True,
    )  # fmt: skip
    chain_file = tmp_path / "via-b.pem"
    chain_file.write_bytes(pem(cross, b.root))
    refused = certgate("cert", "chain", ids["a"], "--manual", chain_file, expect=1)
    assert "'CN=Root A'" in refused.stderr and "'CN=Root B'" in refused.stderr
    assert certgate.show(ids["a"])["chain_mode"] == "automatic"
    certgate("cert", "chain", ids["a"], "--manual", chain_file, "--confirm")
    assert certgate.show(ids["a"])["chain"][-1] == fingerprint(b.root)


def test_deleting_with_its_addresses_handed_to_the_factory_certificate_notes_the_root_change(
    appliance: Appliance, roots: tuple[TestCA, TestCA]
) -> None:
    """The hand-over to the factory certificate is the confirmation (the delete is refused
    without it); what it changes for clients is in the audit as for any confirmed move."""
    a, _ = roots
    networking.add_address(appliance, ADDRESS)
    site_a = _issued(appliance, a, "a.example.test")
    networking.assign(appliance, [ADDRESS], site_a, confirm=True)
    with pytest.raises(InUseError, match="confirm handing them to the factory certificate"):
        certificates.delete_certificate(appliance, site_a)
    certificates.delete_certificate(appliance, site_a, reassign_to_factory=True)
    assert networking.show_address(appliance, ADDRESS).is_factory_certificate
    [detail] = _details(appliance, AuditAction.CERTIFICATE_DELETE)
    assert f"{ADDRESS} now served by the factory certificate" in detail
    assert f"confirmed despite: {ADDRESS} {ConcernCode.ROOT_CHANGE.value}" in detail


def test_an_acme_order_is_asked_before_it_is_placed(
    appliance: Appliance, roots: tuple[TestCA, TestCA]
) -> None:
    """What an ACME order can foresee: the root its CA's certificates end at (known from one
    it issued here before) against the address's, and the address's hostnames against the
    names ordered. Leaving the factory certificate changes no root clients kept."""
    a, b = roots
    ca = "https://ca.example.test/directory"
    networking.add_address(appliance, ADDRESS, hostnames=["www.example.test"])
    from_a, from_b = _issued(appliance, a, "a.example.test"), _issued(appliance, b, "b.test")

    def check(names: list[str], ca_root: object, confirm: bool = False) -> list[ConcernCode]:
        with appliance.store.reading() as repository:
            address = repository.ip_address(ADDRESS)
            assert address is not None
            root = None
            if ca_root is not None:
                certificate = repository.certificate(int(str(ca_root)))
                assert certificate is not None
                root = guard.root_of(repository, certificate)
            found = guard.check_order(
                repository, [address], "site", names, ca, root, confirm=confirm
            )
            return [concern.code for concern in found]

    assert check(["www.example.test"], None) == []  # the factory certificate: no root to keep
    refused = _refused(lambda: check(["shop.example.test"], None))
    assert [concern.code for concern in refused.concerns] == [ConcernCode.HOSTNAME_NOT_COVERED]
    assert "do not cover www.example.test" in str(refused)
    assert check(["*.example.test"], None) == []  # a wildcard covers it

    networking.assign(appliance, [ADDRESS], from_a, confirm=True)
    refused = _refused(lambda: check(["www.example.test"], None))
    assert "has issued no certificate here yet" in str(refused)
    assert check(["www.example.test"], from_a) == []  # the CA's earlier root: the same
    refused = _refused(lambda: check(["www.example.test"], from_b))
    assert "'CN=Root A'" in str(refused) and "'CN=Root B'" in str(refused)
    assert check(["www.example.test"], from_b, confirm=True) == [ConcernCode.ROOT_CHANGE]


def test_a_chain_that_ends_at_another_root_waits_for_confirmation(
    appliance: Appliance, roots: tuple[TestCA, TestCA]
) -> None:
    """A certificate securing an address, given a manually specified chain through a
    cross-signed intermediate (Issuing A signed by Root B), or back to the automatic one,
    changes the root the address's chain ends at: on every face (the service here, the
    Edit page's save below), only when confirmed. A certificate on no address is free."""
    a, b = roots
    cross = issue(
        a.intermediate.subject, a.intermediate_key.public_key(), b.root.subject, b.root_key,
        ca=True,
    )  # fmt: skip
    networking.add_address(appliance, ADDRESS)
    site = _issued(appliance, a, "cross.example.test")
    spare = _issued(appliance, a, "spare.example.test")
    networking.assign(appliance, [ADDRESS], site)
    via_b = pem(cross, b.root)

    refused = _refused(lambda: certificates.set_manual_chain(appliance, site, via_b))
    [concern] = refused.concerns
    assert (concern.address, concern.code) == (ADDRESS, ConcernCode.ROOT_CHANGE)
    assert (concern.current_root.subject, concern.new_root.subject) == ("CN=Root A", "CN=Root B")
    assert certificates.show_certificate(appliance, site).chain_mode == "automatic"  # unchanged
    saving = configuration.Configuration("cross.example.test", "manual", [ADDRESS], via_b)
    _refused(lambda: configuration.save_configuration(appliance, site, saving))
    assert certificates.show_certificate(appliance, site).chain_mode == "automatic"

    certificates.set_manual_chain(appliance, site, via_b, confirm=True)
    view = certificates.show_certificate(appliance, site)
    assert view.chain_mode == "manual" and view.chain[-1] == fingerprint(b.root)
    assert _details(appliance, AuditAction.CERTIFICATE_CHAIN)[0].endswith(
        f"; confirmed despite: {ADDRESS} root-change"
    )
    back = _refused(lambda: certificates.set_automatic_chain(appliance, site))
    assert [c.code for c in back.concerns] == [ConcernCode.ROOT_CHANGE]
    certificates.set_automatic_chain(appliance, site, confirm=True)
    assert certificates.show_certificate(appliance, site).chain[-1] == fingerprint(a.root)

    certificates.set_manual_chain(appliance, spare, via_b)  # secures nothing: no question
    assert certificates.show_certificate(appliance, spare).chain[-1] == fingerprint(b.root)
