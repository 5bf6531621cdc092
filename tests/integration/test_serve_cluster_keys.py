"""A master key rotated on one node of a two-node cluster (issue 12, point 5): the rotating
node's serve takes the new key at once; the other keeps serving what it had loaded, loads no
change, says why (its log, Status on both nodes, `node list`) and does not crash; once the new
key is installed there with `certgate key install`, it catches up by itself."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

from certgate.service import served_state
from certgate.store.sealing import MASTER_KEY_FILE, Sealer
from tests.support.pki import fingerprint, make_chain
from tests.support.polling import eventually
from tests.support.served import served_fingerprint, wait_until_served
from tests.support.server import (
    RunningAppliance,
    import_with_key,
    node_list,
    run_cli,
)


def findings(running: RunningAppliance) -> dict[str, str]:
    status = json.loads(run_cli(running.data_dir, "status", "--json", **running.env).stdout)
    return {finding["code"]: finding["message"] for finding in status["diagnostics"]}


def cached_addresses(running: RunningAppliance) -> set[str] | None:
    """The addresses the node's served-state.json serves, opened with its master key."""
    sealer = Sealer.from_file(running.data_dir / MASTER_KEY_FILE)
    cached = served_state.load(running.data_dir, sealer)
    return None if cached is None or cached.state.refused else set(cached.state.served)


#: One client context: Python resumes a session only with the context that made it.
CLIENT = ssl.create_default_context()
CLIENT.check_hostname = False
CLIENT.verify_mode = ssl.CERT_NONE
CLIENT.minimum_version = ssl.TLSVersion.TLSv1_3


def ticket(port: int, session: ssl.SSLSession | None = None) -> tuple[ssl.SSLSession, bool]:
    """One request to 127.0.0.2:``port`` (so that TLS 1.3 tickets arrive), offering
    ``session``: the session it leaves, and whether it resumed the one offered."""
    with (
        socket.create_connection(("127.0.0.2", port), timeout=10) as raw,
        CLIENT.wrap_socket(raw, session=session) as tls,
    ):
        tls.sendall(b"GET /api/v1/openapi.json HTTP/1.0\r\nHost: x\r\n\r\n")
        while tls.recv(65536):
            pass
        assert tls.session is not None
        return tls.session, tls.session_reused


def test_a_stale_node_keeps_serving_says_so_and_catches_up_once_the_key_is_installed(
    nodes: tuple[RunningAppliance, RunningAppliance], tmp_path: Path
) -> None:
    a, b = nodes
    factory = served_fingerprint("127.0.0.2", b.port)
    eventually(lambda: node_list(a).keys() == {"node-a", "node-b"}, what="both nodes beat")
    assert {entry["master_key_generation"] for entry in node_list(a).values()} == {1}
    # The ticket keys come from the master key: a client's ticket from A resumes on B.
    before, _ = ticket(a.port)
    assert ticket(b.port, before)[1]

    rotated = json.loads(run_cli(a.data_dir, "key", "rotate", "--json", **a.env).stdout)
    assert rotated["generation"] == 2
    eventually(
        lambda: "picked up the new master key (generation 2)" in a.log_text(),
        what="node A's serve takes the key its data directory now holds",
    )
    eventually(lambda: "stale master key" in b.log_text(), what="node B says its key is stale")
    # The old key retired, so are the ticket keys derived from it: a full handshake on A.
    assert not ticket(a.port, before)[1]
    after, _ = ticket(a.port)
    # Node A's cached state (for a start while the store is away) is sealed anew with it.
    eventually(lambda: cached_addresses(a) == {"127.0.0.2"}, what="A's cache opens with its key")

    # A change made on node A is served by A, not by B, which keeps what it had loaded.
    chain = make_chain("rotated.example.test")
    site = import_with_key(a, tmp_path, chain)
    run_cli(a.data_dir, "ip", "assign", "127.0.0.2", "--cert", str(site), "--confirm", **a.env)
    wait_until_served("127.0.0.2", a.port, fingerprint(chain.leaf))
    assert served_fingerprint("127.0.0.2", b.port) == factory
    assert b.process.poll() is None

    # Node B refuses to seal anything with its stale key, and says why on every face.
    made = run_cli(
        b.data_dir, "cert", "create", "--name", "On B", "--cn", "b.example.test",
        check=False, **b.env,
    )  # fmt: skip
    assert made.returncode == 1 and "stale master key" in made.stderr, made.stderr
    assert "certgate key install" in made.stderr
    assert "On B" not in run_cli(a.data_dir, "cert", "list", **a.env).stdout
    on_b = findings(b)
    assert "stale master key" in on_b["master-key-stale"]
    assert str(a.data_dir / MASTER_KEY_FILE) in on_b["master-key-stale"]  # where to copy from
    eventually(
        lambda: "node-master-key-stale" in findings(a), what="node A sees node B's stale key"
    )
    assert "node 'node-b'" in findings(a)["node-master-key-stale"]
    state = node_list(a)
    assert (state["node-b"]["master_key_stale"], state["node-b"]["master_key_generation"]) == (
        True,
        1,
    )
    assert (state["node-a"]["master_key_stale"], state["node-a"]["master_key_generation"]) == (
        False,
        2,
    )

    # The new key copied to node B and installed: B's serve takes it and catches up.
    copied = tmp_path / "copied.key"
    copied.write_bytes((a.data_dir / MASTER_KEY_FILE).read_bytes())
    copied.chmod(0o600)
    run_cli(b.data_dir, "key", "install", "--master-key-file", str(copied), **b.env)
    wait_until_served("127.0.0.2", b.port, fingerprint(chain.leaf))
    assert "picked up the new master key (generation 2)" in b.log_text()
    assert ticket(b.port, after)[1] and not ticket(b.port, before)[1]
    eventually(
        lambda: not {"node-master-key-stale", "master-key-stale"} & findings(a).keys(),
        what="no stale key on node A's Status",
    )
    assert "master-key-stale" not in findings(b)
    assert all(not entry["master_key_stale"] for entry in node_list(b).values())
    assert "Traceback" not in a.log_text() + b.log_text()
