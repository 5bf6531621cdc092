"""The appliance's IP addresses, which certificate each one presents and which node serves it.

Every address has exactly one certificate (the factory certificate when added); one
certificate may secure several addresses; only a certificate whose private key is available
can be assigned. An address pinned to a node (``certgate serve --node NAME``) is served by
that node only; one without a node is floating: every node binds it (``IP_FREEBIND``), and
whichever node holds the address (keepalived/VRRP, a cloud's floating IP) serves it. A single
appliance names no node: its addresses are all floating.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from certgate.errors import (
    ConfirmationRequiredError,
    ConflictError,
    NotFoundError,
    UnknownNodeError,
    ValidationError,
)
from certgate.fields import item
from certgate.limits import HOSTNAMES_PER_ADDRESS_MAX, NODE_NAME_MAX
from certgate.pki.diagnostics import uncovered_hostnames
from certgate.pki.names import client_hostname
from certgate.service import guard
from certgate.service.appliance import Appliance
from certgate.service.keystore import require_key
from certgate.service.lookup import find_certificate
from certgate.service.stored import stored_certificate
from certgate.service.views import row_info
from certgate.store import nodes
from certgate.store.audit import APPLIANCE, Actor, AuditAction, certificate_target
from certgate.store.models import CertificateRow, IpAddressRow
from certgate.store.repository import Repository
from certgate.text import check_name


@dataclass(frozen=True)
class AddressView:
    address: str
    certificate_id: int
    certificate_name: str
    certificate_fingerprint: str
    is_factory_certificate: bool
    hostnames: list[str]  # the DNS names clients use to reach it (A-labels)
    hostnames_not_covered: list[str]  # those its certificate does not cover
    node: str | None  # the node that serves it; None: floating, every node serves it

    def served_by(self, node: str | None) -> bool:
        """Whether a ``certgate serve`` running as ``node`` listens on this address."""
        return self.node is None or self.node == node


def normalise_address(text: str, field: str = "address") -> str:
    """The canonical text of an IPv4 or IPv6 address (so ``::1`` and ``0::1`` are one)."""
    return str(_parsed(text.strip(), field))


def _parsed(text: str, field: str = "address") -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValidationError(field, f"{text!r} is not an IPv4 or IPv6 address") from None


#: How the faces show an address without a node.
FLOATING_TEXT = "every node (floating)"

#: The address ``certgate init`` configures when there is none: the pages answer at once.
LOOPBACK = "127.0.0.1"

_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def check_address(address: str) -> None:
    """Refuse what is not one address of this host a listener can serve on.

    A wildcard (``0.0.0.0``, ``::``) would put the admin interface on every interface of
    the host, present one certificate on all of them and take the port from every other
    address; multicast and broadcast addresses cannot be listened on; an IPv6 link-local
    address is ambiguous without its interface (``fe80::1%eth0``).
    """
    ip = _parsed(address)  # a stored row that is none (damaged) stops only itself
    reason = None
    if ip.is_unspecified:
        reason = "is the wildcard address (every interface); name one address of this host"
    elif ip.is_multicast:
        reason = "is a multicast address; name a unicast address of this host"
    elif ip == _LIMITED_BROADCAST:
        reason = "is the broadcast address; name a unicast address of this host"
    elif isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        reason = f"is an IPv4-mapped IPv6 address; add it as {ip.ipv4_mapped}"
    elif isinstance(ip, ipaddress.IPv6Address) and ip.is_link_local and not ip.scope_id:
        reason = "is a link-local address without its interface; write it as fe80::...%eth0"
    if reason is not None:
        raise ValidationError("address", f"{address} {reason}")


def _view(address: IpAddressRow, certificate: CertificateRow) -> AddressView:
    return AddressView(
        address.address,
        certificate.id,
        certificate.friendly_name,
        certificate.fingerprint,
        certificate.is_factory,
        list(address.hostnames),
        uncovered_hostnames(row_info(certificate), address.hostnames) if address.hostnames else [],
        address.node,
    )


def list_addresses(app: Appliance) -> list[AddressView]:
    with app.store.reading() as repository:
        rows = repository.ip_addresses()
        certificates = repository.certificates_by_id(row.certificate_id for row in rows)
        return [_view(row, certificates[row.certificate_id]) for row in rows]


def show_address(app: Appliance, text: str) -> AddressView:
    address = normalise_address(text)
    with app.store.reading() as repository:
        row = configured_address(repository, address)
        return _view(row, _certificate_of(repository, row))


def _certificate_of(repository: Repository, row: IpAddressRow) -> CertificateRow:
    certificate = repository.certificate(row.certificate_id)
    assert certificate is not None  # a foreign key: an address always has its certificate
    return certificate


def add_address(
    app: Appliance,
    text: str,
    actor: Actor = APPLIANCE,
    hostnames: Iterable[str] = (),
    node: str | None = None,
    *,
    confirm: bool = False,
) -> AddressView:
    """A new address is assigned to the factory default certificate, as the guide says;
    ``hostnames``: the DNS names clients will use to reach it; ``node``: the node that serves
    it (None: floating, every node). A node that has never run here only with ``confirm``
    (``UnknownNodeError``)."""
    address = normalise_address(text)
    check_address(address)
    names = checked_hostnames(hostnames)
    name = None if node is None else checked_node(node)
    with app.store.transaction(actor) as repository:
        if repository.ip_address(address) is not None:
            raise ConflictError(f"the address {address} is already configured")
        factory = repository.factory_certificate()
        if factory is None:
            raise ConflictError("the appliance has no factory certificate: run 'certgate init'")
        _require_known(repository, name, address, confirm)
        row = IpAddressRow(address=address, certificate_id=factory.id, hostnames=names, node=name)
        repository.add(row)
        pinned = _node_detail(name) if name is not None else ""
        detail = "; ".join(part for part in (_hostnames_detail(names), pinned) if part)
        repository.audit(AuditAction.ADDRESS_ADD, address, detail)
        return _view(row, factory)


def set_hostnames(
    app: Appliance, text: str, hostnames: Iterable[str], actor: Actor = APPLIANCE
) -> AddressView:
    """Replace the hostnames of an address (none: clear them). The warnings of the
    certificate it presents follow (``hostname-not-covered``)."""
    return change_address(app, text, actor, hostnames=hostnames)


def set_node(
    app: Appliance,
    text: str,
    node: str | None,
    actor: Actor = APPLIANCE,
    *,
    confirm: bool = False,
) -> AddressView:
    """Pin an address to ``node`` (only that node listens on it), or make it floating
    (None: every node does). The nodes follow at once, as they follow an assignment."""
    return change_address(app, text, actor, node=node, floating=node is None, confirm=confirm)


def change_address(
    app: Appliance,
    text: str,
    actor: Actor = APPLIANCE,
    *,
    hostnames: Iterable[str] | None = None,
    node: str | None = None,
    floating: bool = False,
    confirm: bool = False,
) -> AddressView:
    """Change what is given, in one transaction: ``hostnames`` (replaced; empty clears
    them), ``node`` (pin it to that node) or ``floating`` (every node serves it). Every value
    is checked before anything changes; a node that has never run here only with ``confirm``."""
    if node is not None and floating:
        raise ValidationError("node", "name a node or make the address floating, not both")
    if hostnames is None and node is None and not floating:
        return show_address(app, text)  # nothing to change: no write transaction
    address = normalise_address(text)
    names = None if hostnames is None else checked_hostnames(hostnames)
    name = None if node is None else checked_node(node)
    with app.store.transaction(actor) as repository:
        row = configured_address(repository, address)
        if (name is not None or floating) and row.node != name:
            _require_known(repository, name, address, confirm)
            row.node = name
            repository.audit(AuditAction.ADDRESS_NODE, address, _node_detail(name))
        if names is not None and list(row.hostnames) != names:
            row.hostnames = names
            repository.audit(
                AuditAction.ADDRESS_HOSTNAMES, address, _hostnames_detail(names) or "none"
            )
        return _view(row, _certificate_of(repository, row))


def checked_node(text: str) -> str:
    """A node's name as ``certgate serve --node`` takes it (one line, at most 64 characters)."""
    return check_name(text, "node", NODE_NAME_MAX)


def node_names(app: Appliance) -> list[str]:
    """The nodes that have run on this store, by name (what an address can be pinned to
    without confirming)."""
    with app.store.reading() as repository:
        return [row.name for row in nodes.all_nodes(repository)]


def _require_known(repository: Repository, node: str | None, address: str, confirm: bool) -> None:
    """A node no ``certgate serve`` has run as is most often a typing mistake, which would
    leave the address served by nobody: refused unless confirmed (a node provisioned before
    its first start)."""
    if node is None or confirm or nodes.node(repository, node) is not None:
        return
    known = [row.name for row in nodes.all_nodes(repository)]
    raise UnknownNodeError(unknown_node_warning(address, node, known), known)


def unknown_node_warning(address: str, node: str, known: Sequence[str]) -> str:
    """What pinning an address to a node that has never run does, said before it is done."""
    return (
        f"no node named {node!r} has run on this store (known: "
        f"{', '.join(known) or 'none yet'}): until a 'certgate serve --node {node}' starts, "
        f"no node listens on {address}. Confirm to pin it to {node!r} anyway, for a node that "
        'has not started yet (command line: --confirm; API: "confirm": true)'
    )


def _node_detail(node: str | None) -> str:
    return f"node: {node}" if node is not None else "floating"


def checked_hostnames(texts: Iterable[str], field: str = "hostnames") -> list[str]:
    """Each hostname as a client would use it (``names.client_hostname``: a DNS name as its
    A-labels, no wildcard, no IP address), each once, in the order given; blank entries
    are left out. All are checked before anything changes; a page's form can hold 4 MiB of
    them, so the count is refused as soon as it is over (a set, not a list, keeps them)."""
    names: dict[str, None] = {}
    for index, text in enumerate(texts):
        if not text.strip():
            continue
        names[client_hostname(text, item(field, index))] = None
        if len(names) > HOSTNAMES_PER_ADDRESS_MAX:
            too_many = f"at most {HOSTNAMES_PER_ADDRESS_MAX} hostnames per address"
            raise ValidationError(field, too_many)
    return list(names)


def hostnames_not_covered_by(app: Appliance, reference: str | int) -> dict[str, list[str]]:
    """For each address with hostnames, those the certificate would not cover if it were
    assigned there (the Edit page shows them beside each address before it is checked)."""
    with app.store.reading() as repository:
        info = row_info(find_certificate(repository, reference))
        found = {
            row.address: uncovered_hostnames(info, row.hostnames)
            for row in repository.ip_addresses()
        }
    return {address: names for address, names in found.items() if names}


def coverage_note(view: AddressView) -> str:
    """What browsers will make of the hostnames the address's certificate does not cover
    ("" when it covers them all)."""
    if not view.hostnames_not_covered:
        return ""
    return (
        f"its certificate {view.certificate_name!r} does not cover "
        f"{', '.join(view.hostnames_not_covered)}: browsers connecting by these names will "
        "warn. Assign a certificate that covers them"
    )


def _hostnames_detail(names: Sequence[str]) -> str:
    return f"hostnames: {', '.join(names)}" if names else ""


def remove_address(
    app: Appliance, text: str, actor: Actor = APPLIANCE, *, confirm: bool = False
) -> str:
    """Remove an address (returned as stored); the last one only with ``confirm`` (it locks
    the administrator out of the pages: no listener is left)."""
    with app.store.transaction(actor) as repository:
        row = _address_to_remove(repository, text)
        address = row.address
        if not confirm and len(repository.ip_addresses(for_update=True)) == 1:
            raise ConfirmationRequiredError(lockout_warning(address))
        repository.delete(row)
        repository.audit(AuditAction.ADDRESS_REMOVE, address)
        return address


def _address_to_remove(repository: Repository, text: str) -> IpAddressRow:
    """The address's row; one stored that is no address (a damaged row, which the
    listeners refuse) is found by its very text, so that it can be removed."""
    try:
        return configured_address(repository, normalise_address(text))
    except ValidationError:
        row = repository.ip_address(text.strip())
        if row is None:
            raise
        return row


def lockout_warning(address: str) -> str:
    """What removing the last address does, said before it is done."""
    return (
        f"{address} is the last IP address: removing it leaves certgate serve listening "
        "nowhere and locks the administrator out of the /appliance pages until an address is "
        "added again with 'certgate ip add' on this host. Confirm to remove it anyway "
        "(command line: --confirm; API: ?confirm=true)"
    )


def assign(
    app: Appliance,
    addresses: Sequence[str],
    reference: str | int,
    actor: Actor = APPLIANCE,
    *,
    confirm: bool = False,
) -> list[AddressView]:
    """Make ``reference`` the certificate of each address, all or none; a change of root or
    a certificate clients will refuse only with ``confirm`` (``guard.check_moves``)."""
    if not addresses:
        raise ValidationError("addresses", "name at least one address")
    wanted = [
        normalise_address(text, item("addresses", index)) for index, text in enumerate(addresses)
    ]
    with app.store.transaction(actor) as repository:
        certificate = find_certificate(repository, reference)
        require_assignable(repository, certificate)
        rows = [configured_address(repository, address) for address in wanted]
        moves = [guard.Move(row, certificate) for row in rows]
        confirmed = guard.check_moves(repository, moves, confirm=confirm, now=app.now())
        for row in rows:
            row.certificate_id = certificate.id
        record_assignment(repository, certificate, wanted, confirmed)
        return [_view(row, certificate) for row in rows]


def require_assignable(repository: Repository, certificate: CertificateRow) -> None:
    """It can be presented: its key is stored, and its own DER is whole."""
    stored_certificate(certificate)
    require_key(
        repository,
        certificate,
        "cannot be assigned",
        "ask your certificate authority to re-key the certificate",
    )


def configured_address(repository: Repository, address: str) -> IpAddressRow:
    """The row of ``address`` (as normalise_address gives it); NotFoundError: not configured."""
    row = repository.ip_address(address)
    if row is None:
        raise NotFoundError(f"the address {address} is not configured: add it first")
    return row


def set_certificate_addresses(
    app: Appliance,
    reference: str | int,
    addresses: Sequence[str],
    actor: Actor = APPLIANCE,
    *,
    confirm: bool = False,
) -> list[AddressView]:
    """The Edit Certificate Configuration page's IP Addresses checkboxes."""
    with app.store.transaction(actor) as repository:
        certificate = find_certificate(repository, reference)
        set_addresses_of(repository, certificate, addresses, confirm=confirm, now=app.now())
        rows = repository.ip_addresses()
        certificates = repository.certificates_by_id(row.certificate_id for row in rows)
        return [_view(row, certificates[row.certificate_id]) for row in rows]


def set_addresses_of(
    repository: Repository,
    certificate: CertificateRow,
    addresses: Sequence[str],
    *,
    confirm: bool,
    now: dt.datetime,
) -> list[guard.Concern]:
    """The checked addresses present this certificate; unchecked ones that did go back to
    the factory certificate (an address never stays without a certificate). Either move
    is guarded (``guard.check_moves``): back to the factory certificate is a change of
    root too. Returns the concerns confirmed."""
    wanted = {
        normalise_address(text, item("addresses", index)) for index, text in enumerate(addresses)
    }
    if wanted:
        require_assignable(repository, certificate)
    factory = repository.factory_certificate()
    assert factory is not None  # made by init, never deletable
    if certificate.id == factory.id:
        kept = sorted(
            row.address
            for row in repository.ip_addresses_of(factory.id)
            if row.address not in wanted
        )
        if kept:
            raise ValidationError(
                "addresses",
                f"{', '.join(kept)} cannot be unchecked on the factory certificate: an unchecked "
                "address goes back to the factory certificate, and it is already there. To "
                "present another certificate, check the address on that certificate's Edit "
                "page; to stop serving it, remove it under Networking",
            )
    moves = [
        guard.Move(configured_address(repository, address), certificate)
        for address in sorted(wanted)
    ]
    moves += [
        guard.Move(row, factory)
        for row in repository.ip_addresses_of(certificate.id)
        if row.address not in wanted and certificate.id != factory.id
    ]
    confirmed = guard.check_moves(repository, moves, confirm=confirm, now=now)
    for move in moves:
        move.address.certificate_id = move.new.id
    record_assignment(repository, certificate, sorted(wanted), confirmed)
    return confirmed


def record_assignment(
    repository: Repository,
    certificate: CertificateRow,
    addresses: Sequence[str],
    confirmed: Sequence[guard.Concern],
    *,
    note: str = "",
) -> None:
    """The audit events of an assignment: the change (``note`` after the addresses: what made
    it; then what was confirmed), and the use of the certificate's key it makes."""
    target = certificate_target(certificate.friendly_name, certificate.fingerprint)
    shown = ", ".join(addresses) or "no address"
    detail = shown + note + guard.confirmed_note(confirmed)
    repository.audit(AuditAction.ADDRESS_ASSIGN, target, detail)
    if addresses:
        record_key_served(repository, certificate, addresses)


def record_key_served(
    repository: Repository, certificate: CertificateRow, addresses: Sequence[str]
) -> None:
    """The audit event of the certificate's key put to use: served on ``addresses``."""
    repository.audit_key_use(
        AuditAction.KEY_SERVE,
        certificate.friendly_name,
        certificate.public_key_fingerprint,
        f"on {', '.join(addresses)}",
    )
