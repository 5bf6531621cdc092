"""Addresses belong to nodes (issue 12, point 2), on both store backends: an address pinned to
a node is planned by that node only, a floating one (no node) by every node and bound with
IP_FREEBIND; a node that has never run is pinned only when confirmed; Diagnostic Status
blames only the node that should serve an address, and says when a pinned one's node is not
alive."""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path

import pytest
from sqlalchemy import text

from certgate.errors import UnknownNodeError, ValidationError
from certgate.pki.names import SubjectFields
from certgate.service import (
    acme_orders,
    audit,
    certificates,
    networking,
    nodes,
    served_state,
    serving,
)
from certgate.service.acme_orders import ChallengeType
from certgate.service.appliance import Appliance
from certgate.service.health import FindingCode, Severity, diagnose
from certgate.service.serving import ServeReport
from certgate.tls import ListenerPlan
from tests.support.migration import store_at

PINNED_A, PINNED_B, FLOATING = "127.0.0.51", "127.0.0.52", "127.0.0.53"
SHARED = "192.0.2.10"  # a failover pair's address (not loopback: each host has its own)


def _beat(app: Appliance, name: str, listeners: list[dict[str, object]] | None = None) -> None:
    assert nodes.heartbeat(app, name, app.now(), 5.0, listeners or [])


def _self_signed(app: Appliance, name: str) -> int:
    form = certificates.CreateForm(name, SubjectFields(common_name=f"{name}.example.test"))
    return certificates.create(app, form, "self-signed").id


def test_an_address_is_floating_unless_pinned_and_only_a_known_node_is_pinned_unconfirmed(
    appliance: Appliance,
) -> None:
    _beat(appliance, "node-a")
    _beat(appliance, "node-b")
    assert networking.add_address(appliance, FLOATING).node is None
    assert networking.add_address(appliance, PINNED_A, node="node-a").node == "node-a"

    # A name no node has run as: most often a typing mistake, so it needs confirming.
    with pytest.raises(UnknownNodeError) as refused:
        networking.add_address(appliance, PINNED_B, node="node-c")
    assert refused.value.code == "unknown-node" and refused.value.status == 409
    assert refused.value.known == ("node-a", "node-b")
    assert "known: node-a, node-b" in str(refused.value)
    assert PINNED_B not in [view.address for view in networking.list_addresses(appliance)]
    provisioned = networking.add_address(appliance, PINNED_B, node="node-c", confirm=True)
    assert provisioned.node == "node-c"

    with pytest.raises(UnknownNodeError):
        networking.set_node(appliance, PINNED_B, "node-d")
    assert networking.set_node(appliance, PINNED_B, "node-b").node == "node-b"
    assert networking.set_node(appliance, PINNED_A, None).node is None
    assert networking.set_node(appliance, PINNED_A, "node-a").node == "node-a"
    for wrong in ("", "   ", "node\na", "n" * 65):
        with pytest.raises(ValidationError) as invalid:
            networking.add_address(appliance, "127.0.0.59", node=wrong)
        assert invalid.value.field == "node"
        with pytest.raises(ValidationError):
            networking.set_node(appliance, PINNED_A, wrong)
    with pytest.raises(ValidationError, match="not both"):
        networking.change_address(appliance, PINNED_A, node="node-a", floating=True)

    # Hostnames and node in one change; what is not given stays.
    view = networking.change_address(
        appliance, FLOATING, hostnames=["shop.example.test"], node="node-b"
    )
    assert (view.hostnames, view.node) == (["shop.example.test"], "node-b")
    view = networking.change_address(appliance, FLOATING, floating=True)
    assert (view.hostnames, view.node) == (["shop.example.test"], None)
    assert networking.set_hostnames(appliance, FLOATING, []).node is None

    listed = {view.address: view.node for view in networking.list_addresses(appliance)}
    assert listed == {FLOATING: None, PINNED_A: "node-a", PINNED_B: "node-b"}
    events = audit.list_events(appliance, audit.AuditFilter(action="address.node")).events
    assert [(event.target, event.detail) for event in reversed(events)] == [
        (PINNED_B, "node: node-b"),
        (PINNED_A, "floating"),
        (PINNED_A, "node: node-a"),
        (FLOATING, "node: node-b"),
        (FLOATING, "floating"),
    ]
    added = audit.list_events(appliance, audit.AuditFilter(action="address.add")).events
    assert {event.target: event.detail for event in added}[PINNED_B] == "node: node-c"


def _plan(
    app: Appliance, node: str | None = None, cache: serving.PlanCache | None = None
) -> ListenerPlan:
    return serving.read_state(app, cache, node).plan()


def test_a_node_plans_the_floating_addresses_and_its_own_with_freebind_on_the_floating(
    appliance: Appliance,
) -> None:
    _beat(appliance, "node-a")
    _beat(appliance, "node-b")
    networking.add_address(appliance, FLOATING)
    networking.add_address(appliance, PINNED_A, node="node-a")
    networking.add_address(appliance, PINNED_B, node="node-b")
    # node-b's address presents a certificate whose key cannot be unsealed: node-a never
    # reads it, so its plan refuses nothing; node-b's plan names it.
    broken = _self_signed(appliance, "broken")
    networking.assign(appliance, [PINNED_B], broken, confirm=True)
    with appliance.store.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE private_keys SET sealed = :junk WHERE public_key_fingerprint = "
                "(SELECT public_key_fingerprint FROM certificates WHERE id = :id)"
            ),
            {"junk": b"\x00" * 64, "id": broken},
        )

    plan_a = _plan(appliance, node="node-a")
    assert set(plan_a.assignments) == {FLOATING, PINNED_A}
    assert plan_a.refused == {}
    assert plan_a.freebind == {FLOATING}
    plan_b = _plan(appliance, node="node-b")
    assert set(plan_b.assignments) == {FLOATING}
    assert set(plan_b.refused) == {PINNED_B}
    assert plan_b.freebind == {FLOATING}
    unnamed = _plan(appliance)  # a server without a node: the floating ones
    assert set(unnamed.assignments) == {FLOATING} and unnamed.refused == {}

    # The same cache follows a change of node: the address moves from one plan to the other.
    cache = serving.PlanCache()
    _plan(appliance, node="node-a", cache=cache)
    networking.set_node(appliance, PINNED_A, "node-b")
    moved = _plan(appliance, node="node-a", cache=cache)
    assert set(moved.assignments) == {FLOATING}
    networking.set_node(appliance, PINNED_A, None)
    floating = _plan(appliance, node="node-a", cache=cache)
    assert floating.freebind == {FLOATING, PINNED_A}
    assert floating == _plan(appliance, node="node-a")

    # The state a node caches for a start without its store keeps which addresses float;
    # one saved before addresses had nodes floats them all, as they were then.
    networking.set_node(appliance, PINNED_A, "node-a")
    state = serving.read_state(appliance, node="node-a")
    served_state.save(appliance.data_dir, state, 1, appliance.now(), node="node-a")
    cached = served_state.load(appliance.data_dir, appliance.sealer, node="node-a")
    assert cached is not None and cached.state.plan() == state.plan()
    assert cached.state.plan().freebind == {FLOATING}
    # Started as another node, it would bind node-a's pinned address: not used.
    assert served_state.load(appliance.data_dir, appliance.sealer, node="node-b") is None
    path = served_state.state_path(appliance.data_dir)
    document = json.loads(path.read_text())
    del document["floating"], document["node"]
    path.write_text(json.dumps(document))
    older = served_state.load(appliance.data_dir, appliance.sealer)
    assert older is not None and older.state.plan().freebind == {FLOATING, PINNED_A}


def _listening(address: str, fingerprint: str) -> dict[str, object]:
    return {"address": address, "port": 8443, "state": "listening", "fingerprint": fingerprint}


def test_diagnostic_status_blames_only_the_node_that_should_serve_an_address(
    appliance: Appliance,
) -> None:
    for address, node in ((FLOATING, None), (PINNED_A, "node-a"), (PINNED_B, "node-b")):
        networking.add_address(appliance, address, node=node, confirm=True)
    factory = networking.list_addresses(appliance)[0].certificate_fingerprint
    # node-a (this data directory's serve) and node-b each serve the floating address and
    # their own: nothing to attend to, although neither listens on the other's address.
    here = ServeReport(
        1, [_listening(FLOATING, factory), _listening(PINNED_A, factory)], node="node-a"
    )
    _beat(appliance, "node-a", [_listening(FLOATING, factory), _listening(PINNED_A, factory)])
    _beat(appliance, "node-b", [_listening(FLOATING, factory), _listening(PINNED_B, factory)])
    addresses = networking.list_addresses(appliance)
    assert diagnose(appliance, addresses, here).findings == []
    assert [node.drift for node in nodes.list_nodes(appliance)] == [[], []]

    # node-b stops listening on its own address: it alone is blamed (drift), and this
    # serve, which has the floating address only in common with it, is not.
    _beat(appliance, "node-b", [_listening(FLOATING, factory)])
    [finding] = diagnose(appliance, addresses, here).findings
    assert finding.code is FindingCode.NODE_DRIFT
    assert "node 'node-b' presents nothing on 127.0.0.52" in finding.message
    # This serve not listening on its own pinned address is its listener's fault.
    alone = ServeReport(1, [_listening(FLOATING, factory)], node="node-a")
    _beat(appliance, "node-b", [_listening(FLOATING, factory), _listening(PINNED_B, factory)])
    [finding] = diagnose(appliance, addresses, alone).findings
    assert finding.code is FindingCode.NOT_SERVED and PINNED_A in finding.message


def test_an_address_pinned_to_a_node_that_is_not_alive_is_a_finding(
    appliance: Appliance,
) -> None:
    factory_serving = ServeReport(1, [], node="node-a")
    networking.add_address(appliance, PINNED_B, node="node-b", confirm=True)
    addresses = networking.list_addresses(appliance)

    # Never run here (provisioned ahead, or mistyped and confirmed): a warning.
    [finding] = diagnose(appliance, addresses, factory_serving).findings
    assert (finding.severity, finding.code) == (Severity.WARNING, FindingCode.NODE_NOT_ALIVE)
    assert "127.0.0.52 is pinned to node 'node-b', which has never run on this store" in (
        finding.message
    )
    assert "certgate ip set 127.0.0.52 --node NAME" in finding.message

    # Alive: none. Stopped: an error, nobody serves it now.
    _beat(appliance, "node-b", [_listening(PINNED_B, addresses[0].certificate_fingerprint)])
    assert diagnose(appliance, addresses, factory_serving).findings == []
    nodes.stopped(appliance, "node-b", appliance.now(), 5.0)
    [finding] = diagnose(appliance, addresses, factory_serving).findings
    assert (finding.severity, finding.code) == (Severity.ERROR, FindingCode.NODE_NOT_ALIVE)
    assert "which stopped at" in finding.message

    # Lost (its heartbeat stopped without a clean stop): the node's finding and the address's.
    _beat(appliance, "node-b")
    later = appliance.now() + dt.timedelta(minutes=1)
    appliance.clock = lambda: later
    found = {finding.code: finding for finding in diagnose(appliance, addresses, None).findings}
    assert set(found) == {FindingCode.NODE_NOT_ALIVE, FindingCode.NODE_LOST}
    assert "which is lost (last heartbeat at" in found[FindingCode.NODE_NOT_ALIVE].message
    assert found[FindingCode.NODE_NOT_ALIVE].severity is Severity.ERROR

    # Floating again: every node serves it, nothing to say about node-b's address.
    networking.set_node(appliance, PINNED_B, None)
    codes = [
        finding.code
        for finding in diagnose(appliance, networking.list_addresses(appliance), None).findings
    ]
    assert FindingCode.NODE_NOT_ALIVE not in codes


def test_the_addresses_a_store_had_before_nodes_stay_floating(
    tmp_path: Path, database_url: str | None
) -> None:
    """Migration 0011 adds the node column to a store at 0010 holding an address (floating
    after it), and goes back down and up again, on SQLite and PostgreSQL."""
    from alembic import command

    with store_at("0010", tmp_path, database_url) as (engine, config):
        command.upgrade(config, "0011")
        with engine.begin() as connection:
            rows = connection.execute(text("SELECT address, node FROM ip_addresses")).all()
            assert [tuple(row) for row in rows] == [("192.0.2.10", None)]
            connection.execute(text("UPDATE ip_addresses SET node = 'node-a'"))
        command.downgrade(config, "0010")
        with engine.begin() as connection:
            columns = connection.execute(text("SELECT * FROM ip_addresses")).keys()
            assert "node" not in columns
        command.upgrade(config, "head")


def test_the_nodes_a_store_had_before_hosts_were_recorded_have_none(
    tmp_path: Path, database_url: str | None
) -> None:
    """Migration 0014 adds the host, boot id and plain HTTP listener columns to a store at
    0013 holding a node (none: never judged as holding an address on another host), down and
    up again, on SQLite and PostgreSQL."""
    from alembic import command

    with store_at("0013", tmp_path, database_url) as (engine, config):
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO nodes (name, version, started_at, last_seen, interval, "
                    "listeners) VALUES ('node-a', '1', '2026-12-01 00:00:00+00:00', "
                    "'2026-12-01 00:00:00+00:00', 5.0, '[]')"
                )
            )
        command.upgrade(config, "0014")
        with engine.begin() as connection:
            rows = connection.execute(
                text("SELECT name, host, boot_id, http_listeners FROM nodes")
            ).all()
            assert [tuple(row) for row in rows] == [("node-a", None, None, None)]
        command.downgrade(config, "0013")
        with engine.begin() as connection:
            columns = connection.execute(text("SELECT * FROM nodes")).keys()
            assert not {"host", "boot_id", "http_listeners"} & set(columns)
        command.upgrade(config, "head")


def test_which_node_holds_a_floating_address_and_when_none_does(appliance: Appliance) -> None:
    networking.add_address(appliance, FLOATING)
    networking.add_address(appliance, PINNED_A, node="node-a", confirm=True)
    factory = networking.list_addresses(appliance)[0].certificate_fingerprint

    def beat(name: str, held: bool | None) -> None:
        floating = {**_listening(FLOATING, factory), "held": held}
        _beat(appliance, name, [floating, _listening(PINNED_A, factory)])

    here = ServeReport(
        1, [_listening(FLOATING, factory), _listening(PINNED_A, factory)], node="node-a"
    )

    def codes() -> list[FindingCode]:
        addresses = networking.list_addresses(appliance)
        return [finding.code for finding in diagnose(appliance, addresses, here).findings]

    # A failover pair: node-a holds the shared address (keepalived gave it to it), node-b
    # stands by; nothing to attend to.
    beat("node-a", True)
    beat("node-b", False)
    holds = {node.name: node.holds for node in nodes.list_nodes(appliance)}
    assert holds == {"node-a": [FLOATING], "node-b": []}
    assert codes() == []
    # Neither holds it: an error, whatever else is fine.
    beat("node-a", False)
    assert codes() == [FindingCode.NOT_HELD]
    # A heartbeat that does not say (an older node) is no evidence either way.
    beat("node-a", None)
    beat("node-b", None)
    assert codes() == []
    # Only alive nodes count: a stopped node's last word that it held it is history.
    beat("node-a", True)
    beat("node-b", False)
    nodes.stopped(appliance, "node-a", appliance.now(), 5.0)
    assert codes() == [FindingCode.NODE_NOT_ALIVE, FindingCode.NOT_HELD]
    assert {node.name: node.holds for node in nodes.list_nodes(appliance)}["node-a"] == []


def test_another_nodes_plain_http_listeners_are_in_its_heartbeat_and_judged(
    appliance: Appliance,
) -> None:
    """Another node's plain HTTP listener (ACME http-01, the redirect) that failed to bind is
    a warning naming the node; an http-01 order is placed only where some node answers."""
    networking.add_address(appliance, FLOATING)
    factory = networking.list_addresses(appliance)[0].certificate_fingerprint
    here = ServeReport(1, [_listening(FLOATING, factory)], node="node-a")

    def findings() -> list[tuple[FindingCode, str]]:
        addresses = networking.list_addresses(appliance)
        diagnosis = diagnose(appliance, addresses, here)
        return [(finding.code, finding.message) for finding in diagnosis.findings]

    def beat_b(http_state: str) -> None:
        http = {"address": FLOATING, "port": 80, "state": http_state, "fingerprint": None}
        http["error"] = "the port is taken" if http_state == "failed" else None
        listeners = [_listening(FLOATING, factory)]
        assert nodes.heartbeat(appliance, "node-b", appliance.now(), 5.0, listeners, [http])

    _beat(appliance, "node-a", [_listening(FLOATING, factory)])
    beat_b("listening")
    listed = {node.name: node for node in nodes.list_nodes(appliance)}
    assert [(item.address, item.port) for item in listed["node-b"].http_listeners] == [
        (FLOATING, 80)
    ]
    assert [item.port for item in listed["node-b"].listeners] == [8443]  # HTTPS only
    assert listed["node-a"].http_listeners == [] and findings() == []
    # This data directory's serve has no HTTP listener; node B's answers http-01.
    assert acme_orders.responder_problem(appliance, ChallengeType.HTTP_01) is None

    beat_b("failed")
    [(code, message)] = findings()
    assert code is FindingCode.HTTP_LISTENER_FAILED
    assert message == (
        f"on node 'node-b', {FLOATING} port 80 (plain HTTP: ACME http-01 challenges and the "
        "redirect to HTTPS) is not listening: the port is taken"
    )
    problem = acme_orders.responder_problem(appliance, ChallengeType.HTTP_01)
    assert problem is not None and f"cannot listen ({FLOATING} port 80: the port is" in problem
    # A stopped node's last word is history.
    nodes.stopped(appliance, "node-b", appliance.now(), 5.0)
    assert findings() == []


def test_a_floating_address_held_on_two_hosts_at_once_is_an_error(appliance: Appliance) -> None:
    """Split brain: two nodes on different hosts both hold the shared address (their
    keepalived instances cannot hear each other). Hosts are told apart by their boot id, so
    two clones with one host name count as two; two nodes of one host holding it (as in a
    test, or two serves on one machine) are no fault. (A shared address, not a loopback one:
    each host has its own.)"""
    networking.add_address(appliance, SHARED)
    factory = networking.list_addresses(appliance)[0].certificate_fingerprint
    here = ServeReport(1, [_listening(SHARED, factory)], node="node-a")

    def beat(name: str, host: tuple[str, str | None] | None) -> None:
        held = [{**_listening(SHARED, factory), "held": True}]
        assert nodes.heartbeat(appliance, name, appliance.now(), 5.0, held, host=host)

    def findings() -> list[tuple[FindingCode, Severity, str]]:
        addresses = networking.list_addresses(appliance)
        diagnosis = diagnose(appliance, addresses, here)
        return [(f.code, f.severity, f.message) for f in diagnosis.findings]

    beat("node-a", ("certgate", "boot-1"))
    beat("node-b", ("certgate", "boot-1"))
    assert findings() == []
    beat("node-b", ("certgate", "boot-2"))  # a clone: same name, another machine
    listed = {node.name: (node.host, node.boot_id) for node in nodes.list_nodes(appliance)}
    assert listed == {"node-a": ("certgate", "boot-1"), "node-b": ("certgate", "boot-2")}
    [(code, severity, message)] = findings()
    assert (code, severity) == (FindingCode.HELD_TWICE, Severity.ERROR)
    assert message.startswith(
        f"{SHARED} is floating and held on 2 hosts at once (node 'node-a' on 'certgate' "
        "(boot boot-1), node 'node-b' on 'certgate' (boot boot-2)): each client reaches either"
    )
    # Once one of them stops (or lets it go), the error ends with its next heartbeat.
    nodes.stopped(appliance, "node-b", appliance.now(), 5.0)
    assert findings() == []
    # Without a boot id, hosts are told apart by name.
    beat("node-b", ("standby", None))
    assert [code for code, _, _ in findings()] == [FindingCode.HELD_TWICE]
    # A heartbeat that names no host is this host's, with its boot id.
    beat("node-b", None)
    [node_b] = [node for node in nodes.list_nodes(appliance) if node.name == "node-b"]
    assert node_b.host == socket.gethostname()
    assert node_b.boot_id == nodes.BOOT_ID_FILE.read_text().strip()


def test_a_floating_loopback_address_every_host_holds_is_no_split_brain(
    appliance: Appliance,
) -> None:
    """'certgate init' configures 127.0.0.1 (floating): on a failover pair each host has its
    own loopback, so both nodes hold it, and no client can reach either through it from
    another host. Only a shared address held on two hosts is split brain."""
    everywhere = ["127.0.0.1", "::1", SHARED]
    for address in everywhere:
        networking.add_address(appliance, address)
    factory = networking.list_addresses(appliance)[0].certificate_fingerprint
    here = ServeReport(1, [_listening(address, factory) for address in everywhere], node="node-a")

    def beat(name: str, boot_id: str, held: list[str]) -> None:
        listeners = [
            {**_listening(address, factory), "held": address in held} for address in everywhere
        ]
        assert nodes.heartbeat(
            appliance, name, appliance.now(), 5.0, listeners, host=(name, boot_id)
        )

    def findings() -> list[tuple[FindingCode, str]]:
        diagnosis = diagnose(appliance, networking.list_addresses(appliance), here)
        return [(finding.code, finding.message) for finding in diagnosis.findings]

    beat("node-a", "boot-1", ["127.0.0.1", "::1", SHARED])
    beat("node-b", "boot-2", ["127.0.0.1", "::1"])
    assert findings() == []
    beat("node-b", "boot-2", ["127.0.0.1", "::1", SHARED])
    [(code, message)] = findings()
    assert code is FindingCode.HELD_TWICE and message.startswith(f"{SHARED} is floating")
