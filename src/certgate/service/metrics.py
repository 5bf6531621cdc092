"""``/metrics``: what a Prometheus server watches, in its text format (prometheus-client).

Every value is read when scraped, from the committed store, the report of the running serve
and its workers' shared counts: nothing is kept in this process, so a scrape that reaches any
worker says the same.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from certgate.service.appliance import COUNTS_FILE, Appliance
from certgate.service.certificates import listed_certificates
from certgate.service.networking import list_addresses
from certgate.service.notices import notice_counts
from certgate.service.serving import ServeReport, read_status
from certgate.tls.counts import read_counts

#: The classic text format: every Prometheus version reads it (the names are ASCII).
MEDIA_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def render_metrics(app: Appliance) -> bytes:
    """The exposition text (CPU work over every certificate: call it off the event loop)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Appliance(app))
    return generate_latest(registry)


class _Appliance(Collector):
    def __init__(self, app: Appliance) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        serving = read_status(self.app)
        yield from self._certificates()
        yield from self._addresses(serving)
        yield self._notices()
        if serving is not None:  # the counts of a serve that stopped are not news
            yield from self._front_end()

    def _certificates(self) -> Iterator[Metric]:
        expiry = GaugeMetricFamily(
            "certgate_certificate_expiry_timestamp_seconds",
            "When each certificate expires (Not Valid After), in seconds since the epoch.",
            labels=["fingerprint", "friendly_name", "role"],
        )
        for entry in listed_certificates(self.app):  # no chain or warnings: no views
            expiry.add_metric(
                [entry.fingerprint_sha256, entry.friendly_name, entry.role],
                entry.not_after.timestamp(),
            )
        yield expiry

    def _addresses(self, serving: ServeReport | None) -> Iterator[Metric]:
        assigned = GaugeMetricFamily(
            "certgate_address_assigned_certificate_info",
            "The certificate assigned to each address (1).",
            labels=["address", "fingerprint", "friendly_name"],
        )
        names: dict[str, str] = {}
        for address in list_addresses(self.app):
            names[address.certificate_fingerprint] = address.certificate_name
            assigned.add_metric(
                [address.address, address.certificate_fingerprint, address.certificate_name], 1
            )
        yield assigned
        up = GaugeMetricFamily(
            "certgate_listener_up",
            "Whether each address's listener accepts connections (1) or failed (0); none "
            "while no 'certgate serve' runs.",
            labels=["address", "port"],
        )
        served = GaugeMetricFamily(
            "certgate_address_served_certificate_info",
            "The certificate each listener presents now (1).",
            labels=["address", "port", "fingerprint", "friendly_name"],
        )
        for listener in serving.listeners if serving else []:
            where = [str(listener.get("address")), str(listener.get("port"))]
            up.add_metric(where, 1 if listener.get("state") == "listening" else 0)
            fingerprint = listener.get("fingerprint")
            if isinstance(fingerprint, str):
                served.add_metric([*where, fingerprint, names.get(fingerprint, "")], 1)
        yield up
        yield served

    def _notices(self) -> Metric:
        notices = GaugeMetricFamily(
            "certgate_expiry_notices",
            "Expiry notices recorded, by state: sent, failed (retried at the next check), "
            "sending; a certificate's are forgotten when it is deleted or 30 days after it "
            "expired.",
            labels=["state"],
        )
        for state, count in notice_counts(self.app).items():
            notices.add_metric([state], count)
        return notices

    def _front_end(self) -> Iterator[Metric]:
        counts = read_counts(self.app.data_dir / COUNTS_FILE)
        if counts is None:
            return
        completed = CounterMetricFamily(
            "certgate_tls_handshakes",
            "TLS handshakes completed by every worker of the running serve.",
        )
        completed.add_metric([], counts.handshakes_completed)
        failed = CounterMetricFamily(
            "certgate_tls_handshakes_failed",
            "TLS handshakes that ended without completing (refused, timed out or cut).",
        )
        failed.add_metric([], counts.handshakes_failed)
        connections = GaugeMetricFamily(
            "certgate_tls_connections_open",
            "TLS connections the front ends hold now.",
            value=counts.connections_open,
        )
        yield completed
        yield failed
        yield connections
