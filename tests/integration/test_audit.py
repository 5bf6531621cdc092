"""The audit trail as the CLI shows it: who (the OS user behind ``cli:``), from where, what;
every use of a private key; never a secret; and rows the database refuses to change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from certgate.errors import AuthenticationError, ValidationError
from certgate.pki.export import ExportOptions
from certgate.service import audit, auth, exports, networking, users
from certgate.service.appliance import Appliance
from certgate.store.models import AuditEventRow
from tests.integration.conftest import Certgate

OS_USER = auth.cli_principal().username.removeprefix("cli:")
PASSWORD = "correct horse battery staple 17"
PASSPHRASE = "export passphrase never logged 42"


def events(certgate: Certgate, *args: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = certgate.json("audit", "list", *args)["events"]
    return found


def secret_file(tmp_path: Path, secret: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(secret + "\n")
    return path


def test_a_cli_change_names_the_os_user_from_the_cli(certgate: Certgate) -> None:
    certgate("ip", "add", "127.0.0.77")

    [added] = events(certgate, "--action", "address.add")
    assert added["actor"] == f"cli:{OS_USER}"
    assert added["source"] == "cli"
    assert added["target"] == "127.0.0.77"
    # init (run by the same OS user) is recorded the same way, never as "system"
    [init] = events(certgate, "--action", "appliance.init")
    assert init["actor"] == f"cli:{OS_USER}" and init["source"] == "cli"
    assert "certgate Appliance" in init["target"]


def test_a_key_export_and_an_assignment_are_key_uses_and_no_secret_is_recorded(
    certgate: Certgate, tmp_path: Path
) -> None:
    created = certgate.json("cert", "create", "--name", "vpn gateway", "--cn", "vpn.example.test")
    ref = str(created["certificate"]["id"])
    certgate("user", "add", "carol", "--role", "auditor", "--password-file",
             secret_file(tmp_path, PASSWORD, "password.txt"))  # fmt: skip
    token = certgate("token", "create", "--name", "deployer", "--role", "admin").stdout
    certgate(
        "cert", "export", ref, "--key", "--passphrase-file",
        secret_file(tmp_path, PASSPHRASE, "passphrase.txt"), "-o", tmp_path / "out.p12",
    )  # fmt: skip
    certgate("ip", "add", "127.0.0.78")
    certgate("ip", "assign", "127.0.0.78", "--cert", ref)

    [export] = events(certgate, "--action", "key.export")
    assert export["actor"] == f"cli:{OS_USER}" and export["source"] == "cli"
    assert (
        "vpn gateway" in export["target"]
        and created["certificate"]["fingerprint_sha256"] in export["detail"]
    )
    [served] = events(certgate, "--action", "key.serve")
    assert "vpn gateway" in served["target"] and "127.0.0.78" in served["detail"]
    assert {e["action"] for e in events(certgate, "--action", "key.")} == {
        "key.export",
        "key.serve",
    }
    certgate("cert", "delete", ref, "--reassign-to-factory")
    [deleted] = events(certgate, "--action", "certificate.delete")
    assert deleted["target"] == f"vpn gateway ({created['certificate']['fingerprint_sha256']})"
    # Handing the address to the factory certificate changes the root its clients see: the
    # hand-over is the confirmation, and the record says what was confirmed.
    assert deleted["detail"] == (
        "its private key too; 127.0.0.78 now served by the factory certificate"
        "; confirmed despite: 127.0.0.78 root-change"
    )
    [user] = events(certgate, "--action", "user.create", "--target", "carol")
    assert user["detail"] == "role auditor"

    everything = certgate("audit", "list", "--limit", "1000", "--json").stdout
    raw = (certgate.data_dir / "certgate.db").read_bytes()
    token_value = next(word for word in token.split() if word.startswith("cgt_"))
    for secret in (PASSWORD, PASSPHRASE, token_value):
        assert secret not in everything
        assert secret.encode() not in raw


def test_filters_and_pages(certgate: Certgate) -> None:
    for last in range(80, 85):
        certgate("ip", "add", f"127.0.0.{last}")

    newest_two = certgate.json("audit", "list", "--action", "address.add", "--limit", "2")
    assert [e["target"] for e in newest_two["events"]] == ["127.0.0.84", "127.0.0.83"]
    rest = events(certgate, "--action", "address.add", "--before", str(newest_two["older"]))
    assert [e["target"] for e in rest] == ["127.0.0.82", "127.0.0.81", "127.0.0.80"]
    assert events(certgate, "--target", "0.0.82") == [rest[0]]
    assert events(certgate, "--actor", "CLI:") != []
    assert events(certgate, "--actor", "nobody") == []
    assert events(certgate, "--since", "1h", "--action", "address.") == newest_two["events"] + rest
    assert events(certgate, "--until", "2000-01-01") == []

    table = certgate("audit", "list", "--action", "address.add", "--limit", "2").stdout
    assert "127.0.0.84" in table and f"cli:{OS_USER}" in table and "--before" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "is not a time"),
        (("--action", "certificate.explode"), "unknown action"),
        (("--limit", "0"), "0"),
        (("--since", "999999w"), "is not a time"),
        (("--until", "0001-01-01T00:00+05:00"), "is not a time"),
        (("--target", "esc\x1b[2J"), "control characters"),
        (("--before", str(2**64)), "--before"),
    ],
)
def test_bad_filters_are_refused_clearly(
    certgate: Certgate, args: tuple[str, ...], message: str
) -> None:
    run = certgate("audit", "list", *args, expect=None)
    assert run.returncode != 0 and message in run.stderr


def test_who_and_what_match_any_part_whatever_the_case_of_any_letter(
    appliance: Appliance,
) -> None:
    """SQLite's lower() folds only A-Z: "Ärzte" as typed was lowered to "ärzte" and found no
    event named "Ärzte"."""
    auth.create_token(appliance, "Ärzte-Portal Überwachung", "auditor")
    for typed in ("Ärzte", "ärzte", "ÜBERWACHUNG", "portal üb"):
        wanted = audit.wanted_events(appliance.now(), target=typed)
        found = audit.list_events(appliance, wanted).events
        assert [event.target for event in found] == ["Ärzte-Portal Überwachung"], typed


def test_the_database_refuses_to_change_or_remove_an_event(appliance: Appliance) -> None:
    networking.add_address(appliance, "127.0.0.90", audit.Actor("admin", "192.0.2.1"))
    assert audit.list_events(appliance, audit.AuditFilter(action="address.add")).events
    for statement in (
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
    ):
        with (
            pytest.raises(DBAPIError, match="append-only"),
            appliance.store.engine.begin() as connection,
        ):
            connection.execute(text(statement))
    [kept] = audit.list_events(appliance, audit.AuditFilter(action="address.add")).events
    assert kept.actor == "admin" and kept.source == "192.0.2.1"
    with appliance.store.transaction() as repository:
        row = repository.session.get(AuditEventRow, kept.id)
        assert row is not None
        with pytest.raises(TypeError, match="append-only"):
            repository.delete(row)


def test_recording_an_event_does_not_change_the_served_revision(appliance: Appliance) -> None:
    users.create_user(appliance, "dora", PASSWORD, "admin")
    before = appliance.store.revision()
    exports.export_certificate(
        appliance,
        1,
        ExportOptions(include_private_key=True, passphrase=PASSPHRASE.encode()),
        audit.Actor("dora", "192.0.2.7"),
    )
    assert appliance.store.revision() == before
    [export] = audit.list_events(appliance, audit.AuditFilter(action="key.export")).events
    assert export.actor == "dora" and export.source == "192.0.2.7"


@pytest.mark.parametrize("text_", ["nul\x00byte", "lone \ud800 surrogate"])
def test_filter_text_a_database_would_refuse_is_a_clear_error(
    appliance: Appliance, text_: str
) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        audit.wanted_events(appliance.now(), target=text_)
    found = audit.list_events(appliance, audit.wanted_events(appliance.now(), target="nul"))
    assert found.events == []


def test_a_failed_login_names_only_an_account_that_exists(appliance: Appliance) -> None:
    throttle = auth.LoginThrottle()
    typed_as_username = "my secret password typed in the wrong field"
    for username in ("admin", typed_as_username):
        with pytest.raises(AuthenticationError):
            auth.login(appliance, username, "wrong", "192.0.2.5", throttle)
    failed = audit.list_events(appliance, audit.AuditFilter(action="session.login-failed"))
    assert [(e.actor, e.source, e.target) for e in failed.events] == [
        ("unknown user", "192.0.2.5", "unknown user"),
        ("admin", "192.0.2.5", "admin"),
    ]
    everything = audit.list_events(appliance, audit.AuditFilter(), audit.MAX_LIMIT)
    assert typed_as_username not in str(everything)


def test_assigning_one_certificate_to_two_addresses_is_one_event(certgate: Certgate) -> None:
    created = certgate.json("cert", "create", "--name", "two doors", "--cn", "doors.example.test")
    certgate("ip", "add", "127.0.0.78")
    certgate("ip", "add", "127.0.0.79")
    certgate(
        "ip", "assign", "127.0.0.78", "127.0.0.79", "--cert", str(created["certificate"]["id"])
    )

    [assigned] = events(certgate, "--action", "address.assign")
    assert assigned["detail"] == "127.0.0.78, 127.0.0.79"
    assert len(events(certgate, "--action", "key.serve")) == 1
