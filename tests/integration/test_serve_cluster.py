"""Two `certgate serve` nodes on one PostgreSQL store (separate data directories, the same
master key): what the CLI commits against node A's data directory is on node B's wire at
once, pushed by NOTIFY."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pki import fingerprint, make_chain
from tests.support.polling import eventually
from tests.support.served import handshake_succeeds, served_fingerprint, wait_until_served
from tests.support.server import (
    RunningAppliance,
    import_with_key,
    joined_node,
    run_cli,
    running_appliance,
)


@pytest.fixture
def nodes(
    tmp_path: Path, postgresql_url: str
) -> Iterator[tuple[RunningAppliance, RunningAppliance]]:
    with (
        running_appliance(tmp_path / "a", "127.0.0.2", database_url=postgresql_url) as a,
        joined_node(a, tmp_path / "b") as b,
    ):
        yield a, b


def test_a_change_made_on_node_a_is_served_by_node_b(
    nodes: tuple[RunningAppliance, RunningAppliance], tmp_path: Path
) -> None:
    a, b = nodes
    assert served_fingerprint("127.0.0.2", b.port) == served_fingerprint("127.0.0.2", a.port)
    chain = make_chain("cluster.example.test")
    site = import_with_key(a, tmp_path, chain)
    run_cli(a.data_dir, "ip", "assign", "127.0.0.2", "--cert", str(site), **a.env)
    wait_until_served("127.0.0.2", b.port, fingerprint(chain.leaf))
    run_cli(a.data_dir, "ip", "add", "127.0.0.3", **a.env)
    eventually(lambda: handshake_succeeds("127.0.0.3", b.port, timeout=1), what="B binds it")
    run_cli(a.data_dir, "ip", "assign", "127.0.0.3", "--cert", str(site), **a.env)
    wait_until_served("127.0.0.3", b.port, fingerprint(chain.leaf))
    status = json.loads(run_cli(b.data_dir, "status", "--json", **b.env).stdout)
    assert {listener["address"] for listener in status["listeners"]} == {
        "127.0.0.2",
        "127.0.0.3",
    }
