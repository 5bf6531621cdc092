"""Email Configuration through the API: the settings (the password written, never read back),
Send Test Email against a real relay (STARTTLS, AUTH, the relay's CA bundle), and a failure
as a 502 problem quoting the relay."""

from __future__ import annotations

from tests.api.client import Server, ok, problem
from tests.support.smtp import smtp_relay

PASSWORD = "api relay password 7"


def test_email_settings_and_send_test_email(primary: Server) -> None:
    with primary.client() as api:
        with smtp_relay("starttls", users={"mailer": PASSWORD}) as relay:
            settings = {
                "host": "127.0.0.1",
                "port": relay.port,
                "security": "starttls",
                "ca_bundle": relay.ca_pem.decode(),
                "from_address": "appliance@example.com",
                "to_addresses": ["ops@example.com"],
                "username": "mailer",
                "password": PASSWORD,
            }
            answer = api.put("/email", json=settings)
            saved = ok(answer)
            assert PASSWORD not in answer.text and "password" not in saved
            assert saved["password_set"] is True and saved["configured"] is True
            assert saved["notice_days"] == [30, 14, 7, 1, 0]
            assert ok(api.get("/email")) == saved

            sent = ok(api.post("/email/test"))
            assert sent == {"relay": f"127.0.0.1:{relay.port}", "recipients": ["ops@example.com"]}
            [mail] = relay.messages
            assert mail["To"] == "ops@example.com" and relay.logins == ["mailer"]

            ok(api.put("/email", json={"password": "wrong"}))
            failed = problem(api.post("/email/test"), 502, "mail")
            assert "535 5.7.8 Authentication credentials invalid" in failed["detail"]
            assert "wrong" not in failed["detail"].replace("credentials", "")

        wrong = problem(
            api.put("/email", json={"to_addresses": ["ok@example.com", "not an address"]}),
            422,
            "validation",
        )
        assert wrong["field"] == "to_addresses[1]"
        cleared = ok(api.put("/email", json={"username": ""}))
        assert cleared["username"] is None and cleared["password_set"] is False


def test_a_username_or_password_smtplib_cannot_send_is_refused(primary: Server) -> None:
    relay: dict[str, object] = {"host": "127.0.0.1", "security": "tls"}
    relay |= {"from_address": "me@example.com", "to_addresses": ["ok@example.com"]}
    with primary.client() as api:
        for field, value in (("username", "mäiler"), ("password", "pässwörd")):
            login = {"username": "mailer", field: value}
            refused = problem(api.put("/email", json={**relay, **login}), 422, "validation")
            assert refused["field"] == field and "must be ASCII" in refused["detail"]
            assert value not in refused["detail"]


def test_the_stored_password_is_not_redirected_to_another_relay(primary: Server) -> None:
    with primary.client() as api:
        settings = {
            "host": "127.0.0.1",
            "security": "tls",
            "from_address": "appliance@example.com",
            "to_addresses": ["ops@example.com"],
            "username": "mailer",
            "password": PASSWORD,
        }
        assert ok(api.put("/email", json=settings))["password_set"] is True
        clear = problem(api.put("/email", json={"security": "none"}), 422, "validation")
        assert clear["field"] == "security" and "in clear" in clear["detail"]
        assert ok(api.get("/email"))["password_set"] is True
        moved = ok(api.put("/email", json={"host": "relay.attacker.example"}))
        assert moved["password_set"] is False
        assert moved["notices"] == [
            "the stored SMTP password was removed: the relay changed (host); give it again"
        ]
        ok(api.put("/email", json={"username": ""}))


def test_the_page_moves_a_default_port_it_shows_to_the_new_security(primary: Server) -> None:
    """The page posts every field: the port as it showed it (587) beside Implicit TLS is
    the port following the security, as on the API, not 587 kept for TLS."""
    with primary.client() as api:
        shown = ok(
            api.put(
                "/email",
                json={
                    "host": "relay.example.com",
                    "port": 587,
                    "security": "starttls",
                    "from_address": "appliance@example.com",
                    "to_addresses": ["ops@example.com"],
                },
            )
        )
    session = primary.login()
    form = {
        "csrf_token": session.principal.csrf_token,
        **{name: str(shown[name]) for name in ("host", "port", "from_address")},
        "security": "tls",
        "verify_certificate": "on",
        "ca_bundle": "",
        "to_addresses": "ops@example.com",
        "username": "",
        "password": "",
        "notice_days": "30, 14, 7, 1, 0",
    }
    with primary.pages(session) as pages:
        assert pages.post("/security/email", data=form).status_code == 303
        with primary.client() as api:
            assert ok(api.get("/email"))["port"] == 465
        form |= {"port": "2525", "security": "starttls"}  # a port typed is kept
        assert pages.post("/security/email", data=form).status_code == 303
        with primary.client() as api:
            assert ok(api.get("/email"))["port"] == 2525


def test_an_email_change_that_changes_nothing_records_no_change(primary: Server) -> None:
    """A PUT of no field (as 'certgate email set' with no option) rewrote the settings and
    recorded an email settings change with nothing in it."""
    with primary.client() as api:
        settings = {"host": "relay.example.com", "from_address": "appliance@example.com"}
        before = ok(api.put("/email", json={**settings, "to_addresses": ["ops@example.com"]}))
        recorded = ok(api.get("/audit", params={"action": "email.update"}))["events"]

        assert ok(api.put("/email", json={})) == before

        assert ok(api.get("/audit", params={"action": "email.update"}))["events"] == recorded
