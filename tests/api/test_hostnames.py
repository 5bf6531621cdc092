"""Hostnames of an address through the API (issue 10, point 5): ``hostnames`` on create,
``PATCH /addresses/{address}`` to replace them, the ``hostname-not-covered`` warning of the
certificate that secures the address, and the address test connecting with each as SNI."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.client import Server, mint_token, ok, problem
from tests.support.server import run_cli

ADDRESS = "127.0.0.41"


def _warned(api: httpx.Client, certificate: int) -> list[str]:
    codes = [w["code"] for w in ok(api.get(f"/certificates/{certificate}"))["warnings"]]
    listed = ok(api.get("/certificates", params={"warning": "hostname-not-covered"}))
    items = listed["items"] if isinstance(listed, dict) else listed
    assert (certificate in [item["id"] for item in items]) == ("hostname-not-covered" in codes)
    return [code for code in codes if code == "hostname-not-covered"]


@pytest.fixture
def api(primary: Server) -> Iterator[httpx.Client]:
    """An administrator's client; the address it adds is removed afterwards, and the
    hostnames it gives the primary's own address are cleared (the server is shared)."""
    with primary.client() as client:
        try:
            yield client
        finally:
            client.delete(f"/addresses/{ADDRESS}")
            ok(client.patch(f"/addresses/{primary.address}", json={"hostnames": []}))


def test_create_show_change_and_clear_hostnames(primary: Server, api: httpx.Client) -> None:
    refused = problem(
        api.post(
            "/addresses", json={"address": ADDRESS, "hostnames": ["a.example.test", "*.x.test"]}
        ),
        422,
        "validation",
    )
    assert "wildcard" in refused["detail"]
    assert "hostnames[1]" in json.dumps(refused)
    problem(api.get(f"/addresses/{ADDRESS}"), 404, "not-found")  # nothing was added

    created = ok(
        api.post("/addresses", json={"address": ADDRESS, "hostnames": ["Portal.Example.test"]}),
        201,
    )
    assert created["hostnames"] == ["portal.example.test"]
    assert created["hostnames_not_covered"] == ["portal.example.test"]  # the factory cert
    assert ok(api.get(f"/addresses/{ADDRESS}")) == created
    assert created in ok(api.get("/addresses"))
    factory = created["certificate_id"]
    assert _warned(api, factory) == ["hostname-not-covered"]

    unchanged = ok(api.patch(f"/addresses/{ADDRESS}", json={}))
    assert unchanged == created
    for wrong in (["192.0.2.1"], ["bad host"], [f"h{n}.test" for n in range(21)]):
        problem(api.patch(f"/addresses/{ADDRESS}", json={"hostnames": wrong}), 422, "validation")
    assert ok(api.get(f"/addresses/{ADDRESS}"))["hostnames"] == ["portal.example.test"]

    cleared = ok(api.patch(f"/addresses/{ADDRESS}", json={"hostnames": []}))
    assert cleared["hostnames"] == cleared["hostnames_not_covered"] == []
    assert _warned(api, factory) == []
    problem(api.patch("/addresses/127.0.0.250", json={"hostnames": []}), 404, "not-found")

    auditor = mint_token(primary.running.data_dir, "hostnames-auditor", "auditor")
    with primary.client(auditor) as reader:
        assert ok(reader.get(f"/addresses/{ADDRESS}"))["hostnames"] == []
        problem(
            reader.patch(f"/addresses/{ADDRESS}", json={"hostnames": ["a.test"]}), 403, "forbidden"
        )


def test_a_covering_certificate_has_no_warning_and_the_test_uses_the_hostnames(
    primary: Server, api: httpx.Client
) -> None:
    created = ok(
        api.post(
            "/certificates",
            json={
                "friendly_name": "hostnames api",
                "subject": {"common_name": "api.example.test"},
                "subject_alternative_names": ["api.example.test", "*.cdn.example.test"],
            },
        ),
        201,
    )
    site = created["certificate"]["id"]
    before = ok(api.get(f"/addresses/{primary.address}"))["certificate_id"]
    ok(api.put(f"/addresses/{primary.address}", json={"certificate": site, "confirm": True}))
    try:
        names = ["api.example.test", "img.cdn.example.test"]
        changed = ok(api.patch(f"/addresses/{primary.address}", json={"hostnames": names}))
        assert changed["hostnames_not_covered"] == []
        assert _warned(api, site) == []

        # one label too many for the wildcard
        names.append("a.b.cdn.example.test")
        changed = ok(api.patch(f"/addresses/{primary.address}", json={"hostnames": names}))
        assert changed["hostnames_not_covered"] == ["a.b.cdn.example.test"]
        assert _warned(api, site) == ["hostname-not-covered"]
        [message] = [
            w["message"]
            for w in ok(api.get(f"/certificates/{site}"))["warnings"]
            if w["code"] == "hostname-not-covered"
        ]
        assert f"a.b.cdn.example.test ({primary.address})" in message

        # The address test: with no hostname given, each stored hostname is the SNI.
        report = ok(api.post(f"/addresses/{primary.address}/test"))
        results = {r["server_name"]: r for r in report["results"]}
        assert list(results) == names
        assert results["img.cdn.example.test"]["name_covered"] is True
        assert results["a.b.cdn.example.test"]["name_covered"] is False
        cli = run_cli(
            primary.running.data_dir, "ip", "test", primary.address, "--json",
            **primary.running.env,
        )  # fmt: skip
        assert [r["server_name"] for r in json.loads(cli.stdout)["results"]] == names

        # The support package lists the hostnames with each address.
        package = api.get("/support-package")
        with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
            addresses: list[dict[str, Any]] = json.loads(archive.read("addresses.json"))
        [entry] = [a for a in addresses if a["address"] == primary.address]
        assert entry["hostnames"] == names
    finally:
        restore = {"certificate": before, "confirm": True}
        ok(api.put(f"/addresses/{primary.address}", json=restore))


def test_the_cli_gives_the_api_document(primary: Server, api: httpx.Client) -> None:
    done = run_cli(
        primary.running.data_dir, "ip", "set", primary.address, "--hostname", "cli.example.test",
        "--json", **primary.running.env,
    )  # fmt: skip
    assert json.loads(done.stdout) == ok(api.get(f"/addresses/{primary.address}"))


def test_the_networking_page_form_changes_hostnames(primary: Server, api: httpx.Client) -> None:
    session = primary.login()
    csrf = str(session.principal.csrf_token)
    with primary.pages(session) as pages:
        refused = pages.post(
            "/networking/hostnames",
            data={"csrf_token": csrf, "address": primary.address, "hostnames": "ok.test, *.x.test"},
        )
        assert refused.status_code == 422
        assert "is a wildcard" in refused.text and 'aria-invalid="true"' in refused.text
        assert "ok.test, *.x.test" in refused.text  # kept as typed, beside its input
        assert ok(api.get(f"/addresses/{primary.address}"))["hostnames"] == []

        saved = pages.post(
            "/networking/hostnames",
            data={"csrf_token": csrf, "address": primary.address, "hostnames": "a.test b.test,"},
        )
        assert saved.status_code == 303
        page = pages.get("/networking")
        assert f"Hostnames of {primary.address} saved: a.test, b.test." in page.text
        assert "does not cover a.test, b.test" in page.text
        assert page.text.count("not covered</span>") == 2
    assert ok(api.get(f"/addresses/{primary.address}"))["hostnames"] == ["a.test", "b.test"]
