"""GET /metrics on the listeners (issue 10, point 7): Prometheus text for an administrator or
auditor; certificate expiry, the certificate assigned to and served on each address, and the
TLS front end's handshakes and connections summed over every worker of `serve --workers 2`."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from certgate.service import notices
from certgate.service.appliance import Appliance
from certgate.service.metrics import render_metrics
from tests.api.client import mint_token
from tests.integration.test_notices import add_expiring, configure
from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.served import client_context, handshake
from tests.support.server import RunningAppliance, run_cli, running_appliance
from tests.support.smtp import smtp_relay

ADDRESS = "127.0.0.2"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAppliance]:
    data_dir = tmp_path_factory.mktemp("metrics") / "data"
    with running_appliance(data_dir, ADDRESS, serve_options=("--workers", "2")) as app:
        yield app


@pytest.fixture(scope="module")
def auditor_token(two_workers: RunningAppliance) -> str:
    return mint_token(two_workers.data_dir, "prometheus", "auditor")


def scrape(app: RunningAppliance, token: str | None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(app.base_url + "/metrics", headers=headers)
    with urllib.request.urlopen(request, context=client_context(), timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(answer.read().decode())


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_only_an_administrator_or_auditor_may_scrape(two_workers: RunningAppliance) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(two_workers, None)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as wrong:
        scrape(two_workers, "cgt_not-a-token")
    assert wrong.value.code == 401


def test_expiry_and_what_each_address_is_assigned_and_serves(
    two_workers: RunningAppliance, auditor_token: str
) -> None:
    [factory] = [
        c
        for c in json.loads(run_cli(two_workers.data_dir, "cert", "list", "--json").stdout)
        if c["is_factory"]
    ]
    samples = scrape(two_workers, auditor_token)
    expiry = value(
        samples,
        "certgate_certificate_expiry_timestamp_seconds",
        fingerprint=factory["fingerprint_sha256"],
        friendly_name=factory["friendly_name"],
        role="server",
    )
    assert expiry == dt.datetime.fromisoformat(factory["not_after"]).timestamp()
    labels = {"address": ADDRESS, "fingerprint": factory["fingerprint_sha256"]}
    assert (
        value(
            samples,
            "certgate_address_assigned_certificate_info",
            friendly_name=factory["friendly_name"],
            **labels,
        )
        == 1
    )
    port = str(two_workers.port)
    assert value(samples, "certgate_listener_up", address=ADDRESS, port=port) == 1
    served = handshake(ADDRESS, two_workers.port).fingerprint
    assert served == factory["fingerprint_sha256"]
    assert (
        value(
            samples,
            "certgate_address_served_certificate_info",
            port=port,
            friendly_name=factory["friendly_name"],
            **labels,
        )
        == 1
    )


def test_handshakes_and_connections_of_every_worker(
    two_workers: RunningAppliance, auditor_token: str
) -> None:
    before = scrape(two_workers, auditor_token)
    completed = "certgate_tls_handshakes_total"
    failed = "certgate_tls_handshakes_failed_total"
    for _ in range(40):  # the kernel spreads them over both workers
        handshake(ADDRESS, two_workers.port)
    for _ in range(3):  # a client that speaks no TLS: the handshake fails
        with socket.create_connection((ADDRESS, two_workers.port)) as plain:
            plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):
                plain.recv(100)  # an alert, or a reset

    def counted() -> bool:
        now = scrape(two_workers, auditor_token)
        return (
            value(now, failed) - value(before, failed) == 3
            and value(now, completed) - value(before, completed) >= 40
        )

    eventually(counted, what="40 handshakes and 3 failures counted over both workers")

    held = [_open_tls(two_workers) for _ in range(4)]
    try:
        eventually(
            lambda: value(scrape(two_workers, auditor_token), "certgate_tls_connections_open") >= 4,
            what="the connections held open counted",
        )
    finally:
        for connection in held:
            connection.close()
    eventually(
        lambda: value(scrape(two_workers, auditor_token), "certgate_tls_connections_open") <= 1,
        what="closed connections no longer counted (the scrape's own may be)",
    )


def _open_tls(app: RunningAppliance) -> ssl.SSLSocket:
    raw = socket.create_connection((ADDRESS, app.port), timeout=10)
    return client_context().wrap_socket(raw)


def test_expiry_notices_sent_and_failed(appliance: Appliance) -> None:
    """Counted from the store, whichever process sent them."""
    with smtp_relay("none") as relay:
        configure(appliance, relay.port)
        add_expiring(appliance, "told.example.test", 5)
        assert len(notices.check(appliance).sent) == 1
    configure(appliance, free_port())  # the relay is down now
    add_expiring(appliance, "untold.example.test", 5)
    assert len(notices.check(appliance).failed) == 1
    samples = parse(render_metrics(appliance).decode())
    assert value(samples, "certgate_expiry_notices", state="sent") == 1
    assert value(samples, "certgate_expiry_notices", state="failed") == 1
