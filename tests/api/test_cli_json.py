"""``certgate ... --json`` and the API give the same document for the same thing: for each API
operation with a CLI counterpart, the CLI's output is compared with the API's answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.api.client import Server, ok
from tests.api.workflows import self_signed, upload
from tests.support.openssl import OpensslCA
from tests.support.server import run_cli

#: Fields of Status > Basics that move with the clock between two reads.
_MOVING = {"uptime", "load", "running_processes", "system_time"}


def cli(server: Server, *args: str, **env: str) -> Any:
    done = run_cli(server.running.data_dir, *args, "--json", **env)
    return json.loads(done.stdout)


def one(api: httpx.Client, path: str, **match: object) -> dict[str, Any]:
    """The item of a listing that has these fields."""
    found = [
        item
        for item in ok(api.get(path))
        if all(item[name] == value for name, value in match.items())
    ]
    assert len(found) == 1, (path, match, found)
    return found[0]


def test_reading_gives_the_same_documents(primary: Server) -> None:
    with primary.client() as api:
        made = self_signed(api, "json twin", "json-twin.example.test")
        ok(api.post("/requests", json=_request_body("json-request.example.test")), 201)
        everything = ok(api.get("/certificates", params={"limit": 1000}))
        assert cli(primary, "cert", "list") == everything["items"]
        assert cli(primary, "cert", "show", str(made["id"])) == ok(
            api.get(f"/certificates/{made['id']}")
        )
        assert cli(primary, "request", "list") == ok(api.get("/requests"))
        first = ok(api.get("/requests"))[0]
        assert cli(primary, "request", "show", str(first["id"])) == first
        assert cli(primary, "ip", "list") == ok(api.get("/addresses"))
        assert cli(primary, "tls", "show") == ok(api.get("/tls"))
        assert cli(primary, "email", "show") == ok(api.get("/email"))
        assert cli(primary, "user", "list") == ok(api.get("/users"))
        assert cli(primary, "token", "list") == ok(api.get("/tokens"))
        by_cli, by_api = cli(primary, "status"), ok(api.get("/status"))
        assert by_cli.keys() == by_api.keys()
        assert {k: v for k, v in by_cli.items() if k not in _MOVING} == {
            k: v for k, v in by_api.items() if k not in _MOVING
        }


def test_changes_answer_with_the_api_document(
    primary: Server, ca: OpensslCA, tmp_path: Path
) -> None:
    with primary.client() as api:
        # cert create == POST /certificates (the same document shape, the certificate as read)
        created = cli(
            primary, "cert", "create", "--name", "json cli", "--cn", "json-cli.example.test",
            "--key", "p256",
        )  # fmt: skip
        by_api = ok(api.post("/certificates", json=_request_body("json-api.example.test")), 201)
        assert created.keys() == by_api.keys() == {"certificate", "notices"}
        number = str(created["certificate"]["id"])
        assert created["certificate"] == ok(api.get(f"/certificates/{number}"))

        renamed = cli(primary, "cert", "rename", number, "json renamed")
        assert renamed["friendly_name"] == "json renamed"
        assert renamed == ok(api.get(f"/certificates/{number}"))
        assert cli(primary, "cert", "chain", number, "--automatic") == {
            **ok(api.get(f"/certificates/{number}")),
            "notices": [],
        }

        # ip add / assign / set / remove == POST, PUT, GET /addresses (remove: 204 there)
        added = cli(primary, "ip", "add", "127.0.0.97")
        assert added == one(api, "/addresses", address="127.0.0.97")
        assigned = cli(primary, "ip", "assign", "127.0.0.97", "--cert", number)
        assert assigned == [one(api, "/addresses", address="127.0.0.97")]
        named = cli(primary, "ip", "set", "127.0.0.97", "--hostname", "cli.example.test")
        assert named == ok(api.get("/addresses/127.0.0.97"))
        assert named["hostnames"] == ["cli.example.test"]
        assert cli(primary, "ip", "remove", "127.0.0.97") == {
            "address": "127.0.0.97",
            "removed": True,
        }

        # cert delete == DELETE /certificates/{id}
        deleted_by_cli = cli(primary, "cert", "delete", number)
        other = by_api["certificate"]["id"]
        deleted_by_api = ok(api.delete(f"/certificates/{other}"))
        assert deleted_by_cli == {
            **deleted_by_api,
            "id": int(number),
            "friendly_name": "json renamed",
        }

        # cert create --request and request delete == POST /requests, DELETE /requests/{id}
        requested = cli(
            primary, "cert", "create", "--request", "--name", "json csr",
            "--cn", "json-csr.example.test", "--key", "p256",
        )  # fmt: skip
        request_id = requested["request"]["id"]
        assert requested["request"] == ok(api.get(f"/requests/{request_id}"))
        assert cli(primary, "request", "delete", str(request_id)) == {
            "id": request_id,
            "private_key_deleted": True,
        }

        # cert import == POST /imports (the same file, by the same name, twice: present)
        leaf, _ = ca.issue("json-import.example.test", ["json-import.example.test"], tmp_path)
        imported = cli(primary, "cert", "import", str(leaf))
        again = ok(upload(api, [(str(leaf), leaf.read_bytes())]))
        assert [entry["status"] for entry in again["entries"]] == ["present"]
        assert imported.keys() == again.keys() == {"entries"}
        assert [entry["status"] for entry in imported["entries"]] == ["added"]
        assert _without(imported["entries"][0], "status", "message") == _without(
            again["entries"][0], "status", "message"
        )

        # tls set == PUT /tls
        current = ok(api.get("/tls"))
        assert cli(primary, "tls", "set", "--ciphers", current["tls12_ciphers"]) == current

        # user add / password / remove == POST /users (204 for the other two)
        password = tmp_path / "password"
        password.write_text("a long enough password\n")
        user = cli(primary, "user", "add", "json-user", "--password-file", str(password))
        assert user == one(api, "/users", username="json-user")
        assert cli(primary, "user", "password", "json-user", "--password-file", str(password)) == {
            "username": "json-user",
            "password_changed": True,
        }
        assert cli(primary, "user", "remove", "json-user") == {
            "username": "json-user",
            "removed": True,
        }

        # token create / revoke == POST /tokens, DELETE /tokens/{id}
        token = cli(primary, "token", "create", "--name", "json token")
        api_token = ok(api.post("/tokens", json={"name": "json api", "role": "auditor"}), 201)
        assert token.keys() == api_token.keys()
        listed = one(api, "/tokens", id=token["id"])
        assert {k: v for k, v in token.items() if k != "token"} == listed
        revoked = cli(primary, "token", "revoke", str(token["id"]))
        assert revoked == one(api, "/tokens", id=token["id"]) and revoked["revoked"]
        assert ok(api.delete(f"/tokens/{api_token['id']}")).keys() == revoked.keys()


def _without(document: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in document.items() if name not in names}


def _request_body(host: str) -> dict[str, Any]:
    return {
        "friendly_name": host,
        "key": "p256",
        "subject": {"common_name": host},
        "subject_alternative_names": [host],
    }
