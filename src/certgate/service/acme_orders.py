"""Security > ACME, the orders: certificates ordered from the account's CA.

An order is answered by the appliance itself: the key authorizations go into the store, and
the running ``certgate serve`` (any node of a cluster) answers them, whichever process placed
the order: HTTP-01 on its plain HTTP listener (``/.well-known/acme-challenge/TOKEN``),
TLS-ALPN-01 in its TLS front end (a client offering ALPN ``acme-tls/1`` gets the name's
challenge certificate on the HTTPS port). The issued certificate and its chain are imported
like any other (key linked, chain automatic) under the order's name, and assigned to the
addresses asked for.

Talking to the CA blocks (seconds to a minute): the faces call these on a thread.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certgate.errors import (
    AcmeError,
    AcmeNotReadyError,
    DamagedRowError,
    NotFoundError,
    UnassignedCertificateError,
    UnconfirmedChangeError,
    ValidationError,
    problem_type,
)
from certgate.fields import item
from certgate.pki import tls_alpn
from certgate.pki.keys import DEFAULT_KEY_SPEC, KeySpec, generate_private_key
from certgate.pki.names import dns_name_to_ascii, ends_in_number, is_ip_address
from certgate.service import guard, imports, networking, nodes
from certgate.service.acme_account import unseal_account_key
from certgate.service.appliance import Appliance
from certgate.service.certificates import checked_friendly_name
from certgate.service.replacement import apply_replacement, plan_replacement
from certgate.service.serving import read_status
from certgate.service.stored import stored_certificate
from certgate.service.tls_settings import read_settings
from certgate.store import acme as queries
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.models import AcmeOrderRow, utcnow
from certgate.store.repository import Repository
from certgate.tls import probe as tls_probe
from certgate.tls.policy import ACME_TLS_ALPN

if TYPE_CHECKING:  # imported when the CA is talked to: the acme library and requests cost
    # every other command ~0.15 s
    from certgate.service.acme_ca import Challenge

log = logging.getLogger("certgate.acme")
#: How long an order may wait for the CA to validate and issue.
ORDER_DEADLINE = dt.timedelta(seconds=90)
#: An order pending this long was left by a process that stopped (killed, or a serve
#: restarted) before it ended: its challenges would be answered for ever.
ABANDONED_AFTER = 2 * ORDER_DEADLINE
DOMAINS_MAX = 100  # Let's Encrypt's limit of names per certificate


class ChallengeType(StrEnum):
    """How the CA checks that the appliance answers for a name."""

    HTTP_01 = "http-01"  # plain HTTP on port 80: certgate serve's HTTP listener
    TLS_ALPN_01 = "tls-alpn-01"  # ALPN acme-tls/1 on port 443: certgate serve's TLS front end


@dataclass(frozen=True)
class OrderView:
    id: int
    friendly_name: str
    domains: tuple[str, ...]
    key: str
    challenge: str
    assign: tuple[str, ...]
    state: str
    error: str | None
    error_document: str | None
    certificate_id: int | None
    certificate_fingerprint: str | None
    directory_url: str
    order_url: str | None
    created_by: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    renewal_of: int | None = None
    renewed_by: int | None = None
    renewal_attempts: int = 0
    renewal_next_at: dt.datetime | None = None
    renewal_error: str | None = None
    renewal_suggested_at: dt.datetime | None = None

    @property
    def renewal_failure(self) -> str | None:
        """The last renewal's failure as the CLI, Status and the ACME page say it; None
        while the renewals succeed."""
        if self.renewal_error is None:
            return None
        next_try = (
            f"{self.renewal_next_at:%Y-%m-%d %H:%M} UTC" if self.renewal_next_at else "not planned"
        )
        return (
            f"renewal failed {self.renewal_attempts} time(s); next try {next_try}: "
            f"{self.renewal_error}"
        )


def order_view(row: AcmeOrderRow) -> OrderView:
    return OrderView(
        id=row.id,
        friendly_name=row.friendly_name,
        domains=tuple(row.domains),
        key=row.key_spec,
        challenge=row.challenge,
        assign=tuple(row.assign),
        state=row.state,
        error=row.error,
        error_document=row.error_document,
        certificate_id=row.certificate_id,
        certificate_fingerprint=row.certificate_fingerprint,
        directory_url=row.directory_url,
        order_url=row.order_url,
        created_by=row.created_by,
        created_at=row.created_at,
        finished_at=row.finished_at,
        renewal_of=row.renewal_of,
        renewed_by=row.renewed_by,
        renewal_attempts=row.renewal_attempts or 0,
        renewal_next_at=row.renewal_next_at,
        renewal_error=row.renewal_error,
        renewal_suggested_at=row.renewal_suggested_at,
    )


def list_orders(app: Appliance) -> list[OrderView]:
    with app.store.reading() as repository:
        return [order_view(row) for row in queries.orders(repository)]


def show_order(app: Appliance, order_id: int) -> OrderView:
    with app.store.reading() as repository:
        row = queries.order(repository, order_id)
        if row is None:
            raise NotFoundError(f"there is no ACME order {order_id}")
        return order_view(row)


def _identifiers(values: Sequence[str]) -> list[str]:
    """The names to order, as the CA is sent them: DNS names as A-labels, IP addresses
    (RFC 8738) in their canonical text form (IPv6 as RFC 5952 writes it)."""
    names: list[str] = []
    for index, value in enumerate(values):
        if not value.strip():
            continue
        name = _identifier(value, item("domains", index))
        if name not in names:
            names.append(name)
    if not names:
        raise ValidationError("domains", "name at least one DNS name or IP address")
    if len(names) > DOMAINS_MAX:
        raise ValidationError("domains", f"at most {DOMAINS_MAX} names")
    return names


def _identifier(value: str, field: str) -> str:
    text = value.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            raise ValidationError(field, f"{value!r}: an address with a zone is not orderable")
        return str(address)
    name = dns_name_to_ascii(text, field)
    if name.startswith("*."):
        raise ValidationError(
            field,
            f"{value!r} is a wildcard: neither http-01 (RFC 8555 8.3) nor tls-alpn-01 "
            "(RFC 8737 3) can prove one",
        )
    if ends_in_number(name):
        raise ValidationError(
            field,
            f"{value!r} is neither a DNS name (its last label is a number) nor an IP address "
            "as written (four decimal numbers, no leading zeros, or IPv6)",
        )
    return name


def responder_problem(app: Appliance, kind: ChallengeType) -> str | None:
    """Why no ``certgate serve`` would answer the CA's challenge now, or None.

    The serve of this data directory answers when its status file lists a listener of the
    kind listening (plain HTTP for http-01, HTTPS for tls-alpn-01); in a cluster, so does any
    other live node whose heartbeat lists one (a plain HTTP listener that failed to bind
    there does not count; a node of an earlier version lists none, and counts when the HTTP
    port is set). This serve's own heartbeat does not count: its status file is
    written first.
    """
    http = kind is ChallengeType.HTTP_01
    report = read_status(app)
    if report is not None and _listening(report.http_listeners if http else report.listeners):
        return None
    own = report.node if report is not None else None
    alive = [node for node in nodes.list_nodes(app) if node.alive and node.name != own]
    if any(
        _listening(map(vars, node.http_listeners if http else node.listeners)) for node in alive
    ):
        return None
    # A node of an earlier version does not say: it listens on plain HTTP if the port is set.
    untold = [
        node for node in alive if not node.http_said and _listening(map(vars, node.listeners))
    ]
    if http and untold and _http_port(app):
        return None
    nothing = (
        f"no certgate serve is running on this appliance (nor on a live node of its cluster), "
        f"so nothing would answer the CA's {kind.value} challenge"
    )
    if kind is ChallengeType.TLS_ALPN_01:
        if report is None and not alive:
            return f"{nothing} on the HTTPS port: start 'certgate serve' and order again"
        return (
            "certgate serve listens on no address, so nothing would answer the CA's "
            "tls-alpn-01 challenge on the HTTPS port: add the address the names resolve to "
            "('certgate ip add ADDR') and order again"
        )
    if report is None and not alive:
        return (
            f"{nothing}: start 'certgate serve --http-port 80' (or set the HTTP port with "
            "'certgate tls set --http-port 80') and order again, or order by tls-alpn-01"
        )
    failed = [
        listener
        for listener in [
            *(report.http_listeners if report is not None else []),
            *(vars(listener) for node in alive for listener in node.http_listeners),
        ]
        if listener.get("state") != "listening"
    ]
    if failed:
        first = failed[0]
        return (
            f"certgate serve's plain HTTP listener cannot listen ({first.get('address')} port "
            f"{first.get('port')}: {first.get('error')}; see http-listener-failed in Diagnostic "
            "Status), so nothing would answer the CA's http-01 challenge: free the port or set "
            "another HTTP port ('certgate tls set --http-port N'), or order by tls-alpn-01"
        )
    return (
        "certgate serve runs without its plain HTTP listener, so nothing would answer the "
        "CA's http-01 challenge: set the HTTP port with 'certgate tls set --http-port 80' "
        "(or start 'certgate serve --http-port 80') and order again, or order by tls-alpn-01"
    )


def _listening(listeners: Iterable[Mapping[str, object]]) -> bool:
    return any(listener.get("state") == "listening" for listener in listeners)


def _http_port(app: Appliance) -> int:
    with app.store.reading() as repository:
        return read_settings(repository).http_port


def place_order(
    app: Appliance,
    *,
    name: str,
    domains: Sequence[str],
    key: str | KeySpec = DEFAULT_KEY_SPEC,
    assign: Sequence[str] = (),
    challenge: str = ChallengeType.HTTP_01,
    actor: Actor = APPLIANCE,
    deadline: dt.timedelta = ORDER_DEADLINE,
    renewal_of: int | None = None,
    confirm: bool = False,
) -> OrderView:
    """Order a certificate for ``domains`` and import it as ``name`` (assigned to ``assign``).

    The assignment goes through the guard before the order is placed: a change of the root
    the addresses' chains end at, or their hostnames not covered by the names, is refused
    unless ``confirm`` (``guard.check_order``). The order is stored before the CA is asked,
    and its outcome after: issued (with the certificate), or refused with the CA's problem
    document, which is then also raised as an ``AcmeError`` naming the order.
    """
    from certgate.service import acme_ca

    friendly_name = checked_friendly_name(name)
    names = _identifiers(domains)
    spec = key if isinstance(key, KeySpec) else KeySpec.parse(key)
    try:
        kind = ChallengeType(challenge)
    except ValueError:
        offered = ", ".join(kind.value for kind in ChallengeType)
        raise ValidationError(
            "challenge", f"{challenge!r} is not offered; choose one of {offered}"
        ) from None
    addresses = [
        networking.normalise_address(text, item("assign", index))
        for index, text in enumerate(assign)
    ]
    with app.store.reading() as repository:
        account = queries.account(repository)
        if account is None:
            raise AcmeNotReadyError(
                "there is no ACME account yet: register one first with 'certgate acme account "
                "set --directory URL --email ADDR --agree-tos' (or on Security > ACME)"
            )
        rows = [networking.configured_address(repository, address) for address in addresses]
        if rows:
            ca_root = _ca_root(repository, account.directory_url)
            guard.check_order(
                repository,
                rows,
                friendly_name,
                names,
                account.directory_url,
                ca_root,
                confirm=confirm,
            )
        key_pem = unseal_account_key(repository, app.sealer, account)
        server = acme_ca.Server(account.directory_url, account.ca_bundle)
        account_url, document = account.account_url, dict(account.registration)
        replaces = _certificate_der(repository, renewal_of, account.directory_url)
    problem = responder_problem(app, kind)
    if problem is not None:
        raise AcmeNotReadyError(problem)
    with app.store.transaction(actor) as repository:
        row = AcmeOrderRow(
            friendly_name=friendly_name,
            domains=names,
            key_spec=spec.value,
            challenge=kind.value,
            assign=addresses,
            state=queries.PENDING,
            directory_url=server.directory_url,
            created_by=actor.name,
            renewal_of=renewal_of,
        )
        repository.add(row)
        repository.flush()
        order_id = row.id
        repository.audit(
            AuditAction.ACME_ORDER, friendly_name, f"order {order_id} placed for {', '.join(names)}"
        )
    try:
        certificate_key = generate_private_key(spec)
        certificate_key_pem = certificate_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fullchain = acme_ca.order_certificate(
            server,
            key_pem,
            account_url,
            document,
            certificate_key_pem,
            names,
            kind.value,
            placed=lambda url: _placed(app, order_id, url),
            publish=lambda answers: _publish(app, order_id, kind, answers),
            deadline=dt.datetime.now(dt.UTC) + deadline,
            replaces=replaces,
        )
    except AcmeError as refused:
        # invalid: the CA refused it (its document says why); failed: it was never decided
        error = _explained(refused, names)
        state = queries.INVALID if error.document else queries.FAILED
        _finish(app, actor, order_id, state, error)
        failed = AcmeError(f"ACME order {order_id} failed: {error}", error.document)
        failed.retry_after = refused.retry_after
        raise failed from None
    except BaseException as error:
        _finish(app, actor, order_id, queries.FAILED, AcmeError(str(error) or repr(error)))
        raise
    return _issued(app, actor, order_id, certificate_key_pem, fullchain, confirm)


def _certificate_der(repository: Repository, order_id: int | None, directory: str) -> bytes | None:
    """The certificate of the order a renewal renews (which the new order replaces), when
    that order went to the CA at ``directory`` (no other CA knows it)."""
    old = queries.order(repository, order_id) if order_id is not None else None
    if old is None or old.certificate_id is None or old.directory_url != directory:
        return None
    certificate = repository.certificate(old.certificate_id)
    if certificate is None:
        return None
    try:
        stored_certificate(certificate)
    except DamagedRowError:  # the CA cannot be told which one it replaces: ordered anew
        return None
    return certificate.der


#: The CA's problem types for an identifier it will not issue for (RFC 8555 6.7).
_REFUSED_IDENTIFIER = (
    "urn:ietf:params:acme:error:rejectedIdentifier",
    "urn:ietf:params:acme:error:unsupportedIdentifier",
)


def _explained(error: AcmeError, names: Sequence[str]) -> AcmeError:
    """The CA's refusal, with what it most likely means when the order has IP addresses and
    the CA refused an identifier: many CAs issue for DNS names only (RFC 8738 is optional)."""
    addresses = [name for name in names if is_ip_address(name)]
    if not addresses or problem_type(error.document) not in _REFUSED_IDENTIFIER:
        return error
    explained = AcmeError(
        f"{error}; this CA may not issue certificates for IP addresses (RFC 8738) such as "
        f"{', '.join(addresses)}: order DNS names from it",
        error.document,
    )
    explained.retry_after = error.retry_after
    return explained


def _ca_root(repository: Repository, directory: str) -> guard.Root | None:
    """The root of the newest certificate the CA at ``directory`` issued here (still in the
    store), or None when there is none."""
    certificate_id = queries.latest_issued(repository, directory)
    certificate = repository.certificate(certificate_id) if certificate_id else None
    return guard.root_of(repository, certificate) if certificate else None


def _placed(app: Appliance, order_id: int, url: str) -> None:
    with app.store.transaction() as repository:
        row = queries.order(repository, order_id)
        assert row is not None
        row.order_url = url or None


def _publish(app: Appliance, order_id: int, kind: ChallengeType, answers: list[Challenge]) -> None:
    """The answers, committed before the CA is asked to look (any serve process answers
    them: http-01 read by token when asked for; tls-alpn-01 handed to every front end by the
    revision this commit moves)."""
    with app.store.transaction() as repository:
        if kind is ChallengeType.TLS_ALPN_01:
            queries.publish_tls(
                repository,
                order_id,
                [(answer.identifier, answer.key_authorization) for answer in answers],
            )
        else:
            queries.publish(
                repository,
                order_id,
                [(answer.token, answer.key_authorization) for answer in answers],
            )
    if kind is ChallengeType.TLS_ALPN_01:
        _await_tls_answers(app, answers)


#: How long an order waits for the serves it can reach to answer its tls-alpn-01 challenges
#: before the CA is asked to look.
ANSWER_WAIT = 10.0
_PROBE_TIMEOUT = 2.0


def _await_tls_answers(app: Appliance, answers: list[Challenge]) -> None:
    """A front end takes the challenges when its serve sees the commit (tens of milliseconds
    later), and a CA asked to look before then finds the name refused (Pebble looks at once).
    So the CA is asked once each serve this process can reach (this data directory's, each
    live node) presents every name's challenge certificate: one listening address each
    (every address answers the same), as many answers in a row as it has workers (each follows
    the store by itself; the kernel spreads connections over them). One that does not answer
    within ``ANSWER_WAIT`` is logged, and the CA decides."""
    report = read_status(app)
    targets: dict[tuple[str, int], int] = {}  # (address, port) -> answers in a row needed
    if report is not None:
        for listener in report.listeners:
            if listener.get("state") == "listening":
                targets[str(listener["address"]), int(str(listener["port"]))] = report.workers
                break
    for node in nodes.list_nodes(app):
        listening = [entry for entry in node.listeners if entry.state == "listening"]
        if node.alive and listening:
            targets.setdefault((listening[0].address, listening[0].port), 1)
    deadline = time.monotonic() + ANSWER_WAIT
    for (address, port), needed in targets.items():
        for answer in answers:
            in_a_row = 0
            while in_a_row < needed:
                presented = tls_probe.probe(
                    address,
                    port,
                    tls_alpn.server_name(answer.identifier),
                    _PROBE_TIMEOUT,
                    (ACME_TLS_ALPN,),
                )
                if isinstance(presented, tls_probe.Presented) and tls_alpn.answers(
                    presented.chain[:1], answer.identifier, answer.key_authorization
                ):
                    in_a_row += 1
                    continue
                in_a_row = 0
                if time.monotonic() >= deadline:
                    log.warning(
                        "%s:%d does not answer the tls-alpn-01 challenge of %s yet; asking "
                        "the CA to look anyway",
                        address,
                        port,
                        answer.identifier,
                    )
                    return
                time.sleep(0.02)


def _finish(
    app: Appliance,
    actor: Actor,
    order_id: int,
    state: str,
    error: AcmeError | None,
    *,
    if_pending: bool = False,
) -> OrderView:
    """End the order in ``state``, its challenges withdrawn; ``if_pending``: only an order
    still pending (one that ended meanwhile is left as it is)."""
    with app.store.transaction(actor) as repository:
        row = queries.order(repository, order_id, for_update=if_pending)
        assert row is not None
        if if_pending and row.state != queries.PENDING:
            return order_view(row)
        queries.withdraw(repository, order_id)
        row.state = state
        row.finished_at = utcnow()
        if error is not None:
            row.error = str(error)
            row.error_document = error.document
        repository.audit(
            AuditAction.ACME_ORDER,
            row.friendly_name,
            f"order {order_id} {state}" + (f": {error}" if error is not None else ""),
        )
        return order_view(row)


def end_abandoned_orders(app: Appliance, now: dt.datetime | None = None) -> list[int]:
    """Fail the orders pending for longer than any order runs (``ABANDONED_AFTER``): the
    process that placed them stopped before they ended, so nothing withdrew their
    challenges, which every serve would otherwise answer for ever. Their ids."""
    before = (now or app.now()) - ABANDONED_AFTER
    with app.store.reading() as repository:
        abandoned = queries.pending_since(repository, before)
    said = AcmeError(
        "abandoned: the process that placed it stopped before the order ended; its "
        "challenges are withdrawn (order again)"
    )
    for order_id in abandoned:
        _finish(app, APPLIANCE, order_id, queries.FAILED, said, if_pending=True)
    return abandoned


def _issued(
    app: Appliance, actor: Actor, order_id: int, key_pem: bytes, fullchain: str, confirm: bool
) -> OrderView:
    """Import the certificate (with its key, under the order's name) and its chain, assign
    it where asked (``_assign_issued``), and record the order as valid. An issued certificate
    the guard keeps off its addresses stays imported, the order valid and unassigned, and the
    refusal is raised naming the certificate."""
    with app.store.reading() as repository:
        row = queries.order(repository, order_id)
        assert row is not None
        name, addresses, renewal_of = row.friendly_name, list(row.assign), row.renewal_of
    certificates = x509.load_pem_x509_certificates(fullchain.encode())
    leaf, chain = certificates[0], certificates[1:]
    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    files = [(f"acme-order-{order_id}.pem", key_pem + leaf_pem)]
    if chain_pem:
        files.append((f"acme-order-{order_id}-chain.pem", chain_pem))
    unassigned: UnconfirmedChangeError | None = None
    try:
        entries = imports.import_files(app, files, actor=actor, friendly_names={files[0][0]: name})
        [certificate] = [
            entry for entry in entries if entry.kind == "certificate" and entry.file == files[0][0]
        ]
        if certificate.id is None:
            raise AcmeError(f"the issued certificate could not be imported: {certificate.message}")
        if addresses:
            try:
                _assign_issued(app, actor, order_id, certificate.id, addresses, confirm)
            except UnconfirmedChangeError as error:
                unassigned = error
        if renewal_of is not None:
            _succeed(app, actor, renewal_of, order_id, certificate.id)
    except Exception as error:
        failed = error if isinstance(error, AcmeError) else AcmeError(str(error))
        _finish(app, actor, order_id, queries.FAILED, failed)
        raise
    said = None
    if unassigned is not None:
        listed = " ".join(addresses)
        said = (
            f"ACME order {order_id} issued certificate {certificate.id} ({name!r}), but it "
            f"was not assigned to {listed}: {unassigned.message.removesuffix(guard.CONFIRM_HINT)}"
            f"Assign it, once the clients are ready, with 'certgate ip assign {listed} "
            f"--cert {certificate.id} --confirm' (or on its Edit page)"
        )
    with app.store.transaction(actor) as repository:
        row = queries.order(repository, order_id)
        assert row is not None
        row.certificate_id = certificate.id
        row.certificate_fingerprint = certificate.fingerprint_sha256
        row.error = said
    view = _finish(app, actor, order_id, queries.VALID, None)
    if unassigned is not None and said is not None:
        raise UnassignedCertificateError(said, unassigned.concerns, certificate.id)
    return view


#: What an issued certificate may raise on its addresses unconfirmed: its chain, as the CA
#: hands it, ends short of the CA's root, which clients hold and this store need not.
_CA_CHAIN = (guard.ConcernCode.CHAIN_INCOMPLETE,)


def _assign_issued(
    app: Appliance,
    actor: Actor,
    order_id: int,
    certificate_id: int,
    addresses: Sequence[str],
    confirm: bool,
) -> None:
    """The issued certificate on the addresses the order named, through the guard in the
    transaction that moves them. What the order was asked to confirm passes with its
    confirmation, and the CA's chain ending short of its root passes anyway; anything the
    order could not foresee (the CA's root is not the one its earlier certificates end at,
    an address changed meanwhile, a certificate not valid now) is refused unless confirmed."""
    with app.store.transaction(actor) as repository:
        certificate = repository.certificate(certificate_id)
        assert certificate is not None
        rows = [networking.configured_address(repository, address) for address in addresses]
        moves = [guard.Move(row, certificate) for row in rows]
        concerns = guard.check_moves(repository, moves, confirm=True, now=app.now())
        asked = [concern for concern in concerns if concern.code not in _CA_CHAIN]
        if asked and not confirm:
            raise UnconfirmedChangeError(guard.refusal(asked), asked)
        for row in rows:
            row.certificate_id = certificate.id
        networking.record_assignment(
            repository, certificate, addresses, concerns, note=f" (ACME order {order_id})"
        )


def _succeed(
    app: Appliance, actor: Actor, old_order_id: int, new_order_id: int, new_certificate_id: int
) -> None:
    """The renewed certificate takes every address of the one it renews (one transaction,
    live), and the old order is marked renewed."""
    with app.store.transaction(actor) as repository:
        old = queries.order(repository, old_order_id)
        assert old is not None
        old_certificate = repository.certificate(old.certificate_id) if old.certificate_id else None
        new_certificate = repository.certificate(new_certificate_id)
        assert new_certificate is not None
        if old_certificate is not None and repository.ip_addresses_of(old_certificate.id):
            plan = plan_replacement(repository, old_certificate, new_certificate)
            # A renewal replaces the CA's certificate by the same CA's, unattended: the
            # guard's concerns (its chain ending short of the CA's root, a root the CA moved
            # to) are recorded in the audit event, not asked; refusing would let it expire.
            moves = [
                guard.Move(row, new_certificate)
                for row in repository.ip_addresses_of(old_certificate.id, for_update=True)
            ]
            confirmed = guard.check_moves(repository, moves, confirm=True, now=app.now())
            apply_replacement(repository, plan, confirmed)
        old.renewed_by = new_order_id
        repository.audit(
            AuditAction.ACME_ORDER,
            old.friendly_name,
            f"order {old_order_id} renewed by order {new_order_id}",
        )
