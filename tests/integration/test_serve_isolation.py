"""One bad row never takes the appliance down: a certificate whose private key cannot be
unsealed (a damaged row, a wrong master key) stops only the addresses that present it; every
other address, with the pages and the API, is served, and the failure is reported by name.
A real ``certgate serve`` on SQLite and on PostgreSQL; the damage is done to the stored row."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import create_engine, insert, text

from certgate.store.database import default_url
from certgate.store.models import IpAddressRow
from tests.api.client import Server
from tests.support.net import free_port
from tests.support.pki import make_chain, pem
from tests.support.polling import eventually
from tests.support.served import client_context, served_fingerprint
from tests.support.server import run_cli, running_appliance

PASSWORD = "administrator's password"


def _env(database_url: str | None) -> dict[str, str]:
    return {"CERTGATE_DATABASE_URL": database_url} if database_url else {}


def _import_and_assign(data_dir: Path, database_url: str | None, address: str) -> dict[str, str]:
    """A certificate with its key, assigned to ``address``; returns its ``cert show``."""
    env = _env(database_url)
    chain = make_chain("damaged.example.test")
    bundle = data_dir.parent / "site.pem"
    bundle.write_bytes(pem(chain.leaf, chain.leaf_key))
    imported = json.loads(run_cli(data_dir, "cert", "import", str(bundle), "--json", **env).stdout)[
        "entries"
    ]
    [site] = [entry for entry in imported if entry["kind"] == "certificate"]
    run_cli(data_dir, "cert", "rename", str(site["id"]), "Damaged site", **env)
    run_cli(data_dir, "ip", "add", address, **env)
    run_cli(data_dir, "ip", "assign", address, "--cert", str(site["id"]), "--confirm", **env)
    shown: dict[str, str] = json.loads(
        run_cli(data_dir, "cert", "show", str(site["id"]), "--json", **env).stdout
    )
    return shown


def _damage_sealed_key(data_dir: Path, database_url: str | None, certificate_id: int) -> None:
    """Flip one byte of the sealed private key of the certificate, as a disk fault would."""
    engine = create_engine(database_url or default_url(data_dir))
    with engine.begin() as connection:
        fingerprint = connection.execute(
            text("SELECT public_key_fingerprint FROM certificates WHERE id = :id"),
            {"id": certificate_id},
        ).scalar_one()
        sealed = connection.execute(
            text("SELECT sealed FROM private_keys WHERE public_key_fingerprint = :f"),
            {"f": fingerprint},
        ).scalar_one()
        damaged = bytes(sealed[:-1]) + bytes([sealed[-1] ^ 0x01])
        connection.execute(
            text("UPDATE private_keys SET sealed = :s WHERE public_key_fingerprint = :f"),
            {"s": damaged, "f": fingerprint},
        )
    engine.dispose()


def _add_wildcard_rows(data_dir: Path, database_url: str | None) -> None:
    """``0.0.0.0`` and ``::`` as stored before addresses were checked: they took the port
    from every other address ("in use by another program") and exposed the admin interface."""
    engine = create_engine(database_url or default_url(data_dir))
    with engine.begin() as connection:
        for address in ("0.0.0.0", "::"):
            connection.execute(insert(IpAddressRow).values(address=address, certificate_id=1))
    engine.dispose()


def _login_page(address: str, port: int) -> int:
    url = f"https://{address}:{port}/appliance/login"
    with urllib.request.urlopen(url, context=client_context(), timeout=10) as response:
        return int(response.status)


def test_a_key_that_cannot_be_unsealed_stops_only_its_addresses(
    tmp_path: Path, database_url: str | None
) -> None:
    data_dir = tmp_path / "data"
    run_cli(
        data_dir, "init", "--no-address", CERTGATE_ADMIN_PASSWORD=PASSWORD, **_env(database_url)
    )
    site = _import_and_assign(data_dir, database_url, "127.0.0.3")
    _damage_sealed_key(data_dir, database_url, int(site["id"]))
    _add_wildcard_rows(data_dir, database_url)

    env = _env(database_url)
    with running_appliance(
        data_dir, address="127.0.0.2", admin_password=PASSWORD, database_url=database_url
    ) as running:
        port = running.port
        # The factory certificate's address serves, pages and API included.
        factory = json.loads(
            run_cli(data_dir, "cert", "show", "1", "--json", **_env(database_url)).stdout
        )
        assert served_fingerprint("127.0.0.2", port) == factory["fingerprint_sha256"]
        assert _login_page("127.0.0.2", port) == 200
        # The damaged certificate's address is reported, by certificate and address.
        status = json.loads(run_cli(data_dir, "status", "--json", **_env(database_url)).stdout)
        states = {entry["address"]: entry for entry in status["listeners"]}
        assert states["127.0.0.2"]["state"] == "listening"
        assert states["127.0.0.3"]["state"] == "failed"
        assert "'Damaged site'" in states["127.0.0.3"]["error"]
        assert "could not be unsealed" in states["127.0.0.3"]["error"]
        [line] = [ln for ln in running.log_text().splitlines() if "not serving 127" in ln]
        assert "127.0.0.3" in line and "'Damaged site'" in line, line
        assert "127.0.0.2" not in line
        for wildcard in ("0.0.0.0", "::"):
            assert states[wildcard]["state"] == "failed"
            assert "wildcard address" in states[wildcard]["error"]
            assert "another program" not in running.log_text()
        text_status = run_cli(data_dir, "status", **_env(database_url)).stdout
        assert "Damaged site" in text_status
        # The Status page and the API say the same, served by the address that works.
        server = Server(running, admin_token="")
        session = server.login()
        with server.pages(session) as pages:
            page = pages.get("/status")
        assert page.status_code == 200
        assert "127.0.0.3" in page.text and "Damaged site" in page.text
        with server.browser(session) as api:
            listeners = api.get("/status").json()["listeners"]
        [failed] = [entry for entry in listeners if entry["address"] == "127.0.0.3"]
        assert "'Damaged site'" in failed["error"]
        # Assigned to an address that serves, it leaves that address on what it presented.
        assign = ("ip", "assign", "127.0.0.2", "--cert", str(site["id"]), "--confirm")
        run_cli(data_dir, *assign, **env)

        def still_presenting_factory() -> bool:
            report = json.loads(run_cli(data_dir, "status", "--json", **env).stdout)
            [entry] = [e for e in report["listeners"] if e["address"] == "127.0.0.2"]
            return entry["state"] == "listening" and "still presenting" in (entry["error"] or "")

        eventually(still_presenting_factory)
        assert served_fingerprint("127.0.0.2", port) == factory["fingerprint_sha256"]
        assert running.process.poll() is None  # still serving


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_exits_non_zero_only_when_it_can_serve_nothing(tmp_path: Path, workers: str) -> None:
    """A wrong master key: no certificate can be presented, so serve says so and exits 1
    (with workers too: none is restarted, since each one reads the same plan)."""
    data_dir = tmp_path / "data"
    run_cli(data_dir, "init", "--no-address")
    run_cli(data_dir, "ip", "add", "127.0.0.2")
    master = data_dir / "master.key"
    master.write_bytes(AESGCM.generate_key(bit_length=256))
    done = run_cli(
        data_dir, "serve", "--https-port", str(free_port()), "--workers", workers, check=False
    )
    assert done.returncode == 1, done
    assert "not serving 127.0.0.2: certificate 'certgate Appliance'" in done.stderr
    assert "error: certgate serve cannot serve any of its addresses" in done.stderr
    assert "Traceback" not in done.stderr
    # The name it claimed at its start is not left to look alive, then lost: it stopped.
    listed = json.loads(run_cli(data_dir, "node", "list", "--json").stdout)
    assert [node["state"] for node in listed] == ["stopped"], listed
