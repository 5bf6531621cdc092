"""``certgate ip``, ``certgate tls`` and ``certgate status``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from certgate.cli.context import Options, command_options, confirm_change_option, confirm_option
from certgate.cli.output import (
    echo,
    emit_document,
    emit_documents,
    fields,
    report,
    report_fields,
    report_table,
    table,
)
from certgate.errors import StoreUnavailableError
from certgate.pki.diagnostics import WarningCode
from certgate.schemas import Address, AddressTest, ApplianceStatus, RemovedAddress, TlsSettings
from certgate.service import addresstest, health, networking, status, tls_settings
from certgate.service.serving import serving_without_store

F = TypeVar("F", bound=Callable[..., object])


def deadline_options(command: F) -> F:
    """``--handshake-timeout S`` ... ``--shutdown-grace S``: one option per deadline setting."""
    for deadline in reversed(tls_settings.DEADLINE_SETTINGS):
        command = click.option(
            "--" + deadline.name.replace("_", "-"),
            deadline.name,
            type=float,
            metavar="SECONDS",
            help=deadline.help,
        )(command)
    return command


@click.group()
def ip() -> None:
    """The appliance's IP addresses, the certificate each presents and the node serving it."""


@ip.command("list")
@command_options
def ip_list(options: Options, as_json: bool) -> None:
    """Each address, the certificate it is currently assigned to and the node serving it."""
    views = options.call(networking.list_addresses)
    report_table(
        as_json,
        Address,
        views,
        ["IP Address", "Currently assigned to Certificate", "ID", "Hostnames", "Node"],
        _list_row,
    )


def _list_row(view: networking.AddressView) -> list[object]:
    return [
        view.address,
        view.certificate_name + (" (factory)" if view.is_factory_certificate else ""),
        view.certificate_id,
        ", ".join(view.hostnames),
        view.node if view.node is not None else networking.FLOATING_TEXT,
    ]


def hostname_option(help_text: str) -> Callable[[F], F]:
    return click.option("--hostname", "hostnames", multiple=True, metavar="NAME", help=help_text)


#: ``--confirm`` of the commands that pin an address to a node.
confirm_node_option = confirm_option(
    "Pin it even to a node that has never run on this store (one not started yet; "
    "refused otherwise, naming the known nodes)."
)


@ip.command("add")
@click.argument("address")
@hostname_option("A DNS name clients use to reach the address (repeat for several).")
@click.option(
    "--node",
    metavar="NAME",
    help="Only this node (certgate serve --node NAME) listens on the address. Default: "
    "floating, every node does (with IP_FREEBIND), and whichever holds it serves it.",
)
@confirm_node_option
@command_options
def ip_add(
    options: Options,
    address: str,
    hostnames: tuple[str, ...],
    node: str | None,
    confirm: bool,
    as_json: bool,
) -> None:
    """Add an address; it presents the factory certificate until you assign another."""
    view = options.call(
        networking.add_address, address, options.actor, hostnames, node, confirm=confirm
    )
    if as_json:
        emit_document(Address, view)
        return
    echo(f"added {view.address}, assigned to {view.certificate_name}")
    if view.hostnames:
        _say_hostnames(view)
    if view.node is not None:
        _say_node(options, view)


@ip.command("set")
@click.argument("address")
@hostname_option("A DNS name clients use to reach the address; the list given replaces it.")
@click.option("--no-hostname", "clear", is_flag=True, help="Remove every hostname.")
@click.option(
    "--node", metavar="NAME", help="Only this node (certgate serve --node NAME) listens on it."
)
@click.option("--floating", is_flag=True, help="Every node listens on it (IP_FREEBIND).")
@confirm_node_option
@command_options
def ip_set(
    options: Options,
    address: str,
    hostnames: tuple[str, ...],
    clear: bool,
    node: str | None,
    floating: bool,
    confirm: bool,
    as_json: bool,
) -> None:
    """Set the hostnames clients use to reach an address (its certificate must cover them),
    or the node that serves it; what is not given stays as it is."""
    if hostnames and clear:
        raise click.UsageError("give --hostname NAME (one or more) or --no-hostname, not both")
    if node is not None and floating:
        raise click.UsageError("give --node NAME or --floating, not both")
    if not (hostnames or clear or node is not None or floating):
        raise click.UsageError(
            "give --hostname NAME (one or more) or --no-hostname, and/or --node NAME or --floating"
        )
    view = options.call(
        networking.change_address,
        address,
        options.actor,
        hostnames=hostnames if hostnames or clear else None,
        node=node,
        floating=floating,
        confirm=confirm,
    )
    if as_json:
        emit_document(Address, view)
        return
    if hostnames or clear:
        _say_hostnames(view)
    if node is not None or floating:
        _say_node(options, view)


def _say_node(options: Options, view: networking.AddressView) -> None:
    if view.node is None:
        echo(f"{view.address} is floating: every node listens on it")
        return
    echo(f"{view.address} is served by node {view.node} only")
    absent = options.call(health.node_not_alive, view)
    if absent is not None:  # lost, stopped or never run: nobody serves it meanwhile
        echo(f"{absent.severity} ({absent.code}): {absent.message}")


def _say_hostnames(view: networking.AddressView) -> None:
    if view.hostnames:
        echo(f"{view.address} hostnames: {', '.join(view.hostnames)}")
    else:
        echo(f"{view.address} has no hostname")
    note = networking.coverage_note(view)
    if note:
        echo(f"warning ({WarningCode.HOSTNAME_NOT_COVERED}): {note}")


@ip.command("remove")
@click.argument("address")
@confirm_option("Remove even the last address (this locks the administrator out of the pages).")
@command_options
def ip_remove(options: Options, address: str, confirm: bool, as_json: bool) -> None:
    """Remove an address; its listener closes."""
    removed = options.call(networking.remove_address, address, options.actor, confirm=confirm)
    report(as_json, RemovedAddress, {"address": removed}, f"removed {removed}")


@ip.command("test")
@click.argument("address")
@click.option(
    "--hostname",
    help="Connect as this name (SNI); default: each hostname of the address, else each DNS "
    "name of its certificate.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Default: the port 'certgate serve' listens on, else the HTTPS port of the TLS settings.",
)
@command_options
def ip_test(
    options: Options, address: str, hostname: str | None, port: int | None, as_json: bool
) -> None:
    """Connect to ADDRESS as a browser would and say what it will make of what is served."""
    tested = options.call(addresstest.probe_address, address, hostname, port)
    if as_json:
        emit_document(AddressTest, tested)
        return
    echo(f"{tested.address} port {tested.port}: assigned {tested.certificate_name}")
    for result in tested.results:
        echo(f"\n{result.server_name or '(no SNI)'}: {result.verdict}")
        if not result.connected:
            continue
        fields(
            [
                ("Protocol", result.protocol),
                ("Cipher", result.cipher),
                ("Covers " + result.checked_name, "yes" if result.name_covered else "no"),
                ("Trusted by", result.trusted_by or f"none: {result.trust_error}"),
                ("Days left", result.days_left),
                ("Assigned certificate", _yes_no(result.presents_assigned)),
                (
                    "Chain presented",
                    [
                        f"{c.subject}  SHA-256 {c.fingerprint_sha256}"
                        + ("" if c.in_store else "  (not in the store)")
                        for c in result.chain
                    ],
                ),
            ]
        )


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no, another certificate"


@ip.command("assign")
@click.argument("addresses", nargs=-1, required=True)
@click.option("--cert", "reference", required=True, help="Certificate id or fingerprint.")
@confirm_change_option
@command_options
def ip_assign(
    options: Options, addresses: tuple[str, ...], reference: str, confirm: bool, as_json: bool
) -> None:
    """Assign a certificate (its private key must be available) to addresses.

    A change of the root an address's chain ends at, or a certificate clients will refuse
    (expired, not yet valid, incomplete chain, a hostname not covered), needs --confirm."""
    views = options.call(
        networking.assign, list(addresses), reference, options.actor, confirm=confirm
    )
    if as_json:
        emit_documents(Address, views)
    else:
        for view in views:
            echo(f"{view.address} now presents {view.certificate_name}")


@click.group()
def tls() -> None:
    """SSL configuration: TLS versions, TLS 1.2 ciphers, HTTPS port, connection deadlines."""


@tls.command("show")
@command_options
def tls_show(options: Options, as_json: bool) -> None:
    report_fields(as_json, TlsSettings, options.call(tls_settings.get_settings), _tls_fields)


def _tls_fields(settings: tls_settings.TlsSettings) -> list[tuple[str, object]]:
    return [
        ("Minimum TLS version", settings.minimum_version),
        ("Maximum TLS version", settings.maximum_version),
        ("TLS 1.2 ciphers", settings.tls12_ciphers),
        ("HTTPS port", settings.https_port),
        ("HTTP port", settings.http_port or "none"),
        ("TLS groups", settings.groups),
        ("Chain includes the root", "yes" if settings.send_root else "no"),
        *(
            (deadline.label, f"{getattr(settings, deadline.name):g} s")
            for deadline in tls_settings.DEADLINE_SETTINGS
        ),
    ]


@tls.command("set")
@click.option("--min-version", type=click.Choice(list(tls_settings.VERSIONS)))
@click.option("--max-version", type=click.Choice(list(tls_settings.VERSIONS)))
@click.option("--ciphers", help="OpenSSL cipher list for TLS 1.2.")
@click.option("--https-port", type=int)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    help="Plain HTTP listener on every address, for ACME http-01 and a redirect to HTTPS "
    "(0: none, the default; 80 for a public CA).",
)
@click.option("--groups", help="OpenSSL key-exchange groups, e.g. X25519:P-256:P-384.")
@click.option(
    "--send-root/--no-send-root",
    default=None,
    help="Send the root certificate with the chain (default: no).",
)
@deadline_options
@command_options
def tls_set(
    options: Options,
    /,
    min_version: str | None,
    max_version: str | None,
    ciphers: str | None,
    https_port: int | None,
    http_port: int | None,
    groups: str | None,
    send_root: bool | None,
    as_json: bool,
    **deadlines: float | None,
) -> None:
    """Change the SSL configuration; running listeners apply it on the next handshake."""
    given = (min_version, max_version, ciphers, https_port, http_port, groups, send_root)
    if all(value is None for value in (*given, *deadlines.values())):
        raise click.UsageError("give a setting to change ('certgate tls show' shows them)")
    settings = options.call(
        tls_settings.update_settings,
        minimum_version=min_version,
        maximum_version=max_version,
        tls12_ciphers=ciphers,
        https_port=https_port,
        http_port=http_port,
        groups=groups,
        send_root=send_root,
        deadlines=deadlines,
        actor=options.actor,
    )
    report(as_json, TlsSettings, settings, "saved")


@click.command("status")
@command_options
def status_command(options: Options, as_json: bool) -> None:
    """Status > Basics: the appliance's statistics and what each listener serves."""
    try:
        state = options.call(status.appliance_status)
    except StoreUnavailableError as error:  # and what the listeners do meanwhile, as the page
        with options.appliance(store_may_be_away=True) as app:
            meanwhile = serving_without_store(app)
        if meanwhile is None:
            raise
        echo(f"error: {error}", err=True)
        echo(f"note: {meanwhile}", err=True)
        raise SystemExit(1) from None
    if as_json:
        emit_document(ApplianceStatus, state)
        return
    fields(status.statistics(state))
    for finding in state.diagnostics:
        echo(f"  {finding.severity}: {finding.message}")
    if state.listeners is None:
        echo("\nNo 'certgate serve' is running on this data directory.")
        return
    workers = state.serve_workers or 1
    echo(f"\ncertgate serve: {workers} worker process{'es' if workers != 1 else ''}")
    table(
        ["Address", "Port", "State", "Certificate", "Error"],
        [
            [
                s["address"],
                s["port"],
                s["state"],
                str(s.get("fingerprint") or "")[:16],
                s.get("error") or "",
            ]
            for s in state.listeners
        ],
    )
