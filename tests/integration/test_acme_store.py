"""The ACME rows on both backends (SQLite and PostgreSQL, migrations 0007, 0008 and 0010): the
http-01 answers serve reads by token, the TLS-ALPN-01 challenges whose commits move the
revision every serve follows, and the renewal lease, whose compare-and-set lets one of
two renewers (workers, nodes) take a certificate and the other only once it lapsed or ended."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from certgate.errors import AcmeNotReadyError, ValidationError
from certgate.service import nodes
from certgate.service.acme_orders import (
    ABANDONED_AFTER,
    ORDER_DEADLINE,
    ChallengeType,
    end_abandoned_orders,
    place_order,
    responder_problem,
    show_order,
)
from certgate.service.acme_renewal import RENEWAL_LEASE, failing_renewals
from certgate.service.appliance import Appliance
from certgate.service.setup import initialise
from certgate.service.tls_settings import update_settings
from certgate.store import acme as queries
from certgate.store.models import AcmeOrderRow

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
LAPSED = NOW - RENEWAL_LEASE


@pytest.fixture
def app(tmp_path: Path, database_url: str | None) -> Iterator[Appliance]:
    initialise(tmp_path / "data", database_url)
    with closing(Appliance.open(tmp_path / "data", database_url)) as opened:
        yield opened


def issued_order(app: Appliance) -> int:
    with app.store.transaction() as repository:
        factory = repository.factory_certificate()
        assert factory is not None
        row = AcmeOrderRow(
            friendly_name="site",
            domains=["site.example.test"],
            key_spec="p256",
            challenge="http-01",
            assign=[],
            state=queries.VALID,
            directory_url="https://ca.example.test/directory",
            certificate_id=factory.id,
        )
        repository.add(row)
        repository.flush()
        return row.id


def claim(app: Appliance, order_id: int, who: str, now: dt.datetime, force: bool) -> bool:
    with app.store.transaction() as repository:
        return queries.claim_renewal(repository, order_id, who, now, now - RENEWAL_LEASE, force)


def test_http01_answers_are_read_by_token_until_withdrawn(app: Appliance) -> None:
    order_id = issued_order(app)
    with app.store.transaction() as repository:
        queries.publish(repository, order_id, [("tok-1", "tok-1.thumb"), ("tok-2", "tok-2.x")])
    with app.store.reading() as repository:
        assert queries.key_authorization(repository, "tok-1") == "tok-1.thumb"
        assert queries.key_authorization(repository, "nope") is None
    with app.store.transaction() as repository:
        queries.withdraw(repository, order_id)
    with app.store.reading() as repository:
        assert queries.key_authorization(repository, "tok-2") is None


def test_tls_alpn_challenges_move_the_revision_serve_follows(app: Appliance) -> None:
    order_id = issued_order(app)
    first = app.store.revision()
    with app.store.transaction() as repository:
        queries.publish(repository, order_id, [("tok-1", "tok-1.thumb")])
    assert app.store.revision() == first  # http-01 answers are read when asked for
    with app.store.transaction() as repository:
        queries.publish_tls(repository, order_id, [("a.example.test", "a.x"), ("b.test", "b.x")])
    published = app.store.revision()
    assert published > first
    newer = issued_order(app)
    with app.store.transaction() as repository:
        queries.publish_tls(repository, newer, [("a.example.test", "a.newer")])
    with app.store.reading() as repository:
        assert queries.tls_challenges(repository) == {"a.example.test": "a.newer", "b.test": "b.x"}
    with app.store.transaction() as repository:
        queries.withdraw(repository, order_id)
    assert app.store.revision() > published
    with app.store.reading() as repository:
        assert queries.tls_challenges(repository) == {"a.example.test": "a.newer"}
        assert queries.key_authorization(repository, "tok-1") is None


def test_a_live_node_of_the_cluster_answers_for_this_appliance(app: Appliance) -> None:
    """No serve on this data directory: another node's heartbeat listing an HTTPS listener
    answers tls-alpn-01, and one listing a plain HTTP listener that listens answers http-01
    (the HTTP port set is not enough: the port may be taken there)."""
    tls, http = ChallengeType.TLS_ALPN_01, ChallengeType.HTTP_01
    assert "no certgate serve is running" in str(responder_problem(app, tls))
    listener = {"address": "192.0.2.7", "port": 443, "state": "failed", "error": "taken"}
    nodes.heartbeat(app, "node-b", app.now(), 5.0, [listener])
    assert "listens on no address" in str(responder_problem(app, tls))
    nodes.heartbeat(app, "node-b", app.now(), 5.0, [{**listener, "state": "listening"}])
    assert responder_problem(app, tls) is None
    assert "without its plain HTTP listener" in str(responder_problem(app, http))
    update_settings(app, http_port=8080)
    plain = {"address": "192.0.2.7", "port": 8080, "state": "failed", "error": "taken"}
    nodes.heartbeat(app, "node-b", app.now(), 5.0, [{**listener, "state": "listening"}], [plain])
    assert str(responder_problem(app, http)).startswith(
        "certgate serve's plain HTTP listener cannot listen (192.0.2.7 port 8080: taken; see "
        "http-listener-failed in Diagnostic Status)"
    )
    # A node of an earlier version lists no plain HTTP listener: the HTTP port set counts.
    with app.store.transaction() as repository:
        repository.session.execute(text("UPDATE nodes SET http_listeners = NULL"))
    assert responder_problem(app, http) is None
    update_settings(app, http_port=0)
    assert "without its plain HTTP listener" in str(responder_problem(app, http))
    update_settings(app, http_port=8080)
    plain["state"] = "listening"
    nodes.heartbeat(app, "node-b", app.now(), 5.0, [{**listener, "state": "listening"}], [plain])
    assert responder_problem(app, http) is None
    nodes.stopped(app, "node-b", app.now(), 5.0)
    assert "no certgate serve is running" in str(responder_problem(app, tls))


def test_one_renewer_holds_the_lease_until_it_ends_or_lapses(app: Appliance) -> None:
    order_id = issued_order(app)
    with app.store.reading() as repository:
        assert [row.id for row in queries.in_service(repository)] == [order_id]
    assert claim(app, order_id, "worker-a", NOW, force=False)
    assert not claim(app, order_id, "node-b", NOW + dt.timedelta(minutes=9), force=True)
    assert claim(app, order_id, "node-b", NOW + RENEWAL_LEASE * 2, force=False)  # lapsed

    # node-b fails: the lease ends with a backoff, which only --force passes.
    with app.store.transaction() as repository:
        queries.end_renewal(
            repository,
            order_id,
            "node-b",
            renewal_attempts=1,
            renewal_next_at=NOW + dt.timedelta(hours=1),
            renewal_error="the CA said no",
        )
    assert not claim(app, order_id, "worker-a", NOW + dt.timedelta(minutes=30), force=False)
    assert claim(app, order_id, "cli", NOW + dt.timedelta(minutes=30), force=True)
    [failing] = failing_renewals(app)
    assert failing.renewal_error == "the CA said no" and failing.renewal_attempts == 1


def test_an_order_left_pending_by_a_stopped_process_ends_and_its_challenges_go(
    app: Appliance,
) -> None:
    """The CLI killed (or serve restarted) mid-order never withdraws its challenges: every
    serve would present the TLS-ALPN-01 certificate for ever. serve's renewal check fails
    such an order once it is older than any order runs, in one transaction."""
    valid = issued_order(app)
    with app.store.transaction() as repository:
        row = AcmeOrderRow(
            friendly_name="left",
            domains=["left.example.test"],
            key_spec="p256",
            challenge="tls-alpn-01",
            assign=[],
            state=queries.PENDING,
            directory_url="https://ca.example.test/directory",
            created_at=NOW,
        )
        repository.add(row)
        repository.flush()
        left = row.id
        queries.publish_tls(repository, left, [("left.example.test", "left.x")])
    published = app.store.revision()
    assert end_abandoned_orders(app, NOW + ORDER_DEADLINE) == []  # may still run
    later = NOW + ABANDONED_AFTER + dt.timedelta(seconds=1)
    assert end_abandoned_orders(app, later) == [left]
    assert app.store.revision() > published  # every serve drops the challenge
    with app.store.reading() as repository:
        assert queries.tls_challenges(repository) == {}
    shown = show_order(app, left)
    assert shown.state == queries.FAILED and "abandoned" in str(shown.error)
    assert show_order(app, valid).state == queries.VALID
    assert end_abandoned_orders(app, later) == []


def test_an_order_names_dns_names_and_ip_addresses(app: Appliance) -> None:
    """IP addresses are RFC 8738 identifiers; a name read as an address but not one as
    written, or a zoned address, is refused before anything is asked."""
    refused = {
        "127.1": "neither a DNS name (its last label is a number) nor an IP address",
        "127.000.0.5": "neither a DNS name",
        "fe80::1%eth0": "an address with a zone is not orderable",
        "*.example.test": "is a wildcard",
    }
    for written, reason in refused.items():
        with pytest.raises(ValidationError) as raised:
            place_order(app, name="x", domains=["ok.example.test", written])
        assert raised.value.field == "domains[1]" and reason in raised.value.reason
    # Accepted, the order stops at the missing account.
    with pytest.raises(AcmeNotReadyError, match="no ACME account"):
        place_order(app, name="x", domains=["2001:DB8:0::1", "192.0.2.10", "Shop.Test."])
