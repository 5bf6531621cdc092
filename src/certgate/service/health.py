"""Diagnostic Status: what on this appliance needs an administrator's attention now.

The guide's Status > Basics has a "Diagnostic Status" line; certgate fills it with the faults a
user would notice first: an address nobody serves, a listener that failed (HTTPS, or the plain
HTTP one that answers ACME http-01 challenges, here or on another node), an address that
presents another certificate than the one assigned, an assigned certificate (or one of its
chain) that has expired or soon will, an address whose certificate does not cover a
hostname clients use to reach it; and in a cluster, a node whose heartbeat stopped without a
clean stop (lost), a node that presents another certificate than the assigned one (drift),
an address pinned to a node that is not alive (no node serves it), a floating address
no node holds (every node listens on it, none has it), and one held on two hosts at once.
Each node is judged only on the addresses it should serve: the floating ones and those
pinned to it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from certgate.pki.diagnostics import WarningCode, format_time, validity_warnings
from certgate.service import master_key
from certgate.service.acme_renewal import failing_renewals
from certgate.service.appliance import INSTALL, Appliance
from certgate.service.networking import AddressView, coverage_note
from certgate.service.nodes import NodeState, NodeView, list_nodes
from certgate.service.notices import Notice, partly_sent_notices, unsent_notices
from certgate.service.serving import ServeReport
from certgate.service.views import RowInfoCache, chain_rows


class Severity(StrEnum):
    ERROR = "error"  # users notice it now: a connection fails or a browser refuses
    WARNING = "warning"  # users will notice it soon, or may


class FindingCode(StrEnum):
    NOT_SERVED = "not-served"
    LISTENER_FAILED = "listener-failed"
    HTTP_LISTENER_FAILED = "http-listener-failed"  # plain HTTP: ACME http-01, the redirect
    SERVING_OTHER_CERTIFICATE = "serving-other-certificate"
    CERTIFICATE_EXPIRED = "certificate-expired"
    CERTIFICATE_EXPIRING = "certificate-expiring"
    CERTIFICATE_NOT_YET_VALID = "certificate-not-yet-valid"
    NOTICE_NOT_SENT = "notice-not-sent"
    HOSTNAME_NOT_COVERED = "hostname-not-covered"
    ACME_RENEWAL_FAILED = "acme-renewal-failed"
    NODE_LOST = "node-lost"
    NODE_DRIFT = "node-drift"
    NODE_NOT_ALIVE = "address-node-not-alive"  # an address pinned to a node not running
    NOT_HELD = "address-not-held"  # a floating address on no alive node's host
    HELD_TWICE = "address-held-twice"  # a floating address on two hosts at once (split brain)
    MASTER_KEY_STALE = "master-key-stale"  # this node's master key: rotated elsewhere, or wrong
    NODE_MASTER_KEY_STALE = "node-master-key-stale"  # another node's


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: FindingCode
    message: str


@dataclass(frozen=True)
class Diagnosis:
    findings: list[Finding]

    @property
    def summary(self) -> str:
        """The one line beside "Diagnostic Status" (the guide shows a count: 0 is healthy)."""
        if not self.findings:
            return "Healthy"
        errors = sum(finding.severity is Severity.ERROR for finding in self.findings)
        warnings = len(self.findings) - errors
        parts = [f"{errors} error(s)" * bool(errors), f"{warnings} warning(s)" * bool(warnings)]
        return "Needs attention: " + ", ".join(part for part in parts if part)


def diagnose(
    app: Appliance, addresses: Sequence[AddressView], serving: ServeReport | None
) -> Diagnosis:
    """Every finding, errors first; ``addresses`` and ``serving`` as the caller read them, so
    the page shows one consistent picture."""
    cluster = list_nodes(app)
    findings = (
        _serving_findings(addresses, serving)
        + _pinned_findings(addresses, cluster)
        + _holding_findings(addresses, cluster)
        + _validity_findings(app, addresses)
        + _hostname_findings(addresses)
        + _notice_findings(app)
        + _renewal_findings(app)
        + _node_findings(cluster, serving)
        + _key_findings(app)
    )
    findings.sort(key=lambda finding: finding.severity is not Severity.ERROR)
    return Diagnosis(findings)


def _serving_findings(
    addresses: Sequence[AddressView], serving: ServeReport | None
) -> list[Finding]:
    if serving is None:
        # Which node this data directory's serve runs as is not known: the floating
        # addresses are expected of it; each pinned one is judged by its node's heartbeat.
        floating = [address for address in addresses if address.node is None]
        if not floating:
            return []
        return [
            Finding(
                Severity.ERROR,
                FindingCode.NOT_SERVED,
                f"no 'certgate serve' runs on this data directory: none of the "
                f"{len(floating)} address(es) is served here",
            )
        ]
    listeners: Mapping[str, Mapping[str, object]] = {
        str(listener.get("address")): listener for listener in serving.listeners
    }
    found: list[Finding] = []
    for address in addresses:
        if not address.served_by(serving.node):
            continue  # pinned to another node: judged by that node's heartbeat
        listener = listeners.get(address.address)
        if listener is None:
            found.append(
                Finding(
                    Severity.ERROR,
                    FindingCode.NOT_SERVED,
                    f"{address.address} is configured but not served: its certificate "
                    f"{address.certificate_name!r} cannot be presented (see the serve log)",
                )
            )
        elif listener.get("state") != "listening":
            found.append(
                Finding(
                    Severity.ERROR,
                    FindingCode.LISTENER_FAILED,
                    f"{address.address} port {listener.get('port')} is not listening: "
                    f"{listener.get('error') or listener.get('state')}",
                )
            )
        elif listener.get("fingerprint") != address.certificate_fingerprint:
            found.append(
                Finding(
                    Severity.WARNING,
                    FindingCode.SERVING_OTHER_CERTIFICATE,
                    f"{address.address} presents another certificate than the assigned "
                    f"{address.certificate_name!r}"
                    + (f" ({listener.get('error')})" if listener.get("error") else "")
                    + ": a change is applied within seconds; if this stays, see the serve log",
                )
            )
    return found + _http_findings(serving.http_listeners, "")


def _http_findings(listeners: Iterable[Mapping[str, object]], node: str) -> list[Finding]:
    """Plain HTTP listeners that failed (``node``: on another node, its name): HTTPS is
    served, but a CA's http-01 challenge that reaches the address is not answered, so
    ordering or renewing by http-01 fails, and plain HTTP visitors get no redirect."""
    where = f"on node {node!r}, " if node else ""
    return [
        Finding(
            Severity.WARNING,
            FindingCode.HTTP_LISTENER_FAILED,
            f"{where}{listener.get('address')} port {listener.get('port')} (plain HTTP: ACME "
            f"http-01 challenges and the redirect to HTTPS) is not listening: "
            f"{listener.get('error') or listener.get('state')}",
        )
        for listener in listeners
        if listener.get("state") != "listening"
    ]


def _validity_findings(app: Appliance, addresses: Sequence[AddressView]) -> list[Finding]:
    """The assigned certificates and their chains: what a browser checks first."""
    secured: dict[int, list[str]] = {}
    for address in addresses:
        secured.setdefault(address.certificate_id, []).append(address.address)
    now, infos, found = app.now(), RowInfoCache(), []
    with app.store.reading() as repository:
        rows = repository.certificates_by_id(secured)
        for certificate_id, where in secured.items():
            row = rows.get(certificate_id)
            if row is None:
                continue  # deleted since the addresses were read
            chain = chain_rows(row, repository.certificate, repository.certificate_by_fingerprint)
            leaf = infos(row)
            on = ", ".join(where)
            for link, info in [(row, leaf), *((link, infos(link)) for link in chain)]:
                whose = (
                    f"the certificate {row.friendly_name!r}"
                    if link is row
                    else f"the chain certificate {info.subject!r} of {row.friendly_name!r}"
                )
                found += [
                    Finding(
                        *_VALIDITY_FINDINGS[warning.code],
                        f"{whose}, presented on {on}, {warning.message}",
                    )
                    for warning in validity_warnings(info, now)
                ]
    return found


#: The validity warnings of a presented certificate, as findings.
_VALIDITY_FINDINGS = {
    WarningCode.EXPIRED: (Severity.ERROR, FindingCode.CERTIFICATE_EXPIRED),
    WarningCode.NOT_YET_VALID: (Severity.ERROR, FindingCode.CERTIFICATE_NOT_YET_VALID),
    WarningCode.EXPIRING_SOON: (Severity.WARNING, FindingCode.CERTIFICATE_EXPIRING),
}


def _hostname_findings(addresses: Sequence[AddressView]) -> list[Finding]:
    """A hostname of an address its certificate does not cover: a browser that connects by
    that name refuses the certificate now."""
    return [
        Finding(
            Severity.ERROR,
            FindingCode.HOSTNAME_NOT_COVERED,
            f"{address.address}: {coverage_note(address)}",
        )
        for address in addresses
        if address.hostnames_not_covered
    ]


#: The notices a finding names when several failed with one answer; the rest are counted.
_NOTICES_NAMED = 5


def _notice_findings(app: Appliance) -> list[Finding]:
    """Expiry notices whose send failed (retried at the next check): the relay's answer, one
    finding per answer (a relay that was down failed every notice of the check: one fault,
    not forty warnings)."""
    by_error: dict[str, list[Notice]] = {}
    for notice in unsent_notices(app, include_due=False):
        if notice.state == "failed":
            by_error.setdefault(notice.error or "", []).append(notice)
    findings = []
    for error, failed in by_error.items():
        if len(failed) == 1:
            [notice] = failed
            said = (
                f"the expiry notice for {notice.friendly_name!r} ({notice.when}) could not be "
                f"sent ({notice.attempts} attempt(s); retried at the next check)"
            )
        else:
            named = ", ".join(
                f"{notice.friendly_name!r} ({notice.when})" for notice in failed[:_NOTICES_NAMED]
            )
            more = len(failed) - _NOTICES_NAMED
            named += f" and {more} more" if more > 0 else ""
            said = (
                f"{len(failed)} expiry notices could not be sent ({named}; retried at the "
                "next check)"
            )
        findings.append(Finding(Severity.WARNING, FindingCode.NOTICE_NOT_SENT, f"{said}: {error}"))
    findings += [
        Finding(
            Severity.WARNING,
            FindingCode.NOTICE_NOT_SENT,
            f"the expiry notice for {notice.friendly_name!r} ({notice.when}) went, but not to "
            f"every administrator: {notice.error}",
        )
        for notice in partly_sent_notices(app)
    ]
    return findings


def _renewal_findings(app: Appliance) -> list[Finding]:
    return [
        Finding(
            Severity.WARNING,
            FindingCode.ACME_RENEWAL_FAILED,
            f"the ACME certificate {order.friendly_name!r} (certificate "
            f"{order.certificate_id}): {order.renewal_failure}",
        )
        for order in failing_renewals(app)
    ]


def node_not_alive(app: Appliance, address: AddressView) -> Finding | None:
    """What Status will say of ``address``, just pinned, when no node serves it (its node is
    lost, stopped or has never run): for the face that pinned it to say at once."""
    found = _pinned_findings([address], list_nodes(app))
    return found[0] if found else None


def _pinned_findings(
    addresses: Sequence[AddressView], cluster: Sequence[NodeView]
) -> list[Finding]:
    """An address pinned to a node that is not alive: no node listens on it. An error when
    that node ran before (stopped, lost: clients that reached the address fail now); a
    warning when it never ran here (provisioned before its first start, or mistyped)."""
    states = {node.name: node for node in cluster}
    found: list[Finding] = []
    for address in addresses:
        if address.node is None:
            continue
        node = states.get(address.node)
        if node is not None and node.alive:
            continue
        if node is None:
            severity, why = Severity.WARNING, "which has never run on this store"
        elif node.state is NodeState.STOPPED:
            severity, why = Severity.ERROR, f"which stopped at {format_time(node.last_seen)}"
        else:
            severity = Severity.ERROR
            why = f"which is lost (last heartbeat at {format_time(node.last_seen)})"
        found.append(
            Finding(
                severity,
                FindingCode.NODE_NOT_ALIVE,
                f"{address.address} is pinned to node {address.node!r}, {why}: no node serves "
                f"it. Start that node, or let another serve it ('certgate ip set "
                f"{address.address} --node NAME' or '--floating')",
            )
        )
    return found


def _holding_findings(
    addresses: Sequence[AddressView], cluster: Sequence[NodeView]
) -> list[Finding]:
    """A floating address that no alive node holds: every node listens on it (bound with
    IP_FREEBIND), but it is on none of their hosts, so no client reaches it. On a failover
    pair, keepalived/VRRP (or the cloud) gave it to nobody; on one appliance, it is not an
    address of the host (mistyped, or not configured yet). Only where the nodes' heartbeats
    say (``held``); the moment a node has it, its next heartbeat (5 s) ends the finding."""
    said: dict[str, list[bool]] = {}
    for node in cluster:
        if node.alive:
            for listener in node.listeners:
                if listener.held is not None:
                    said.setdefault(listener.address, []).append(listener.held)
    return [
        Finding(
            Severity.ERROR,
            FindingCode.NOT_HELD,
            f"{address.address} is floating and every node listens on it, but no node holds "
            "it (it is on none of their hosts): clients cannot reach it. Check what moves it "
            "(keepalived/VRRP, the cloud's floating IP) or that it is one of the hosts' "
            "addresses",
        )
        for address in addresses
        if address.node is None and said.get(address.address) and not any(said[address.address])
    ] + _held_twice(addresses, cluster)


def _held_twice(addresses: Sequence[AddressView], cluster: Sequence[NodeView]) -> list[Finding]:
    """A floating address that alive nodes on two hosts or more hold at once: both hosts
    answer ARP for it (a failover pair whose keepalived/VRRP instances cannot hear each
    other), so each client reaches either, and connections break when the answer flips.
    Hosts are told apart by their boot id (two clones may share a name), else by name; nodes
    whose host is not recorded (older ones) are not counted. A loopback address (127.0.0.1,
    which ``certgate init`` configures) is every host's own: held everywhere, by no fault."""
    holders: dict[str, dict[str, list[NodeView]]] = {}  # address -> host -> nodes
    for node in cluster:
        host = node.boot_id or node.host
        if host is not None:
            for held in node.holds:
                holders.setdefault(held, {}).setdefault(host, []).append(node)
    found: list[Finding] = []
    for address in addresses:
        hosts = holders.get(address.address, {})
        loopback = ipaddress.ip_address(address.address).is_loopback  # each host's own
        if address.node is None and len(hosts) > 1 and not loopback:
            held_by = ", ".join(
                f"node {node.name!r} on {node.host!r}"
                + (f" (boot {node.boot_id[:8]})" if node.boot_id else "")
                for holding in hosts.values()
                for node in holding
            )
            found.append(
                Finding(
                    Severity.ERROR,
                    FindingCode.HELD_TWICE,
                    f"{address.address} is floating and held on {len(hosts)} hosts at once "
                    f"({held_by}): each client reaches either, and connections break when "
                    "the address flips. Check that what moves it (keepalived/VRRP, the "
                    "cloud's floating IP) gives it to one host only",
                )
            )
    return found


def _node_findings(cluster: Sequence[NodeView], serving: ServeReport | None) -> list[Finding]:
    """Other nodes of the cluster: lost ones, and drift (this data directory's own serve is
    judged above, from what it publishes)."""
    found: list[Finding] = []
    local = serving.node if serving is not None else None
    for node in cluster:
        if node.state is NodeState.LOST:
            found.append(
                Finding(
                    Severity.WARNING,
                    FindingCode.NODE_LOST,
                    f"node {node.name!r} is not alive: its last heartbeat was at "
                    f"{format_time(node.last_seen)} and it did not stop cleanly",
                )
            )
            continue
        if node.name == local:
            continue
        if node.alive:
            found += _http_findings(map(vars, node.http_listeners), node.name)
        if node.master_key_stale:
            found.append(
                Finding(
                    Severity.ERROR,
                    FindingCode.NODE_MASTER_KEY_STALE,
                    f"node {node.name!r} runs with "
                    + (
                        f"generation {node.master_key_generation} of the master key"
                        if node.master_key_generation is not None
                        else "a master key that is not the store's"
                    )
                    + f", not the current one: it loads no change until the new key is copied "
                    f"to it and installed there ('{INSTALL}')",
                )
            )
        found.extend(
            Finding(
                Severity.WARNING,
                FindingCode.NODE_DRIFT,
                f"node {node.name!r} presents "
                + (
                    f"another certificate ({drift.presented_fingerprint[:16]})"
                    if drift.presented_fingerprint
                    else "nothing"
                )
                + f" on {drift.address} instead of the assigned {drift.assigned_name!r}: "
                "a change is applied within seconds; if this stays, see that node's log",
            )
            for drift in node.drift
        )
    return found


def _key_findings(app: Appliance) -> list[Finding]:
    """This node's master key, when the store is sealed with another (a rotation made on
    another node): it loads nothing new until the new key is installed."""
    problem = master_key.problem(app)
    if problem is None:
        return []
    return [Finding(Severity.ERROR, FindingCode.MASTER_KEY_STALE, str(problem))]
