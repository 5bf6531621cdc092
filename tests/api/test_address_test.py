"""``POST /addresses/{address}/test``: the same document as ``certgate ip test --json``; a
result, not an error, when nothing listens; problems for what the caller got wrong."""

from __future__ import annotations

import json

from tests.api.client import Server, ok, problem
from tests.support.net import free_port
from tests.support.server import run_cli


def test_the_api_and_the_cli_give_the_same_test(primary: Server) -> None:
    with primary.client() as api:
        answer = ok(api.post(f"/addresses/{primary.address}/test", json={"hostname": "localhost"}))
        done = run_cli(
            primary.running.data_dir, "ip", "test", primary.address, "--hostname", "localhost",
            "--json",
        )  # fmt: skip
        assert json.loads(done.stdout) == answer
        [result] = answer["results"]
        assert result["server_name"] == "localhost" and result["connected"]
        assert answer["port"] == primary.port

        everything = ok(api.post(f"/addresses/{primary.address}/test"))  # no body: each name
        assert everything["results"] and all(r["connected"] for r in everything["results"])


def test_nothing_listening_and_bad_input(primary: Server) -> None:
    with primary.client() as api:
        port = free_port()
        answer = ok(api.post(f"/addresses/{primary.address}/test", json={"port": port}))
        assert [r["connected"] for r in answer["results"]] == [False] * len(answer["results"])
        assert "nothing is listening" in answer["results"][0]["error"]
        problem(api.post("/addresses/127.0.0.250/test"), 404, "not-found")
        bad = problem(
            api.post(f"/addresses/{primary.address}/test", json={"hostname": "bad host"}),
            422,
            "validation",
        )
        assert "hostname" in json.dumps(bad)
