"""Networking's "Test": what an address really serves, seen as a browser sees it.

For each name a client would use (the given hostname, else the hostnames stored for the
address, else each DNS name of the address's certificate, or none when it has none), one
real TLS handshake with that name as SNI, then:
the chain presented, whether it validates to a root of certgate's store or of the system
trust store (pyca/cryptography's verifier), whether the leaf covers the name, the days left,
the protocol and cipher agreed. Nothing listening, a refused or stalled handshake are results
too. Blocking (network and verification): faces call it from a thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509

from certgate.limits import HOSTNAMES_PER_ADDRESS_MAX
from certgate.pki import trust
from certgate.pki.certinfo import read_certificate
from certgate.pki.names import client_hostname
from certgate.service.appliance import Appliance
from certgate.service.networking import configured_address, normalise_address
from certgate.service.serving import read_status
from certgate.service.stored import stored_certificate
from certgate.service.tls_settings import get_settings
from certgate.tls.probe import Presented, ProbeFailure, probe

#: Seconds for the connection and for each step of the handshake: an address that does not
#: answer within it is reported as not answering.
PROBE_TIMEOUT = 5.0
#: The most names tested in one go (one handshake each).
MAX_NAMES = HOSTNAMES_PER_ADDRESS_MAX
#: Seconds one test may take in all: names not reached by then are reported untested, so a
#: page or API call never waits for twenty stalled handshakes in a row.
TEST_DEADLINE = 30.0


class TrustStore(StrEnum):
    """Where the root a chain validates to was found."""

    STORE = "certgate store"
    SYSTEM = "system trust store"


@dataclass(frozen=True)
class PresentedCertificate:
    subject: str
    issuer: str
    fingerprint_sha256: str
    not_after: dt.datetime
    in_store: bool


@dataclass(frozen=True)
class NameTest:
    """One handshake, with ``server_name`` as SNI (None: no SNI sent)."""

    server_name: str | None
    checked_name: str  # what the certificate must cover: the SNI, or the address itself
    connected: bool
    error: str | None  # why there was no handshake
    protocol: str | None
    cipher: str | None
    chain: tuple[PresentedCertificate, ...]
    presents_assigned: bool | None  # the leaf is the address's assigned certificate
    name_covered: bool | None
    trusted_by: TrustStore | None
    trust_error: str | None
    days_left: int | None
    browser_accepts: bool
    verdict: str


@dataclass(frozen=True)
class AddressTest:
    address: str
    port: int
    certificate_id: int  # assigned to the address
    certificate_name: str
    results: tuple[NameTest, ...]


def probe_address(
    app: Appliance,
    text: str,
    hostname: str | None = None,
    port: int | None = None,
    timeout: float = PROBE_TIMEOUT,
    deadline: float = TEST_DEADLINE,
) -> AddressTest:
    """Test ``text``, a configured address, on ``port`` (default: the port a running
    ``certgate serve`` listens on for it, else the HTTPS port of the TLS settings).

    Only the appliance's own addresses: the appliance is no client of other hosts, and
    connecting wherever a caller says would make it a port scanner of its network."""
    address = normalise_address(text)
    wanted = client_hostname(hostname) if hostname is not None else None
    with app.store.reading() as repository:
        row = configured_address(repository, address)
        assigned = repository.certificate(row.certificate_id)
        assert assigned is not None  # a foreign key: an address always has its certificate
        roots = [stored_certificate(r) for r in repository.self_issued_cas()]
        leaf, assigned_id = stored_certificate(assigned), assigned.id
        assigned_fingerprint = assigned.fingerprint
        assigned_name = assigned.friendly_name
        stored = list(row.hostnames)
    names: list[str | None] = [None]
    if wanted is not None:
        names = [wanted]
    elif stored:
        names = list(stored[:MAX_NAMES])
    else:
        dns = [name for name in trust.names_of(leaf) if not _is_ip(name)]
        names = list(dns[:MAX_NAMES]) or [None]
    port = port or _serving_port(app, address) or get_settings(app).https_port
    handshakes: list[tuple[str | None, Presented | ProbeFailure]] = []
    ends = time.monotonic() + deadline
    for name in names:
        last = handshakes[-1][1] if handshakes else None
        left = ends - time.monotonic()
        # Not reached for one name, not reached for any: no second wait for each name.
        if isinstance(last, ProbeFailure) and not last.reached:
            handshakes.append((name, last))
        elif left <= 0:
            untested = f"not tested: the test stops after {deadline:g} s in all"
            handshakes.append((name, ProbeFailure(untested)))
        else:
            handshakes.append((name, probe(address, port, name, min(timeout, left))))
    presented = {
        _fingerprint(der)
        for _, outcome in handshakes
        if not isinstance(outcome, ProbeFailure)
        for der in outcome.chain
    }
    with app.store.reading() as repository:
        known = set(repository.certificate_ids_with_fingerprints(sorted(presented)))
    now = app.clock()
    results = tuple(
        _judge(address, name, outcome, roots, known, assigned_fingerprint, now)
        for name, outcome in handshakes
    )
    return AddressTest(address, port, assigned_id, assigned_name, results)


def _judge(
    address: str,
    name: str | None,
    outcome: Presented | ProbeFailure,
    store_roots: Sequence[x509.Certificate],
    known: set[str],
    assigned_fingerprint: str | None,
    now: dt.datetime,
) -> NameTest:
    checked = name or address
    if isinstance(outcome, ProbeFailure) or not outcome.chain:
        reason = (
            outcome.reason
            if isinstance(outcome, ProbeFailure)
            else f"{address} presented no certificate"
        )
        return NameTest(
            name,
            checked,
            False,
            reason,
            None,
            None,
            (),
            None,
            None,
            None,
            None,
            None,
            False,
            f"A browser cannot connect: {reason}.",
        )
    try:
        certificates = [x509.load_der_x509_certificate(der) for der in outcome.chain]
    except ValueError as error:
        reason = f"{address} presented a certificate that cannot be read ({error})"
        return NameTest(
            name, checked, True, reason, outcome.protocol, outcome.cipher, (), None, None,
            None, None, None, False, f"A browser refuses it: {reason}.",
        )  # fmt: skip
    chain = tuple(
        _presented(c, der, known) for c, der in zip(certificates, outcome.chain, strict=True)
    )
    leaf, intermediates = certificates[0], certificates[1:]
    covered = trust.covers(leaf, checked)
    # Trust on its own: checked for a name the leaf does cover, so a name mismatch shows
    # as a mismatch and not as "not trusted".
    trust_name = checked if covered else next(iter(trust.names_of(leaf)), checked)
    trusted_by: TrustStore | None = None
    refusals: list[str] = []
    for label, roots in (
        (TrustStore.STORE, store_roots),
        (TrustStore.SYSTEM, trust.system_roots()),
    ):
        refusal = trust.verify(leaf, intermediates, roots, trust_name, now)
        if refusal is None:
            trusted_by = label
            break
        if roots:
            refusals.append(f"{label}: {refusal}")
    trust_error = None if trusted_by else _distrust(leaf, refusals)
    days_left = (chain[0].not_after - now).days
    problems = []
    if not covered:
        problems.append(f"the certificate does not cover {checked}")
    if trusted_by is None:
        problems.append(f"the certificate is not trusted ({trust_error})")
    accepts = not problems
    verdict = (
        f"A browser connecting to {checked} accepts it (trusted by the {trusted_by}, "
        f"{days_left} days left)."
        if accepts
        else "A browser warns: " + "; ".join(problems) + "."
    )
    return NameTest(
        name,
        checked,
        True,
        None,
        outcome.protocol,
        outcome.cipher,
        chain,
        chain[0].fingerprint_sha256 == assigned_fingerprint if assigned_fingerprint else None,
        covered,
        trusted_by,
        trust_error,
        days_left,
        accepts,
        verdict,
    )


def _distrust(leaf: x509.Certificate, refusals: Sequence[str]) -> str:
    """Why no store's root vouches for ``leaf``, first as an administrator would say it."""
    if leaf.issuer == leaf.subject:  # the verifier's words add nothing to this
        return "it is self-signed and no trust store holds it as a root"
    first = "its chain does not lead to a root of the certgate store or the system trust store"
    return f"{first} ({'; '.join(refusals)})" if refusals else first


def _presented(certificate: x509.Certificate, der: bytes, known: set[str]) -> PresentedCertificate:
    info = read_certificate(certificate, der)
    return PresentedCertificate(
        info.subject,
        info.issuer,
        info.fingerprint_sha256,
        info.not_after,
        info.fingerprint_sha256 in known,
    )


def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _is_ip(name: str) -> bool:
    return isinstance(trust.subject_for(name), x509.IPAddress)


def _serving_port(app: Appliance, address: str) -> int | None:
    """The port a running ``certgate serve`` listens on for ``address`` (it may have been
    started with ``--https-port``)."""
    report = read_status(app)
    for listener in report.listeners if report else ():
        port = listener.get("port")
        if listener.get("address") == address and isinstance(port, int):
            return port
    return None
