"""SSL Configuration, Status > Basics, Users and Networking through the API."""

from __future__ import annotations

import socket
import ssl

import pytest

from certgate.service import auth
from tests.api.client import Server, ok, problem
from tests.support.polling import eventually
from tests.support.served import client_context, handshake_succeeds


def _handshake_with(server: Server, version: ssl.TLSVersion) -> bool:
    return handshake_succeeds(server.address, server.port, client_context(version=version))


def test_tls_settings_reach_the_listeners(primary: Server) -> None:
    with primary.client() as api:
        before = ok(api.get("/tls"))
        assert before["minimum_version"] == "1.2" and before["maximum_version"] == "1.3"
        try:
            changed = ok(api.put("/tls", json={"minimum_version": "1.3"}))
            assert changed == {**before, "minimum_version": "1.3"}
            eventually(
                lambda: not _handshake_with(primary, ssl.TLSVersion.TLSv1_2),
                what="TLS 1.2 is refused",
            )
            assert _handshake_with(primary, ssl.TLSVersion.TLSv1_3)
        finally:
            ok(api.put("/tls", json={"minimum_version": before["minimum_version"]}))
        eventually(lambda: _handshake_with(primary, ssl.TLSVersion.TLSv1_2), what="TLS 1.2 is back")
        assert ok(api.get("/tls")) == before
        found = problem(
            api.put("/tls", json={"tls12_ciphers": "NO-SUCH-CIPHER"}), 422, "validation"
        )
        assert found["field"] == "tls12_ciphers"


def test_a_tls_change_that_changes_nothing_records_no_change(primary: Server) -> None:
    """'certgate tls set' with no option is refused; the API's PUT of no field rewrote the
    settings all the same and recorded a TLS settings change with nothing in it."""
    with primary.client() as api:
        before = ok(api.get("/tls"))
        recorded = ok(api.get("/audit", params={"action": "tls.update"}))["events"]

        assert ok(api.put("/tls", json={})) == before

        assert ok(api.get("/audit", params={"action": "tls.update"}))["events"] == recorded


def test_tls_profile_settings_are_checked_and_kept(primary: Server) -> None:
    with primary.client() as api:
        before = ok(api.get("/tls"))
        assert before["groups"] == "X25519:P-256:P-384" and before["send_root"] is False
        try:
            changed = ok(api.put("/tls", json={"groups": "X25519:X448", "send_root": True}))
            assert changed == {**before, "groups": "X25519:X448", "send_root": True}
        finally:
            ok(api.put("/tls", json={"groups": before["groups"], "send_root": False}))
        found = problem(api.put("/tls", json={"groups": "X25519:NOPE"}), 422, "validation")
        assert found["field"] == "groups"
        weak = problem(api.put("/tls", json={"tls12_ciphers": "aNULL"}), 422, "validation")
        assert "does not authenticate the server" in weak["detail"]


def _half_request_is_let_go(server: Server, within: float) -> bool:
    """A client that sends half a request header is closed within ``within`` seconds."""
    with (
        socket.create_connection((server.address, server.port), timeout=within) as raw,
        client_context().wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\n")
        try:
            return tls.recv(100) == b""
        except TimeoutError:
            return False
        except OSError:
            return True


def test_deadlines_are_settings_that_reach_the_connections(primary: Server) -> None:
    with primary.client() as api:
        before = ok(api.get("/tls"))
        assert (before["header_timeout"], before["send_timeout"]) == (60, 60)
        assert (before["keepalive_timeout"], before["shutdown_grace"]) == (75, 10)
        try:
            changed = ok(api.put("/tls", json={"header_timeout": 0.5}))
            assert changed == {**before, "header_timeout": 0.5}
            eventually(lambda: _half_request_is_let_go(primary, 5), what="a half request is let go")
        finally:
            ok(api.put("/tls", json={"header_timeout": before["header_timeout"]}))
        for field, value in (("send_timeout", 0), ("shutdown_grace", -1), ("body_timeout", 1e9)):
            found = problem(api.put("/tls", json={field: value}), 422, "validation")
            assert found["field"] == field
        assert ok(api.get("/tls")) == before


def test_status_shows_the_listeners(primary: Server) -> None:
    with primary.client() as api:
        status = ok(api.get("/status"))
    assert status["serial_number"] and status["guid"] and status["software_version"]
    listening = [
        listener
        for listener in status["listeners"] or []
        if listener["address"] == primary.address and listener["state"] == "listening"
    ]
    assert listening and listening[0]["port"] == primary.running.port
    # Diagnostic Status: "Healthy" exactly when nothing needs attention, else each finding.
    assert (status["diagnostic_status"] == "Healthy") == (status["diagnostics"] == [])
    assert all(
        f["severity"] in ("error", "warning") and f["message"] for f in status["diagnostics"]
    )
    assert status["firmware_version"] and status["service_pack"].startswith("Python ")


def test_users(primary: Server) -> None:
    first, second = "first password 1", "second password 2"
    with primary.client() as api:
        created = ok(
            api.post("/users", json={"username": "carol", "password": first, "role": "auditor"}),
            201,
        )
        assert created["role"] == "auditor" and created["last_login_at"] is None
        assert "carol" in [user["username"] for user in ok(api.get("/users"))]
        problem(
            api.post("/users", json={"username": "carol", "password": first, "role": "admin"}),
            409,
            "conflict",
        )
        ok(api.put("/users/carol/password", json={"password": second}), 204)
        app = primary.service()
        try:
            with pytest.raises(auth.AuthenticationError):
                auth.login(app, "carol", first, "tests", auth.LoginThrottle())
            assert auth.login(
                app, "carol", second, "tests", auth.LoginThrottle()
            ).principal.role == ("auditor")
        finally:
            app.close()
        ok(api.delete("/users/carol"), 204)
        assert "carol" not in [user["username"] for user in ok(api.get("/users"))]
        problem(api.delete("/users/carol"), 404, "not-found")


def test_every_user_changes_their_own_password_with_the_current_one(primary: Server) -> None:
    first, second = "first password 1", "second password 2"
    with primary.client() as api:
        ok(api.post("/users", json={"username": "dora", "password": first, "role": "auditor"}), 201)
        wrong = problem(
            api.put("/me/password", json={"current_password": first, "password": second}),
            403,
            "forbidden",
        )
        assert "an API token has no password" in wrong["detail"]
    session = primary.login("dora", first)
    with primary.browser(session) as dora:
        refused = problem(
            dora.put("/me/password", json={"current_password": "guess 123456", "password": second}),
            422,
            "validation",
        )
        assert refused["field"] == "current_password"
        assert refused["detail"] == "current password: is not your current password"
        short = problem(
            dora.put("/me/password", json={"current_password": first, "password": "short"}),
            422,
            "validation",
        )
        assert short["field"] == "password"
        ok(dora.put("/me/password", json={"current_password": first, "password": second}), 204)
        problem(dora.get("/me"), 401, "unauthenticated")  # every session of hers ended
    assert primary.login("dora", second).principal.username == "dora"
    with pytest.raises(auth.AuthenticationError):
        primary.login("dora", first)
    with primary.client() as api:
        ok(api.delete("/users/dora"), 204)


def test_ip_addresses(primary: Server) -> None:
    with primary.client() as api:
        added = ok(api.post("/addresses", json={"address": "2001:db8::5"}), 201)
        assert added["address"] == "2001:db8::5" and added["is_factory_certificate"]
        listed = {a["address"]: a for a in ok(api.get("/addresses"))}
        assert primary.address in listed and "2001:db8::5" in listed
        ok(api.delete("/addresses/2001:db8::5"), 204)
        assert "2001:db8::5" not in {a["address"] for a in ok(api.get("/addresses"))}
