"""One row a bad day damaged (a failing disk, a hand edit): what uses it says so, naming
it, and changes nothing; everything else goes on."""

from __future__ import annotations

import json
import signal
import sqlite3
import zipfile
from contextlib import closing
from pathlib import Path

import pytest

from tests.api.client import Server, mint_token, problem
from tests.integration.conftest import Certgate
from tests.support.polling import eventually
from tests.support.served import handshake, wait_until_served
from tests.support.server import run_cli, running_appliance, serving

ADDRESS = "127.0.0.71"
#: The start of a DER SEQUENCE that ends short: no certificate parses from it.
DAMAGED_DER = bytes.fromhex("3082010a0201")


def test_a_certificate_whose_stored_der_is_damaged_is_named_and_the_others_serve(
    tmp_path: Path,
) -> None:
    with running_appliance(tmp_path / "data", ADDRESS) as running:
        data_dir = running.data_dir
        made = [
            json.loads(
                run_cli(
                    data_dir, "cert", "create", "--name", name, "--cn", f"{name}.test", "--json"
                ).stdout
            )
            for name in ("damaged", "healthy")
        ]
        damaged, healthy = (entry["certificate"]["id"] for entry in made)
        with closing(sqlite3.connect(data_dir / "certgate.db")) as db, db:
            db.execute("UPDATE certificates SET der = ? WHERE id = ?", (DAMAGED_DER, damaged))

        said = f"certificate {damaged} ('damaged') is damaged in the store"
        target = tmp_path / "out.der"
        export = run_cli(data_dir, "cert", "export", str(damaged), "-o", str(target), check=False)
        assert export.returncode == 1 and said in export.stderr, export
        assert not target.exists()
        run_cli(data_dir, "cert", "export", str(healthy), "-o", str(target))
        assert target.read_bytes()[:1] == b"\x30"

        assign = run_cli(
            data_dir, "ip", "assign", ADDRESS, "--cert", str(damaged), "--confirm", check=False
        )
        assert assign.returncode == 1 and said in assign.stderr, assign

        server = Server(running, mint_token(data_dir, "tests", "admin"))
        with server.client() as api:
            answer = api.get(f"/certificates/{damaged}/export")
            assert said in problem(answer, 500, "damaged")["detail"]
            assert api.get(f"/certificates/{healthy}/export").status_code == 200
            assert api.get("/certificates").status_code == 200
    assert "Traceback" not in running.log_text()


def test_a_request_whose_stored_der_is_damaged_is_listed_named_and_deletable(
    tmp_path: Path,
) -> None:
    with running_appliance(tmp_path / "data", ADDRESS) as running:
        data_dir = running.data_dir
        for name in ("damaged", "healthy"):
            run_cli(data_dir, "cert", "create", "--request", "--name", name, "--cn", f"{name}.test")
        requests = json.loads(run_cli(data_dir, "request", "list", "--json").stdout)
        damaged = next(entry["id"] for entry in requests if entry["friendly_name"] == "damaged")
        with closing(sqlite3.connect(data_dir / "certgate.db")) as db, db:
            db.execute(
                "UPDATE certificate_requests SET der = ? WHERE id = ?", (DAMAGED_DER, damaged)
            )

        listed = run_cli(data_dir, "request", "list").stdout
        assert "damaged.test" in listed and "healthy.test" in listed
        shown = run_cli(data_dir, "request", "show", str(damaged), check=False)
        assert shown.returncode == 1
        assert f"request {damaged} ('damaged') is damaged in the store" in shown.stderr
        server = Server(running, mint_token(data_dir, "tests", "admin"))
        with server.client() as api:
            assert len(api.get("/requests").json()) == 2
        run_cli(data_dir, "request", "delete", str(damaged))
        [left] = json.loads(run_cli(data_dir, "request", "list", "--json").stdout)
        assert left["friendly_name"] == "healthy" and "BEGIN CERTIFICATE REQUEST" in left["pem"]
    assert "Traceback" not in running.log_text()


def test_a_certificate_whose_stored_details_are_damaged_is_read_again_from_its_der(
    tmp_path: Path,
) -> None:
    """The details kept beside the DER (a cache of it) no longer read: every face reads them
    from the DER again, as they were."""
    with running_appliance(tmp_path / "data", ADDRESS) as running:
        data_dir = running.data_dir
        made = run_cli(data_dir, "cert", "create", "--name", "kept", "--cn", "kept.test", "--json")
        certificate = json.loads(made.stdout)["certificate"]
        shown = json.loads(
            run_cli(data_dir, "cert", "show", str(certificate["id"]), "--json").stdout
        )
        with closing(sqlite3.connect(data_dir / "certgate.db")) as db, db:
            db.execute(
                "UPDATE certificates SET info = '{\"fingerprint_sha256\": 1}' WHERE id = ?",
                (certificate["id"],),
            )
        run_cli(data_dir, "ip", "assign", ADDRESS, "--cert", str(certificate["id"]), "--confirm")
        again = json.loads(
            run_cli(data_dir, "cert", "show", str(certificate["id"]), "--json").stdout
        )
        assert again == {**shown, "ip_addresses": [ADDRESS]}
        listed = run_cli(data_dir, "cert", "list").stdout
        assert "kept.test" in listed and "certgate Appliance" in listed
        server = Server(running, mint_token(data_dir, "tests", "admin"))
        with server.client() as api:
            listing = api.get("/certificates").json()["items"]
            [entry] = [e for e in listing if e["friendly_name"] == "kept"]
            assert entry["not_after"] == certificate["not_after"]
        wait_until_served(ADDRESS, running.port, certificate["fingerprint_sha256"])
    assert "Traceback" not in running.log_text()


def test_a_damaged_tls_setting_is_logged_and_its_default_serves(tmp_path: Path) -> None:
    """A value that is no setting, and a field only a newer certgate knows: the listeners
    serve on (after a re-read, and from a new start), the rest of the settings kept."""
    data_dir = tmp_path / "data"
    with running_appliance(data_dir, ADDRESS) as running:
        run_cli(data_dir, "tls", "set", "--handshake-timeout", "9")
        with closing(sqlite3.connect(data_dir / "certgate.db")) as db, db:
            db.execute(
                "UPDATE settings SET value = json_set(value, '$.minimum_version', 7,"
                " '$.from_a_newer_certgate', 1) WHERE name = 'tls'"
            )
        running.process.send_signal(signal.SIGHUP)
        said = "the stored TLS setting minimum_version (7) is not valid: the default, '1.2'"
        eventually(lambda: said in running.log_text(), timeout=20)
        assert handshake(ADDRESS, running.port).common_name == "certgate Appliance"
        shown = run_cli(data_dir, "tls", "show")
        assert "Minimum TLS version      1.2" in shown.stdout and said in shown.stderr
        assert "Handshake timeout        9 s" in shown.stdout
    with serving(data_dir, ADDRESS, running.admin_password, (), None, running.port) as again:
        assert handshake(ADDRESS, again.port).common_name == "certgate Appliance"
        run_cli(data_dir, "tls", "set", "--min-version", "1.3")  # the setting made whole
        assert "Minimum TLS version      1.3" in run_cli(data_dir, "tls", "show").stdout
    assert "Traceback" not in again.log_text()


def test_a_stored_address_that_is_no_address_is_refused_alone_and_removable(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with running_appliance(data_dir, ADDRESS) as running:
        run_cli(data_dir, "ip", "add", "127.0.0.72")
        with closing(sqlite3.connect(data_dir / "certgate.db")) as db, db:
            db.execute("UPDATE ip_addresses SET address = 'garbage' WHERE address = '127.0.0.72'")
        running.process.send_signal(signal.SIGHUP)
        said = "not serving garbage: IP address: 'garbage' is not an IPv4 or IPv6 address"
        eventually(lambda: said in running.log_text(), timeout=20)
        assert handshake(ADDRESS, running.port).common_name == "certgate Appliance"
        assert run_cli(data_dir, "ip", "remove", "garbage").stdout == "removed garbage\n"
        assert "garbage" not in run_cli(data_dir, "ip", "list").stdout
    with serving(data_dir, ADDRESS, running.admin_password, (), None, running.port) as again:
        assert handshake(ADDRESS, again.port).common_name == "certgate Appliance"


def test_json_text_that_no_longer_parses_is_read_as_missing(tmp_path: Path) -> None:
    """SQLite keeps JSON as text: a damaged one reads as missing, logged, and its reader falls
    back (the TLS settings to their defaults, a certificate's details to its DER)."""
    data_dir = tmp_path / "data"
    with running_appliance(data_dir, ADDRESS) as running:
        run_cli(data_dir, "tls", "set", "--handshake-timeout", "9")
        with closing(sqlite3.connect(data_dir / "certgate.db")) as db, db:
            db.execute("UPDATE settings SET value = '{damaged' WHERE name = 'tls'")
            db.execute("UPDATE certificates SET info = '{damaged' WHERE is_factory")
    with serving(data_dir, ADDRESS, running.admin_password, (), None, running.port) as again:
        assert handshake(ADDRESS, again.port).common_name == "certgate Appliance"
        shown = run_cli(data_dir, "tls", "show")
        assert "Handshake timeout        10 s" in shown.stdout
        assert "a JSON value in the store is damaged" in shown.stderr
        assert "certgate Appliance (factory)" in run_cli(data_dir, "cert", "list").stdout
    assert "Traceback" not in again.log_text()


def test_the_support_package_names_a_certificate_whose_stored_der_is_damaged(
    certgate: Certgate, tmp_path: Path
) -> None:
    """What an administrator sends when something is wrong: it said 'internal error
    (ValueError)' for one damaged row and held nothing."""
    made = [
        certgate.json("cert", "create", "--name", name, "--cn", f"{name}.test")["certificate"]
        for name in ("damaged", "healthy")
    ]
    with closing(sqlite3.connect(certgate.data_dir / "certgate.db")) as db, db:
        db.execute("UPDATE certificates SET der = ? WHERE id = ?", (DAMAGED_DER, made[0]["id"]))
    out = tmp_path / "support.zip"

    certgate("support-package", "-o", out)

    with zipfile.ZipFile(out) as archive:
        damaged = archive.read(f"certificates/{made[0]['id']}-damaged.pem").decode()
        healthy = archive.read(f"certificates/{made[1]['id']}-healthy.pem").decode()
    assert f"certificate {made[0]['id']} ('damaged') is damaged in the store" in damaged
    assert healthy.startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("stored", ["5", "[damaged"])
def test_a_damaged_manual_chain_leaves_its_certificate_served_short(
    tmp_path: Path, stored: str
) -> None:
    """No list of fingerprints (a hand edit): the chain reads as empty, so the certificate
    is served alone and shown with an incomplete chain; nothing else is concerned."""
    data_dir = tmp_path / "data"
    with running_appliance(data_dir, ADDRESS) as running:
        pass
    with closing(sqlite3.connect(data_dir / "certgate.db")) as db, db:
        db.execute(
            "UPDATE certificates SET chain_mode = 'manual', manual_chain = ? WHERE is_factory",
            (stored,),
        )
    with serving(data_dir, ADDRESS, running.admin_password, (), None, running.port) as again:
        assert handshake(ADDRESS, again.port).common_name == "certgate Appliance"
        listed = run_cli(data_dir, "cert", "list", "--json")
        [factory] = json.loads(listed.stdout)
        assert factory["chain_mode"] == "manual" and " is damaged " in listed.stderr
    assert "Traceback" not in again.log_text()


def test_a_certificate_row_damaged_unforeseen_refuses_its_address_alone(tmp_path: Path) -> None:
    """A timestamp that is no timestamp: loading the row fails in a way no rule names. The
    listeners refuse the address it secures, with the reason, and serve the others."""
    data_dir = tmp_path / "data"
    with running_appliance(data_dir, ADDRESS) as running:
        run_cli(data_dir, "ip", "add", "127.0.0.73")
        made = run_cli(data_dir, "cert", "create", "--name", "b", "--cn", "b.test", "--json")
        healthy = json.loads(made.stdout)["certificate"]
        run_cli(data_dir, "ip", "assign", "127.0.0.73", "--cert", str(healthy["id"]), "--confirm")
    with closing(sqlite3.connect(data_dir / "certgate.db")) as db, db:
        db.execute("UPDATE certificates SET not_after = 'damaged' WHERE is_factory")
    with serving(data_dir, "127.0.0.73", running.admin_password, (), None, running.port) as again:
        assert handshake("127.0.0.73", again.port).common_name == "b.test"
        said = f"not serving {ADDRESS}: certificate 1 cannot be presented: internal error"
        assert said in again.log_text()
