"""TLS listeners as a client sees them: which certificate and chain each address presents,
which addresses accept connections, and what the status says when one cannot."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from certgate.tls import ServedCertificate, TlsPolicy
from tests.integration._tls_helpers import (
    Pki,
    ServerThread,
    make_pki,
    plan,
)
from tests.support.ci import missing
from tests.support.net import (
    AWAY_IPV4,
    AWAY_IPV6,
    connection_refused,
    free_port,
    ipv6_loopback,
    on_this_host,
)
from tests.support.openssl import s_client
from tests.support.served import client_context, handshake

A, B = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(
        tmp_path_factory.mktemp("pki"),
        {"alpha.test": "p256", "bravo.test": "rsa", "charlie.test": "p256"},
    )


@pytest.fixture
def server() -> Iterator[ServerThread]:
    running = ServerThread()
    yield running
    running.close()


def test_each_address_presents_its_own_leaf_and_full_chain(server: ServerThread, pki: Pki) -> None:
    port = free_port()
    assignments = {A: pki["alpha.test"].served, B: pki["bravo.test"].served}
    if ipv6_loopback():
        assignments["::1"] = pki["charlie.test"].served
    statuses = server.apply(plan(port, assignments))
    assert [(s.address, s.state, s.error) for s in statuses] == [
        (address, "listening", None) for address in assignments
    ]

    context = client_context(pki.root_pem)  # trusts the root only: needs the intermediate
    for address, certificate in assignments.items():
        seen = handshake(address, port, context)
        assert seen.fingerprint == certificate.fingerprint
        assert seen.version == "TLSv1.3"

        # The openssl CLI as an independent peer: leaf subject, issuer and the whole chain.
        out = s_client(address, port, "-showcerts", "-verify_return_error", "-CAfile", pki.root_pem)
        assert out.returncode == 0, out.stdout
        name = next(n for n in pki.leaves if pki[n].fingerprint == certificate.fingerprint)
        chain = re.findall(r"^\s*(\d+) s:(.*)\n\s*i:(.*)$", out.stdout, re.MULTILINE)
        assert [(depth, s.strip(), i.strip()) for depth, s, i in chain] == [
            ("0", f"CN = {name}", f"CN = {pki.intermediate_name}"),
            ("1", f"CN = {pki.intermediate_name}", f"CN = {pki.root_name}"),
        ]
        assert out.stdout.count("-----BEGIN CERTIFICATE-----") == 2
        assert "Verify return code: 0 (ok)" in out.stdout


def test_a_changed_chain_with_the_same_leaf_is_served_on_the_next_handshake(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    alpha = pki["alpha.test"]
    server.apply(plan(port, {A: alpha.leaf_only}))
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(A, port, client_context(pki.root_pem))  # the intermediate is missing

    server.apply(plan(port, {A: alpha.served}))
    assert handshake(A, port, client_context(pki.root_pem)).fingerprint == alpha.fingerprint


def test_adding_an_address_opens_it_and_removing_it_closes_it(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    context = client_context(pki.root_pem)
    server.apply(plan(port, {A: pki["alpha.test"].served}))
    assert connection_refused(B, port)

    statuses = server.apply(plan(port, {A: pki["alpha.test"].served, B: pki["bravo.test"].served}))
    assert [s.state for s in statuses] == ["listening", "listening"]
    assert handshake(B, port, context).common_name == "bravo.test"

    # A connection established on A survives the removal of A and keeps working.
    with (
        socket.create_connection((A, port), timeout=5) as raw,
        context.wrap_socket(raw) as established,
    ):
        statuses = server.apply(plan(port, {B: pki["bravo.test"].served}))
        assert [(s.address, s.state) for s in statuses] == [(B, "listening")]
        assert connection_refused(A, port)
        established.sendall(b"still here")
        assert established.recv(100) == b"still here"
    assert handshake(B, port, context).common_name == "bravo.test"


def test_a_plan_that_changes_one_address_touches_that_listener_only(
    server: ServerThread, pki: Pki
) -> None:
    """A commit that moves one address of 1,000 must not cost the other 999 anything: their
    listeners and statuses are left as they were (the same objects)."""
    port = free_port()
    alpha, bravo, charlie = (
        pki[name].served for name in ("alpha.test", "bravo.test", "charlie.test")
    )
    before = {s.address: s for s in server.apply(plan(port, {A: alpha, B: bravo}))}
    after = {s.address: s for s in server.apply(plan(port, {A: charlie, B: bravo}))}
    assert after[B] is before[B]
    assert (after[A].state, after[A].fingerprint) == ("listening", charlie.fingerprint)
    context = client_context(pki.root_pem)
    assert handshake(A, port, context).common_name == "charlie.test"
    assert handshake(B, port, context).common_name == "bravo.test"
    # An equal certificate built again (its stamp changed, not what it serves) is no change.
    rebuilt = ServedCertificate(charlie.fingerprint, charlie.chain_pem, charlie.key_pem)
    again = {s.address: s for s in server.apply(plan(port, {A: rebuilt, B: bravo}))}
    assert all(again[address] is after[address] for address in (A, B))


def test_an_address_that_cannot_be_bound_is_reported_and_the_others_serve(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    taken = "127.0.0.4"
    with socket.socket() as squatter:
        squatter.bind((taken, port))
        squatter.listen()
        statuses = server.apply(
            plan(
                port,
                {
                    A: pki["alpha.test"].served,
                    "192.0.2.1": pki["bravo.test"].served,  # TEST-NET-1: not on this host
                    taken: pki["bravo.test"].served,
                },
            )
        )
        by_address = {s.address: s for s in statuses}
        assert by_address[A].state == "listening"
        assert by_address["192.0.2.1"].state == "failed"
        assert by_address["192.0.2.1"].fingerprint is None
        assert by_address["192.0.2.1"].error == (
            f"cannot listen on 192.0.2.1:{port}: "
            "the address 192.0.2.1 is not configured on this host"
        )
        assert by_address[taken].state == "failed"
        assert "already in use" in (by_address[taken].error or "")
        assert handshake(A, port, client_context(pki.root_pem)).common_name == "alpha.test"
        assert server.status() == statuses

    # The next apply retries: the port is free now.
    statuses = server.apply(
        plan(port, {A: pki["alpha.test"].served, taken: pki["bravo.test"].served})
    )
    assert [s.state for s in statuses] == ["listening", "listening"]
    assert handshake(taken, port, client_context(pki.root_pem)).common_name == "bravo.test"


def test_a_floating_address_another_host_holds_is_bound_with_ip_freebind(
    server: ServerThread, pki: Pki
) -> None:
    """A failover pair's shared address is bound while the other node holds it, so that
    connections are taken the moment it moves here (no rebind, no ip_nonlocal_bind)."""
    port = free_port()
    away = [AWAY_IPV4, *([AWAY_IPV6] if ipv6_loopback() else [])]
    assert not any(on_this_host(address) for address in away), "pick other test addresses"
    served = {address: pki["alpha.test"].served for address in [A, *away]}
    refused = server.apply(plan(port, served))  # pinned (no freebind): not on this host
    assert {s.address: s.state for s in refused} == {
        A: "listening",
        **{address: "failed" for address in away},
    }
    statuses = server.apply(replace(plan(port, served), freebind=frozenset(away)))
    assert [(s.address, s.state, s.error) for s in statuses] == [
        (address, "listening", None) for address in [A, *away]
    ]
    assert {s.fingerprint for s in statuses} == {pki["alpha.test"].fingerprint}
    assert handshake(A, port, client_context(pki.root_pem)).common_name == "alpha.test"


def test_a_port_taken_by_its_own_listener_is_not_blamed_on_another_program(
    server: ServerThread, pki: Pki
) -> None:
    """The same address written twice: the second bind fails on certgate's own listener."""
    if not ipv6_loopback():
        missing("no IPv6 loopback on this host")
    port = free_port()
    statuses = server.apply(
        plan(port, {"::1": pki["alpha.test"].served, "0:0::1": pki["bravo.test"].served})
    )
    by_address = {s.address: s for s in statuses}
    assert by_address["::1"].state == "listening"
    assert by_address["0:0::1"].state == "failed"
    assert by_address["0:0::1"].error == (
        f"cannot listen on [0:0::1]:{port}: the port is already taken by certgate's own "
        "listener on ::1 (the same address written another way)"
    )


def test_a_port_change_moves_every_address(server: ServerThread, pki: Pki) -> None:
    old, new = free_port(), free_port()
    assignments = {A: pki["alpha.test"].served, B: pki["bravo.test"].served}
    server.apply(plan(old, assignments))
    statuses = server.apply(plan(new, assignments))
    assert {(s.address, s.port, s.state) for s in statuses} == {
        (A, new, "listening"),
        (B, new, "listening"),
    }
    context = client_context(pki.root_pem)
    for address in assignments:
        assert connection_refused(address, old)
        handshake(address, new, context)


def test_a_certificate_that_cannot_be_loaded_leaves_the_previous_one_served(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    alpha, bravo = pki["alpha.test"], pki["bravo.test"]
    server.apply(plan(port, {A: alpha.served}))
    mismatched = ServedCertificate(bravo.fingerprint, bravo.served.chain_pem, alpha.served.key_pem)
    statuses = server.apply(plan(port, {A: mismatched, B: mismatched}))
    by_address = {s.address: s for s in statuses}
    assert by_address[A].state == "listening"
    assert by_address[A].fingerprint == alpha.fingerprint
    assert f"certificate {bravo.fingerprint[:16]} cannot be served" in (by_address[A].error or "")
    assert by_address[B].state == "failed"
    assert handshake(A, port, client_context(pki.root_pem)).fingerprint == alpha.fingerprint
    assert connection_refused(B, port)


def test_keys_stay_out_of_files_reprs_and_statuses(server: ServerThread, pki: Pki) -> None:
    alpha = pki["alpha.test"].served
    key_text = alpha.key_pem.decode()
    assert "PRIVATE KEY" not in repr(alpha)
    before = set(os.listdir("/proc/self/fd"))
    statuses = server.apply(plan(free_port(), {A: alpha, "192.0.2.1": alpha}))
    assert key_text not in repr(statuses)
    leftovers = [
        os.readlink(f"/proc/self/fd/{fd}")
        for fd in set(os.listdir("/proc/self/fd")) - before
        if Path(f"/proc/self/fd/{fd}").exists()
    ]
    assert not [link for link in leftovers if "memfd:" in link], leftovers


def test_close_stops_listening(pki: Pki) -> None:
    running = ServerThread()
    port = free_port()
    running.apply(plan(port, {A: pki["alpha.test"].served, B: pki["bravo.test"].served}))
    handshake(A, port, client_context(pki.root_pem))
    running.close()
    assert connection_refused(A, port)
    assert connection_refused(B, port)


def test_the_standard_asyncio_loop_works_too(pki: Pki) -> None:
    running = ServerThread(loop_factory=asyncio.new_event_loop)
    try:
        port = free_port()
        context = client_context(pki.root_pem)
        running.apply(plan(port, {A: pki["alpha.test"].served}))
        assert handshake(A, port, context).common_name == "alpha.test"
        running.apply(plan(port, {A: pki["bravo.test"].served}, TlsPolicy()))
        assert handshake(A, port, context).common_name == "bravo.test"
    finally:
        running.close()
    assert connection_refused(A, port)


def test_swapping_back_and_forth_leaks_no_descriptors(server: ServerThread, pki: Pki) -> None:
    port = free_port()
    alpha, bravo = pki["alpha.test"].served, pki["bravo.test"].served
    server.apply(plan(port, {A: alpha, B: bravo}))
    handshake(A, port, client_context(pki.root_pem))
    before = len(os.listdir("/proc/self/fd"))
    for n in range(50):
        server.apply(plan(port, {A: bravo, B: alpha} if n % 2 == 0 else {A: alpha, B: bravo}))
        handshake(A, port, client_context(pki.root_pem))
    assert len(os.listdir("/proc/self/fd")) <= before + 2
