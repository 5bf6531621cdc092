"""``ApplianceServer`` in this process: a failure while building the first plan comes out as
itself (not as a failure to stop the revision watch that never started); the plan after a
commit builds again only the certificates whose chain or key changed."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import event, text

from certgate.errors import StoreUnavailableError
from certgate.service import (
    certificates,
    imports,
    networking,
    served_state,
    serving,
    tls_settings,
)
from certgate.service.appliance import Appliance
from certgate.service.setup import initialise
from certgate.store.sealing import Sealer
from tests.support.aio import run_on_own_loop
from tests.support.pki import Key, TestChain, issue, make_chain, name, new_key


class _Quiet(asyncio.Protocol):
    pass


def test_a_failing_first_plan_is_reported_as_itself(
    appliance: Appliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise ValueError("the plan cannot be read")

    monkeypatch.setattr(serving, "read_state", broken)
    server = serving.ApplianceServer(appliance, _Quiet, port_override=1)

    async def run() -> None:
        await server.run(asyncio.Event())

    with pytest.raises(ValueError, match="the plan cannot be read"):
        run_on_own_loop(run())


# --- the plan after a commit: what changed is built again, nothing else ------------------------


def _pem(*items: x509.Certificate) -> bytes:
    return b"".join(item.public_bytes(serialization.Encoding.PEM) for item in items)


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _import(app: Appliance, content: bytes) -> int:
    entries = imports.import_files(app, [("file.pem", content)])
    assert all(entry.status != "error" for entry in entries), entries
    return next(e.id for e in entries if e.kind == "certificate" and e.id is not None)


def _served_leaf(app: Appliance, host: str, address: str) -> TestChain:
    chain = make_chain(host)
    leaf = _import(app, _pem(chain.leaf) + _key_pem(chain.leaf_key))
    networking.add_address(app, address)
    networking.assign(app, [address], leaf, confirm=True)
    return chain


def _subjects(chain_pem: bytes) -> list[str]:
    return [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(chain_pem)]


def test_a_commit_that_serves_nothing_new_keeps_every_served_certificate(
    appliance: Appliance,
) -> None:
    _served_leaf(appliance, "one.example.com", "127.0.0.11")
    _served_leaf(appliance, "two.example.com", "127.0.0.12")
    cache = serving.PlanCache()
    before = serving.read_state(appliance, cache).plan()
    _import(appliance, _pem(make_chain("unassigned.example.com").leaf))
    after = serving.read_state(appliance, cache).plan()
    assert after == before
    for address, served in before.assignments.items():
        assert after.assignments[address] is served  # not unsealed and encoded again


def test_a_changed_address_is_the_only_one_built_again(appliance: Appliance) -> None:
    _served_leaf(appliance, "one.example.com", "127.0.0.11")
    _served_leaf(appliance, "two.example.com", "127.0.0.12")
    cache = serving.PlanCache()
    before = serving.read_state(appliance, cache).plan()
    other = make_chain("three.example.com")
    networking.assign(
        appliance,
        ["127.0.0.12"],
        _import(appliance, _pem(other.leaf) + _key_pem(other.leaf_key)),
        confirm=True,
    )
    after = serving.read_state(appliance, cache).plan()
    assert after.assignments["127.0.0.11"] is before.assignments["127.0.0.11"]
    assert after.assignments["127.0.0.12"].fingerprint == (
        other.leaf.fingerprint(hashes.SHA256()).hex()
    )
    assert after == serving.read_state(appliance).plan()  # the same as a plan built from nothing


def test_an_issuer_arriving_later_changes_the_served_chain(appliance: Appliance) -> None:
    chain = _served_leaf(appliance, "one.example.com", "127.0.0.11")
    cache = serving.PlanCache()
    before = serving.read_state(appliance, cache).plan()
    assert _subjects(before.assignments["127.0.0.11"].chain_pem) == ["CN=one.example.com"]
    _import(appliance, _pem(chain.intermediate, chain.root))
    after = serving.read_state(appliance, cache).plan()
    # The root is left out by default (clients have it); the send_root setting adds it.
    assert _subjects(after.assignments["127.0.0.11"].chain_pem) == [
        "CN=one.example.com",
        "CN=Test Intermediate",
    ]
    tls_settings.update_settings(appliance, send_root=True)
    with_root = serving.read_state(appliance, cache).plan()
    assert _subjects(with_root.assignments["127.0.0.11"].chain_pem) == [
        "CN=one.example.com",
        "CN=Test Intermediate",
        "CN=Test Root",
    ]
    tls_settings.update_settings(appliance, send_root=False)
    # A manual chain of the intermediate only: the plan follows it too (confirmed: a chain
    # that stops short of its root is incomplete, which the guard asks about).
    leaf = certificates.show_certificate(appliance, _fingerprint(chain.leaf))
    certificates.set_manual_chain(appliance, leaf.id, _pem(chain.intermediate), confirm=True)
    manual = serving.read_state(appliance, cache).plan()
    assert _subjects(manual.assignments["127.0.0.11"].chain_pem) == [
        "CN=one.example.com",
        "CN=Test Intermediate",
    ]
    assert manual == serving.read_state(appliance).plan()


def test_a_served_issuer_that_changes_changes_the_chain_it_is_part_of(
    appliance: Appliance,
) -> None:
    """A leaf whose row did not change keeps its stamp only while every certificate its chain
    goes through is read as before, a served one included (here its issuer, served too)."""
    root_key, middle_key, issuing_key, leaf_key = (new_key() for _ in range(4))
    root = issue(name("Root"), root_key.public_key(), name("Root"), root_key, ca=True)
    middle = issue(name("Middle"), middle_key.public_key(), name("Root"), root_key, ca=True)
    issuing = issue(name("Issuing"), issuing_key.public_key(), name("Middle"), middle_key, ca=True)
    leaf = issue(
        name("www.example.com"),
        leaf_key.public_key(),
        name("Issuing"),
        issuing_key,
        ca=False,
        sans=["www.example.com"],
    )
    for address, (certificate, key) in {
        "127.0.0.11": (issuing, issuing_key),
        "127.0.0.12": (leaf, leaf_key),
    }.items():
        networking.add_address(appliance, address)
        served = _import(appliance, _pem(certificate) + _key_pem(key))
        networking.assign(appliance, [address], served, confirm=True)
    cache = serving.PlanCache()
    before = serving.read_state(appliance, cache).plan()
    assert _subjects(before.assignments["127.0.0.12"].chain_pem) == [
        "CN=www.example.com",
        "CN=Issuing",
    ]
    _import(appliance, _pem(middle, root))  # links the served issuer: its row changes
    after = serving.read_state(appliance, cache).plan()
    assert _subjects(after.assignments["127.0.0.12"].chain_pem) == [
        "CN=www.example.com",
        "CN=Issuing",
        "CN=Middle",
    ]
    assert after == serving.read_state(appliance).plan()


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


# --- the cached state: what a serve started without the store presents -----------------------


def test_the_cached_state_plans_what_the_store_plans_with_its_keys_still_sealed(
    appliance: Appliance, caplog: pytest.LogCaptureFixture
) -> None:
    networking.add_address(appliance, "127.0.0.2")  # the factory certificate
    _served_leaf(appliance, "cached.test", "127.0.0.3")  # a chain of three
    state = serving.read_state(appliance)
    assert state.served.keys() == {"127.0.0.2", "127.0.0.3"}
    served_state.save(appliance.data_dir, state, 7, appliance.now())
    path = served_state.state_path(appliance.data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in path.read_bytes()

    cached = served_state.load(appliance.data_dir, appliance.sealer)
    assert cached is not None and cached.revision == 7
    assert cached.state.plan(1234, 0) == state.plan(1234, 0)
    assert cached.state.sealed == state.sealed

    # Under another master key (rotated since): each address refused, naming its certificate.
    other = served_state.load(appliance.data_dir, Sealer(AESGCM.generate_key(bit_length=256)))
    assert other is not None and other.state.served == {}
    assert other.state.refused.keys() == state.served.keys()
    assert all("(cached) cannot be presented" in why for why in other.state.refused.values())

    whole = json.loads(path.read_text())
    damaged = [
        '{"format": 1, "revision": ',  # cut short
        "[]",
        "null",
        json.dumps({**whole, "certificates": []}),
        json.dumps({**whole, "refused": []}),
        json.dumps({**whole, "addresses": {"127.0.0.9": "no-such-fingerprint"}}),
    ]
    for content in damaged:  # refused with a line in the log, never a crash of serve
        caplog.clear()
        path.write_text(content)
        assert served_state.load(appliance.data_dir, appliance.sealer) is None, content
        assert f"cannot use the cached state {path}" in caplog.text
    path.unlink()
    assert served_state.load(appliance.data_dir, appliance.sealer) is None


def test_a_store_whose_schema_is_behind_says_so_not_unreachable(appliance: Appliance) -> None:
    """A node upgraded while its database was away reaches it later at the old schema:
    the error names the schema and 'certgate init', not a server to check."""
    with appliance.store.transaction() as repository:
        repository.session.execute(text("DROP TABLE acme_tls_challenges"))
    with pytest.raises(StoreUnavailableError) as caught:
        serving.read_state(appliance)
    message = str(caught.value)
    assert "its schema is older than this certgate; run 'certgate init'" in message
    assert "cannot be reached" not in message


def test_a_plan_read_while_another_node_deletes_a_served_certificate_is_one_state(
    data_dir: Path, postgresql_url: str
) -> None:
    """PostgreSQL: another node deletes a served certificate (its address going back to the
    factory certificate, one commit) just after this node read which certificate each address
    presents, and before it read the certificates. The plan is one committed state, the one
    before the delete (the next commit's read brings the one after), never a mix of both,
    where an address presents a certificate that no longer exists."""
    initialise(data_dir, postgresql_url)
    here, other = Appliance.open(data_dir, postgresql_url), Appliance.open(data_dir, postgresql_url)
    try:
        chain = _served_leaf(here, "gone.example.com", "127.0.0.11")
        deleted: list[int] = []

        def delete_on_the_other_node(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
            if not deleted and "FROM ip_addresses" in statement:  # the served links: read
                deleted.append(certificates.delete_certificate(
                    other, _fingerprint(chain.leaf), reassign_to_factory=True
                ).id)  # fmt: skip

        event.listen(here.store.engine, "after_cursor_execute", delete_on_the_other_node)
        try:
            plan = serving.read_state(here).plan()
        finally:
            event.remove(here.store.engine, "after_cursor_execute", delete_on_the_other_node)
        assert deleted  # the delete was committed in the middle of the read
        assert plan.assignments["127.0.0.11"].fingerprint == _fingerprint(chain.leaf)
        after = serving.read_state(here).plan()
        assert after.assignments["127.0.0.11"].fingerprint != _fingerprint(chain.leaf)
    finally:
        here.close()
        other.close()
