"""Hot swap under load: while 32 clients handshake in a loop, the assignment of one address
flips between two certificates 100 times. No handshake may fail, and once ``apply()`` has
returned every handshake started afterwards must present the new certificate: a probe right
after every fifth swap, and every loaded handshake that fell between two swaps, are checked."""

from __future__ import annotations

import bisect
import multiprocessing
import time
from dataclasses import dataclass

import pytest

from certgate.tls import TlsPolicy
from tests.integration._tls_helpers import (
    Pki,
    Record,
    ServerThread,
    load_clients,
    make_pki,
    plan,
)
from tests.support.net import free_port
from tests.support.served import client_context, handshake

A, B = "127.0.0.2", "127.0.0.3"
PROCESSES, THREADS = 4, 8  # 32 handshakes in flight
SWAPS = 100


@dataclass(frozen=True)
class Swap:
    called: float
    returned: float
    fingerprint: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(
        tmp_path_factory.mktemp("pki"),
        {"old.test": "p256", "new.test": "rsa", "other.test": "p256"},
    )


def test_flipping_an_assignment_under_load_drops_nothing_and_takes_effect_at_once(
    pki: Pki,
) -> None:
    old, new, other = pki["old.test"], pki["new.test"], pki["other.test"]
    server = ServerThread()
    port = free_port()
    policies = [TlsPolicy(), TlsPolicy(tls12_ciphers="ECDHE+AESGCM")]
    server.apply(plan(port, {A: old.served, B: other.served}))
    context = client_context(pki.root_pem)

    spawn = multiprocessing.get_context("spawn")  # never fork a process with a running loop
    stop, results = spawn.Event(), spawn.Queue()
    # Three processes load the flipping address, one loads a neighbour that must not change.
    clients = [
        spawn.Process(
            target=load_clients,
            args=(B if n == 0 else A, port, str(pki.root_pem), THREADS, stop, results),
        )
        for n in range(PROCESSES)
    ]
    swaps = [Swap(0.0, time.monotonic(), old.fingerprint)]
    records: list[Record] = []
    try:
        for process in clients:
            process.start()
        time.sleep(1.0)  # let every client process start its loops
        for n in range(SWAPS):
            target = new if n % 2 == 0 else old
            policy = policies[(n // 10) % 2]  # the policy changes every ten swaps as well
            called = time.monotonic()
            statuses = server.apply(plan(port, {A: target.served, B: other.served}, policy))
            swaps.append(Swap(called, time.monotonic(), target.fingerprint))
            assert [s.fingerprint for s in statuses] == [target.fingerprint, other.fingerprint]
            if n % 5 == 0:
                # A probe that starts now, amid the load, must get the new certificate.
                assert handshake(A, port, context).fingerprint == target.fingerprint
            else:
                time.sleep(0.01)
        time.sleep(0.1)
    finally:
        stop.set()
        for _ in clients:
            records.extend(results.get(timeout=60))
        for process in clients:
            process.join(30)
        server.close()

    failures = [r for r in records if r[4]]
    assert failures == []
    assert all(r[3] == other.fingerprint for r in records if r[0] == B)

    # A handshake that started after apply() number i returned and finished before number
    # i+1 was called must show certificate i; one overlapping a call may show either.
    returned = [swap.returned for swap in swaps]
    checked = 0
    flipping = [r for r in records if r[0] == A]
    for _address, started, finished, fingerprint, _error in flipping:
        i = bisect.bisect_right(returned, started) - 1
        following = swaps[i + 1].called if i + 1 < len(swaps) else float("inf")
        if i >= 0 and finished < following:
            assert fingerprint == swaps[i].fingerprint, (i, started, finished)
            checked += 1
    print(f"{len(records)} handshakes under load, {checked} of them inside one quiet window")
    # The load was real: hundreds of handshakes beside 40 swaps (145 under ASan on a busy
    # two-core machine, ~1,000 unloaded; a count, not a speed, so a slow run still passes).
    assert len(flipping) >= 100
    assert checked >= 10
    assert {r[3] for r in flipping} == {old.fingerprint, new.fingerprint}
