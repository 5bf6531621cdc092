"""ACME against a real CA (Debian's Pebble): an account, an order answered by http-01 on
``certgate serve``'s plain HTTP listener, the issued certificate presented on its address
and verified by openssl against Pebble's root; a validation nothing answers, reported with
the CA's problem document; an order while no serve answers; badNonce retried."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import sqlite3
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest
from acme import client, messages
from cryptography import x509
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from certgate.pki.tls_alpn import ACME_IDENTIFIER, acme_identifier
from certgate.service import notices
from certgate.service.acme_account import unseal_account_key
from certgate.service.acme_renewal import RENEWAL_LEASE
from certgate.service.appliance import Appliance
from certgate.store import acme as acme_store
from certgate.store.acme import PENDING, claim_renewal, publish_tls, withdraw
from certgate.store.models import AcmeOrderRow
from tests.api.client import mint_token
from tests.support.net import free_port
from tests.support.openssl import s_client
from tests.support.pebble import order, orders, register, running_pebble
from tests.support.polling import eventually
from tests.support.served import (
    AlpnAnswer,
    alpn_handshake,
    handshake,
    handshake_succeeds,
    served_fingerprint,
    wait_until_served,
)
from tests.support.server import RunningAppliance, run_cli, running_appliance
from tests.support.smtp import configure_plain, smtp_relay

ADDRESS = "127.0.0.61"


@pytest.fixture
def http_port() -> int:
    return free_port()


@pytest.fixture
def appliance(tmp_path: Path, http_port: int) -> Iterator[RunningAppliance]:
    with running_appliance(
        tmp_path / "data", ADDRESS, serve_options=("--http-port", str(http_port))
    ) as running:
        yield running


@contextmanager
def handshakes_under_load(address: str, port: int) -> Iterator[list[int]]:
    """Full handshakes one after another on a thread while the block runs; yields the list
    of failed ones (by number)."""
    failures: list[int] = []
    done = threading.Event()
    count = [0]

    def load() -> None:
        while not done.is_set():
            count[0] += 1
            if not handshake_succeeds(address, port, timeout=5):
                failures.append(count[0])

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        done.set()
        thread.join(timeout=10)
    assert count[0] > 10, "the load was real"


def test_http01_order_is_issued_served_and_verified(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    with running_pebble(tmp_path / "pebble", ADDRESS, http_port) as pebble:
        account = register(appliance.data_dir, pebble)
        assert account["configured"] is True
        assert str(account["account_url"]).startswith("https://127.0.0.1:")
        shown = run_cli(appliance.data_dir, "acme", "account", "show").stdout
        assert pebble.directory_url in shown and "admin@example.test" in shown

        ordered = run_cli(
            appliance.data_dir,
            "acme",
            "order",
            "--name",
            "shop",
            "--domain",
            "shop.example.test",
            "--domain",
            "www.shop.example.test",
            "--key",
            "p256",
            "--assign",
            ADDRESS,
            "--json",
        )
        order = json.loads(ordered.stdout)
        assert order["state"] == "valid", pebble.log_text()
        assert order["assign"] == [ADDRESS]
        root = tmp_path / "pebble-root.pem"
        root.write_bytes(pebble.root_pem())

        verified = s_client(
            ADDRESS,
            appliance.port,
            "-servername",
            "shop.example.test",
            "-CAfile",
            root,
            "-verify_return_error",
            "-verify_hostname",
            "www.shop.example.test",
        )
        assert "Verify return code: 0 (ok)" in verified.stdout, verified.stdout
        certificate = json.loads(
            run_cli(
                appliance.data_dir, "cert", "show", str(order["certificate_id"]), "--json"
            ).stdout
        )
        assert certificate["friendly_name"] == "shop"
        assert certificate["has_private_key"] is True
        listed = run_cli(appliance.data_dir, "acme", "orders").stdout
        assert "shop.example.test" in listed and "valid" in listed


def test_tls_alpn01_order_is_issued_served_and_verified(tmp_path: Path) -> None:
    """No HTTP port at all: Pebble validates on the HTTPS port serve listens on, by ALPN
    acme-tls/1, and the issued certificate is then presented there to everyone else."""
    with (
        running_appliance(tmp_path / "data", ADDRESS) as appliance,
        running_pebble(
            tmp_path / "pebble", ADDRESS, free_port(), tls_port=appliance.port
        ) as pebble,
    ):
        register(appliance.data_dir, pebble)
        ordered = run_cli(
            appliance.data_dir,
            *("acme", "order", "--name", "alpn", "--challenge", "tls-alpn-01"),
            *("--domain", "alpn.example.test", "--domain", "www.alpn.example.test"),
            *("--key", "p256", "--assign", ADDRESS, "--json"),
        )
        order = json.loads(ordered.stdout)
        assert order["state"] == "valid", pebble.log_text()
        assert order["challenge"] == "tls-alpn-01" and order["assign"] == [ADDRESS]
        root = tmp_path / "pebble-root.pem"
        root.write_bytes(pebble.root_pem())
        verified = s_client(
            ADDRESS,
            appliance.port,
            *("-servername", "alpn.example.test", "-CAfile", root, "-verify_return_error"),
            *("-verify_hostname", "www.alpn.example.test"),
        )
        assert "Verify return code: 0 (ok)" in verified.stdout, verified.stdout
        # Each name was validated through the front end, and the challenges are withdrawn.
        log = appliance.log_text()
        for name in ("alpn.example.test", "www.alpn.example.test"):
            assert f"answering the TLS-ALPN-01 challenge of {name}" in log
        eventually(
            lambda: answered(ADDRESS, appliance.port, "alpn.example.test") is None,
            what="the challenge is withdrawn once the order ended",
        )


def test_an_order_asks_before_it_changes_the_root_of_an_address(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    """The address presents a self-signed certificate of its own: the first order from the CA
    that would replace it is refused before it is placed (the CA's root is not known yet),
    goes through with --confirm (noted in the audit), and the next one from the same CA needs
    no confirmation."""
    data_dir = appliance.data_dir
    own = json.loads(
        run_cli(
            data_dir, "cert", "create", "--name", "own", "--cn", "own.example.test", "--json"
        ).stdout
    )
    run_cli(data_dir, "ip", "assign", ADDRESS, "--cert", str(own["certificate"]["id"]))
    with running_pebble(tmp_path / "pebble", ADDRESS, http_port) as pebble:
        register(data_dir, pebble)
        ask = ("acme", "order", "--name", "shop", "--domain", "shop.example.test")
        refused = run_cli(data_dir, *ask, "--assign", ADDRESS, check=False)
        assert refused.returncode == 1
        assert "this change needs confirming: 127.0.0.61: presents 'own'" in refused.stderr
        assert "has issued no certificate here yet" in refused.stderr
        assert orders(data_dir) == []  # nothing was asked of the CA
        confirmed = json.loads(
            run_cli(data_dir, *ask, "--assign", ADDRESS, "--confirm", "--json").stdout
        )
        assert confirmed["state"] == "valid"
        wait_until_served(ADDRESS, appliance.port, str(confirmed["certificate_fingerprint"]))
        audit = run_cli(data_dir, "audit", "list", "--action", "address.assign").stdout
        assert f"confirmed despite: {ADDRESS} root-change" in audit
        again = order(data_dir, "shop-again", "again.example.test", ADDRESS)  # the same root
        assert again["state"] == "valid"
        wait_until_served(ADDRESS, appliance.port, str(again["certificate_fingerprint"]))


def test_the_http_listener_redirects_to_https_and_answers_only_known_tokens(
    appliance: RunningAppliance, http_port: int
) -> None:
    connection = http.client.HTTPConnection(ADDRESS, http_port, timeout=10)
    connection.request(
        "POST", "/appliance/login?next=%2F", body=b"x", headers={"Host": "gw.example.test"}
    )
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 308
    assert answer.getheader("Location") == (
        f"https://gw.example.test:{appliance.port}/appliance/login?next=%2F"
    )
    assert answer.getheader("Connection") == "close"  # the client goes on over HTTPS
    connection.close()
    connection = http.client.HTTPConnection(ADDRESS, http_port, timeout=10)
    connection.request("GET", "/.well-known/acme-challenge/unknown-token")
    answer = connection.getresponse()
    assert answer.status == 404
    answer.read()
    connection.close()


def answered(address: str, port: int, name: str) -> AlpnAnswer | None:
    """What a TLS-ALPN-01 validator is answered for ``name``; None when refused."""
    try:
        return alpn_handshake(address, port, name)
    except ssl.SSLError:
        return None


def test_serve_answers_tls_alpn_challenges_from_the_store_whoever_wrote_them(
    appliance: RunningAppliance,
) -> None:
    """Published by another process (this test), the challenge reaches serve's front end by
    the revision it follows; withdrawn, it is refused again."""
    served = served_fingerprint(ADDRESS, appliance.port)
    name, key_authorization = "alpn.example.test", "tok.thumbprint"
    with closing(Appliance.open(appliance.data_dir)) as app:
        with app.store.transaction() as repository:
            row = AcmeOrderRow(
                friendly_name="alpn",
                domains=[name],
                key_spec="p256",
                challenge="tls-alpn-01",
                assign=[],
                state=PENDING,
                directory_url="https://ca.example.test/directory",
            )
            repository.add(row)
            repository.flush()
            order_id = row.id
            publish_tls(repository, order_id, [(name, key_authorization)])
        answer = eventually(
            lambda: answered(ADDRESS, appliance.port, name), what="serve answers acme-tls/1"
        )
        assert answer.protocol == "acme-tls/1" and answer.closed
        identifier = answer.certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER).value
        assert isinstance(identifier, x509.UnrecognizedExtension)
        assert identifier.value == acme_identifier(key_authorization)
        assert served_fingerprint(ADDRESS, appliance.port) == served  # everyone else
        with app.store.transaction() as repository:
            withdraw(repository, order_id)
        eventually(
            lambda: answered(ADDRESS, appliance.port, name) is None,
            what="serve refuses acme-tls/1 once the challenge is withdrawn",
        )
    assert f"answering the TLS-ALPN-01 challenge of {name}" in appliance.log_text()


def test_a_validation_nothing_answers_is_reported_with_the_cas_document(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    # The CA's DNS sends it to an address where nothing listens.
    with running_pebble(tmp_path / "pebble", "127.0.0.62", http_port) as pebble:
        register(appliance.data_dir, pebble)
        failed = run_cli(
            appliance.data_dir,
            "acme",
            "order",
            "--name",
            "lost",
            "--domain",
            "lost.example.test",
            check=False,
        )
        assert failed.returncode == 1
        assert "ACME order 1 failed: the ACME CA could not validate the order" in failed.stderr
        assert "lost.example.test" in failed.stderr
        assert "urn:ietf:params:acme:error:connection" in failed.stderr
        [order] = orders(appliance.data_dir)
        assert order["state"] == "invalid"
        document = json.loads(str(order["error_document"]))
        assert document["type"] == "urn:ietf:params:acme:error:connection"
        assert order["certificate_id"] is None


def test_an_order_while_no_serve_answers_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run_cli(data_dir, "init", "--no-address", CERTGATE_ADMIN_PASSWORD="correct horse battery")
    with running_pebble(tmp_path / "pebble", ADDRESS, free_port()) as pebble:
        register(data_dir, pebble)
        for kind in ("http-01", "tls-alpn-01"):
            refused = run_cli(
                data_dir,
                *("acme", "order", "--name", "x", "--domain", "x.example.test"),
                *("--challenge", kind),
                check=False,
            )
            assert refused.returncode == 1
            assert "no certgate serve is running on this appliance" in refused.stderr
            assert f"the CA's {kind} challenge" in refused.stderr
    assert orders(data_dir) == []


def test_an_account_deactivated_at_the_ca_is_registered_anew(tmp_path: Path) -> None:
    """An account deactivated at the CA (by its owner with another client, or by the CA)
    refuses every order as ``unauthorized`` (RFC 8555 7.3.6): ``acme account set`` with the
    same directory registers a new one, as for an account the CA no longer knows, rather
    than failing on the deactivated one for good."""
    data_dir = tmp_path / "data"
    run_cli(data_dir, "init", "--no-address", CERTGATE_ADMIN_PASSWORD="correct horse battery")
    with running_pebble(tmp_path / "pebble", ADDRESS, free_port(), nonce_reject=0) as pebble:
        first = register(data_dir, pebble)
        with closing(Appliance.open(data_dir)) as app, app.store.reading() as repository:
            row = acme_store.account(repository)
            assert row is not None
            key = JWKEC.load(unseal_account_key(repository, app.sealer, row))
            account = messages.RegistrationResource(
                uri=row.account_url, body=messages.Registration.from_json(row.registration)
            )
        network = client.ClientNetwork(
            key,
            account=account,
            alg=ES256,
            verify_ssl=str(pebble.ca_file),  # type: ignore[arg-type]
        )
        directory = client.ClientV2.get_directory(pebble.directory_url, network)
        client.ClientV2(directory, network).deactivate_registration(account)

        second = register(data_dir, pebble)
        assert second["account_url"] != first["account_url"]
        audit = run_cli(data_dir, "audit", "list", "--action", "acme.account").stdout
        assert f"the account {first['account_url']} is deactivated at the CA" in audit


def test_a_serve_whose_http_listener_failed_is_no_http_01_responder(tmp_path: Path) -> None:
    """The plain HTTP port is taken (port 80 for a user, say): the order is refused before
    the CA is asked, although the serve's own heartbeat lists its HTTPS listener."""
    taken = socket.socket()
    taken.bind((ADDRESS, 0))
    taken.listen()
    port = taken.getsockname()[1]
    with (
        taken,
        running_appliance(
            tmp_path / "data", ADDRESS, tls_settings=("--http-port", str(port))
        ) as appliance,
        running_pebble(tmp_path / "pebble", ADDRESS, port) as pebble,
    ):
        register(appliance.data_dir, pebble)
        refused = run_cli(
            appliance.data_dir,
            *("acme", "order", "--name", "x", "--domain", "x.example.test"),
            check=False,
        )
        assert refused.returncode == 1
        # The refusal names what failed, not "set the HTTP port": it is set.
        assert (
            f"certgate serve's plain HTTP listener cannot listen ({ADDRESS} port {port}: "
            f"cannot listen on {ADDRESS}:{port}"
        ) in refused.stderr
        assert "see http-listener-failed in Diagnostic Status" in refused.stderr
        assert orders(appliance.data_dir) == []


def test_bad_nonces_are_retried(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    """Pebble refuses 40 % of good nonces: the library's one retry alone would fail an
    order of ~20 requests almost always."""
    with running_pebble(tmp_path / "pebble", ADDRESS, http_port, nonce_reject=40) as pebble:
        register(appliance.data_dir, pebble)
        ordered = run_cli(
            appliance.data_dir,
            "acme",
            "order",
            "--name",
            "nonce",
            "--domain",
            "nonce.example.test",
            "--json",
        )
        assert json.loads(ordered.stdout)["state"] == "valid"


def test_a_forced_renewal_replaces_the_served_certificate_without_a_failed_handshake(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    with running_pebble(tmp_path / "pebble", ADDRESS, http_port) as pebble:
        register(appliance.data_dir, pebble)
        first = order(appliance.data_dir, "renewed", "renew.example.test", ADDRESS)
        wait_until_served(ADDRESS, appliance.port, str(first["certificate_fingerprint"]))
        not_due = run_cli(appliance.data_dir, "acme", "renew").stdout
        assert f"renewed (certificate {first['certificate_id']}): not due yet" in not_due

        with handshakes_under_load(ADDRESS, appliance.port) as failures:
            renewed = json.loads(
                run_cli(
                    appliance.data_dir,
                    "acme",
                    "renew",
                    str(first["certificate_id"]),
                    "--force",
                    "--json",
                ).stdout
            )
            [outcome] = renewed
            assert outcome["state"] == "renewed", outcome
            second = outcome["renewed_by"]
            wait_until_served(ADDRESS, appliance.port, second["certificate_fingerprint"])
        assert failures == []
        assert second["friendly_name"] == "renewed" and second["renewal_of"] == first["id"]
        listed = {entry["id"]: entry for entry in orders(appliance.data_dir)}
        assert listed[first["id"]]["renewed_by"] == second["id"]
        # The old certificate stays in the store, on no address.
        old = json.loads(
            run_cli(
                appliance.data_dir, "cert", "show", str(first["certificate_id"]), "--json"
            ).stdout
        )
        assert old["ip_addresses"] == []

    # The lease: of two renewers, one holds it until it ends or lapses.
    with closing(Appliance.open(appliance.data_dir)) as app:
        now = dt.datetime.now(dt.UTC)
        lapsed = now - RENEWAL_LEASE
        with app.store.transaction() as repository:
            assert claim_renewal(repository, second["id"], "a", now, lapsed, force=True)
        with app.store.transaction() as repository:
            assert not claim_renewal(repository, second["id"], "b", now, lapsed, force=True)
        later = now + RENEWAL_LEASE + dt.timedelta(seconds=1)
        with app.store.transaction() as repository:
            assert claim_renewal(repository, second["id"], "b", later, later - RENEWAL_LEASE, True)


def test_a_certificate_a_renewal_replaced_gets_no_expiry_notice(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    """Renewed and on no address: its successor is the one to be told about, not a mail
    a week later asking to renew what certgate renewed."""
    with running_pebble(tmp_path / "pebble", ADDRESS, http_port) as pebble:
        register(appliance.data_dir, pebble)
        first = order(appliance.data_dir, "renewed", "notice.example.test", ADDRESS)
        with closing(Appliance.open(appliance.data_dir)) as app, smtp_relay(refuse=True) as down:
            configure_plain(app, down.port)
            with app.store.reading() as repository:
                old = repository.certificate_by_fingerprint(str(first["certificate_fingerprint"]))
                assert old is not None
                end = old.not_after
            app.clock = lambda: end - dt.timedelta(days=20)  # its 30-day notice fails
            assert len(notices.check(app).failed) == 1
        renewed = run_cli(
            appliance.data_dir, "acme", "renew", str(first["certificate_id"]), "--force", "--json"
        )
        second = json.loads(renewed.stdout)[0]["renewed_by"]
    with closing(Appliance.open(appliance.data_dir)) as app, smtp_relay("none") as relay:
        configure_plain(app, relay.port)
        app.clock = lambda: end - dt.timedelta(days=3)  # both have crossed 7 days
        sent = notices.check(app).sent
        assert notices.unsent_notices(app) == []  # the old one's failed notice is not retried
    assert [n.fingerprint for n in sent] == [second["certificate_fingerprint"]]
    assert len(relay.messages) == 1


def test_serve_renews_a_certificate_when_a_third_of_its_validity_is_left(
    tmp_path: Path, http_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTGATE_RENEWAL_INTERVAL", "1")
    with (
        running_appliance(
            tmp_path / "data", ADDRESS, serve_options=("--http-port", str(http_port))
        ) as running,
        running_pebble(tmp_path / "pebble", ADDRESS, http_port, validity=30) as pebble,
    ):
        register(running.data_dir, pebble)
        first = order(running.data_dir, "short", "short.example.test", ADDRESS)
        wait_until_served(ADDRESS, running.port, str(first["certificate_fingerprint"]))
        leaf = x509.load_der_x509_certificate(handshake(ADDRESS, running.port).der)

        def renewal() -> dict[str, object] | None:
            return next(
                (
                    entry
                    for entry in orders(running.data_dir)
                    if entry["renewal_of"] == first["id"] and entry["state"] == "valid"
                ),
                None,
            )

        second = eventually(renewal, timeout=90, what="serve renews the 30-second certificate")
        assert second["created_by"] == "appliance"
        wait_until_served(ADDRESS, running.port, str(second["certificate_fingerprint"]))
        # Pebble offers no renewal information (ARI): the rule decided, not before two
        # thirds of the validity had passed.
        context = ssl.create_default_context(cafile=str(pebble.ca_file))
        with urllib.request.urlopen(pebble.directory_url, context=context) as answer:
            assert "renewalInfo" not in json.loads(answer.read())
        validity = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        due = leaf.not_valid_after_utc - validity / 3
        renewed = dt.datetime.fromisoformat(str(second["created_at"]))
        assert renewed >= due - dt.timedelta(seconds=1), (renewed, leaf.not_valid_before_utc)
        assert [entry["renewal_suggested_at"] for entry in orders(running.data_dir)] == [None, None]


def test_a_failed_renewal_waits_and_is_shown(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    with running_pebble(tmp_path / "pebble", ADDRESS, http_port) as pebble:
        register(appliance.data_dir, pebble)
        first = order(appliance.data_dir, "stranded", "stranded.example.test", ADDRESS)
    # Pebble is gone: the renewal fails, is recorded with a backoff, is not retried at once,
    # and the administrators are told by mail.
    with smtp_relay() as relay:
        run_cli(
            appliance.data_dir,
            *("email", "set", "--host", "127.0.0.1", "--port", str(relay.port)),
            *("--security", "none", "--from", "gw@example.test", "--to", "ops@example.test"),
        )
        failed = run_cli(
            appliance.data_dir,
            *("acme", "renew", str(first["certificate_id"]), "--force"),
            check=False,
        )
        assert failed.returncode == 1 and "cannot reach the ACME server" in failed.stdout
        [mail] = relay.messages
        assert mail["Subject"] == "certgate: ACME renewal of 'stranded' failed"
        assert "cannot reach the ACME server" in mail.get_content()
    [entry] = [e for e in orders(appliance.data_dir) if e["id"] == first["id"]]
    assert entry["renewal_attempts"] == 1 and "cannot reach" in str(entry["renewal_error"])
    waiting = run_cli(appliance.data_dir, "acme", "renew", "--json").stdout
    assert json.loads(waiting)[0]["state"] in ("not-due", "backoff")
    # The CLI's order list and Status say the failure in the same words.
    said = f"renewal failed 1 time(s); next try {entry['renewal_next_at'][:10]}"
    listed = run_cli(appliance.data_dir, "acme", "orders").stdout
    assert f"order {first['id']}: {said}" in listed and "cannot reach" in listed
    status = json.loads(run_cli(appliance.data_dir, "status", "--json").stdout)
    assert "acme-renewal-failed" in json.dumps(status) and said in json.dumps(status)


def test_a_ca_requiring_external_account_binding(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run_cli(data_dir, "init", "--no-address", CERTGATE_ADMIN_PASSWORD="correct horse battery")
    hmac_key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    key_file = tmp_path / "hmac.txt"
    key_file.write_text(hmac_key + "\n")
    common = ("acme", "account", "set", "--email", "ops@example.test", "--agree-tos")
    with running_pebble(
        tmp_path / "pebble", ADDRESS, free_port(), eab_keys={"kid-1": hmac_key}
    ) as pebble:
        where = ("--directory", pebble.directory_url, "--ca-file", str(pebble.ca_file))
        refused = run_cli(data_dir, *common, *where, check=False)
        assert refused.returncode == 1
        assert "this CA requires an external account binding" in refused.stderr
        wrong = tmp_path / "wrong.txt"
        wrong.write_text("b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH\n")
        refused = run_cli(
            data_dir,
            *common,
            *where,
            "--eab-kid",
            "kid-1",
            "--eab-hmac-key-file",
            str(wrong),
            check=False,
        )
        assert refused.returncode == 1 and "the ACME CA refused" in refused.stderr
        bound = json.loads(
            run_cli(
                data_dir,
                *common,
                *where,
                *("--eab-kid", "kid-1", "--eab-hmac-key-file", str(key_file), "--json"),
            ).stdout
        )
        assert bound["configured"] is True and bound["eab_kid"] == "kid-1"
    assert hmac_key not in (data_dir / "certgate.db").read_bytes().decode(errors="replace")
    audit = run_cli(data_dir, "audit", "list", "--action", "acme.account").stdout
    assert f"registered at {pebble.directory_url}" in audit


def test_a_certificate_under_a_new_root_at_the_ca_is_issued_but_kept_off_its_address(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    """The CA at the same directory URL now issues under another root (a CA changing its
    hierarchy; here a second Pebble, whose roots are its own, at the first one's URL). The
    order could not foresee it (the CA's earlier certificate on the address ends at the old
    root), so it is placed unconfirmed; the issued certificate is imported, the order is
    valid, the address keeps presenting the old certificate, and the API answers 409
    ``certificate-unassigned`` naming the certificate, so that the administrator assigns it
    (confirmed) instead of ordering again. On the way: ``acme account set`` with the same
    directory registers anew when the CA no longer knows the account."""
    acme_port = free_port()
    with running_pebble(
        tmp_path / "first", ADDRESS, http_port, nonce_reject=0, acme_port=acme_port
    ) as first:
        first_account = register(appliance.data_dir, first)
        issued = order(appliance.data_dir, "shop", "shop.example.test", ADDRESS)
        assert issued["state"] == "valid", first.log_text()
        old = str(issued["certificate_fingerprint"])
        wait_until_served(ADDRESS, appliance.port, old)
        old_root = first.root_pem()

    with running_pebble(
        tmp_path / "second", ADDRESS, http_port, nonce_reject=0, acme_port=acme_port
    ) as second:
        assert second.directory_url == first.directory_url
        assert second.root_pem() != old_root
        # The same directory, but the CA no longer knows the account: it is registered anew.
        second_account = register(appliance.data_dir, second)
        assert second_account["account_url"] != first_account["account_url"]
        audit = run_cli(appliance.data_dir, "audit", "list", "--action", "acme.account").stdout
        assert f"the CA no longer knew the account {first_account['account_url']}" in audit
        token = mint_token(appliance.data_dir, "deployer", "admin")
        answer = httpx.post(
            f"https://{ADDRESS}:{appliance.port}/api/v1/acme/orders",
            json={"friendly_name": "shop 2", "domains": ["shop.example.test"], "assign": [ADDRESS]},
            headers={"Authorization": f"Bearer {token}"},
            verify=False,
            timeout=120,
        )
        assert answer.status_code == 409, answer.text
        problem = answer.json()
        assert problem["type"].endswith("/certificate-unassigned"), problem
        assert [concern["code"] for concern in problem["concerns"]] == ["root-change"]
        assert problem["concerns"][0]["address"] == ADDRESS
        assert f"--cert {problem['certificate_id']} --confirm" in problem["detail"]

        # Issued, imported and listed, but not served: the address keeps the old certificate.
        [renewed] = [o for o in orders(appliance.data_dir) if o["friendly_name"] == "shop 2"]
        new_id = str(problem["certificate_id"])
        assert renewed["state"] == "valid" and str(renewed["certificate_id"]) == new_id
        assert served_fingerprint(ADDRESS, appliance.port) == old
        shown = json.loads(run_cli(appliance.data_dir, "cert", "show", new_id, "--json").stdout)
        assert shown["friendly_name"] == "shop 2"

        # Assigning it is the administrator's own, confirmed change: no second order.
        refused = run_cli(
            appliance.data_dir, "ip", "assign", ADDRESS, "--cert", new_id,
            check=False,
        )  # fmt: skip
        assert refused.returncode != 0 and "root" in refused.stderr
        run_cli(
            appliance.data_dir, "ip", "assign", ADDRESS, "--cert", new_id,
            "--confirm",
        )  # fmt: skip
        wait_until_served(ADDRESS, appliance.port, str(renewed["certificate_fingerprint"]))
        assert len(orders(appliance.data_dir)) == 2


def test_one_damaged_order_row_fails_its_own_renewal_and_not_the_others(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    """A row a bad day damaged (a name that is no text) fails that renewal, recorded and
    said; the renewal after it in the same round still happens."""
    with running_pebble(tmp_path / "pebble", ADDRESS, http_port) as pebble:
        register(appliance.data_dir, pebble)
        damaged = order(appliance.data_dir, "damaged", "damaged.example.test")
        healthy = order(appliance.data_dir, "healthy", "healthy.example.test", ADDRESS)
        with closing(sqlite3.connect(appliance.data_dir / "certgate.db")) as db, db:
            db.execute("UPDATE acme_orders SET domains = '[5]' WHERE id = ?", (damaged["id"],))
        done = run_cli(appliance.data_dir, "acme", "renew", "--force", "--json", check=False)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    outcomes = {outcome["order_id"]: outcome for outcome in json.loads(done.stdout)}
    assert outcomes[healthy["id"]]["state"] == "renewed"
    failed = outcomes[damaged["id"]]
    assert (
        failed["state"] == "failed"
        and failed["error"] == "internal error (AttributeError); please report it"
    )
    with closing(sqlite3.connect(appliance.data_dir / "certgate.db")) as db:
        recorded = db.execute(
            "SELECT renewal_attempts, renewal_error, renewal_claim FROM acme_orders WHERE id = ?",
            (damaged["id"],),
        ).fetchone()
    assert recorded == (1, failed["error"], None)  # recorded, backed off, its lease ended


def test_a_certificate_in_service_whose_stored_der_is_damaged_is_renewed_at_once(
    tmp_path: Path, appliance: RunningAppliance, http_port: int
) -> None:
    """Unreadable, it cannot be presented: its renewal is due, whatever its dates said."""
    with running_pebble(tmp_path / "pebble", ADDRESS, http_port) as pebble:
        register(appliance.data_dir, pebble)
        first = order(appliance.data_dir, "rotten", "rotten.example.test", ADDRESS)
        with closing(sqlite3.connect(appliance.data_dir / "certgate.db")) as db, db:
            db.execute(
                "UPDATE certificates SET der = ? WHERE id = ?",
                (bytes.fromhex("3082010a0201"), first["certificate_id"]),
            )
        done = run_cli(appliance.data_dir, "acme", "renew", "--json")
        [outcome] = json.loads(done.stdout)
        assert outcome["state"] == "renewed", outcome
        assert f"certificate {first['certificate_id']} ('rotten') is damaged" in done.stderr
        wait_until_served(ADDRESS, appliance.port, outcome["renewed_by"]["certificate_fingerprint"])
