"""``certgate acme``: Security > ACME, the account with an ACME CA and the certificates
ordered from it."""

from __future__ import annotations

from pathlib import Path

import click

from certgate.cli.ca_bundle import ca_bundle, ca_bundle_options
from certgate.cli.context import (
    EXISTING_FILE,
    Options,
    command_options,
    confirm_change_option,
    read_file,
)
from certgate.cli.forms import KEY_TYPES
from certgate.cli.output import (
    echo,
    emit_documents,
    report,
    report_fields,
    report_table,
)
from certgate.cli.secrets_input import SECRET_FILE_MAX
from certgate.errors import AcmeError
from certgate.fields import ACME_NAMES_HELP
from certgate.pki.keys import DEFAULT_KEY_SPEC
from certgate.schemas import AcmeAccount, AcmeOrder, AcmeRenewal
from certgate.service import acme_account, acme_orders, acme_renewal


@click.group("acme")
def acme_group() -> None:
    """Certificates issued by an ACME CA (Let's Encrypt or any RFC 8555 CA), the CA's
    challenges answered by 'certgate serve' itself."""


@acme_group.group("account")
def account_group() -> None:
    """The appliance's account with the ACME CA."""


@account_group.command("show")
@command_options
def account_show(options: Options, as_json: bool) -> None:
    """The account (its key is never shown)."""
    view = options.call(acme_account.get_account)
    if view.configured or as_json:
        report_fields(as_json, AcmeAccount, view, _account_fields)
    else:
        echo(
            "No ACME account: certgate acme account set --directory letsencrypt-staging "
            "--email ADDR --agree-tos"
        )


def _account_fields(view: acme_account.AccountView) -> list[tuple[str, object]]:
    return [
        ("Directory", view.directory_url or ""),
        ("Preset", view.preset or "(none)"),
        ("Account", view.account_url or ""),
        ("Status", view.status or ""),
        ("Contact", view.email or "(none)"),
        ("Terms agreed", view.terms_agreed or "(the CA has none)"),
        ("EAB key id", view.eab_kid or "(none)"),
        ("CA bundle", "set (private ACME server)" if view.ca_bundle else "system roots"),
    ]


@account_group.command("set")
@click.option(
    "--directory",
    metavar="URL",
    help="The CA's ACME directory URL, or a preset: "
    + ", ".join(preset.value for preset in acme_account.Preset)
    + ". A new directory registers a new account.",
)
@click.option("--email", metavar="ADDR", help="The account's contact address ('' removes it).")
@click.option("--agree-tos", is_flag=True, help="Agree to the CA's terms of service.")
@ca_bundle_options("a private ACME server's HTTPS")
@click.option("--eab-kid", metavar="ID", help="External account binding: the key id.")
@click.option(
    "--eab-hmac-key-file",
    type=EXISTING_FILE,
    help="External account binding: a file holding the HMAC key (base64url).",
)
@command_options
def account_set(
    options: Options,
    directory: str | None,
    email: str | None,
    agree_tos: bool,
    ca_file: Path | None,
    no_ca_file: bool,
    eab_kid: str | None,
    eab_hmac_key_file: Path | None,
    as_json: bool,
) -> None:
    """Register the account with the CA, or change it (options left out keep their value)."""
    roots = ca_bundle(ca_file, no_ca_file)
    hmac_key = None
    if eab_hmac_key_file is not None:
        hmac_key = acme_account.hmac_key_from_file(read_file(eab_hmac_key_file, SECRET_FILE_MAX))
    view = options.call(
        acme_account.set_account,
        directory=directory,
        email=email,
        agree_tos=agree_tos,
        ca_bundle=roots,
        eab_kid=eab_kid,
        eab_hmac_key=hmac_key,
        actor=options.actor,
    )
    report(as_json, AcmeAccount, view, f"account {view.account_url} at {view.directory_url}")


@acme_group.command("order")
@click.option("--name", required=True, help="The certificate's friendly name (renewals keep it).")
@click.option(
    "--domain", "domains", multiple=True, required=True, help=f"Repeatable. {ACME_NAMES_HELP}"
)
@click.option(
    "--key",
    type=KEY_TYPES,
    default=DEFAULT_KEY_SPEC.value,
    show_default=True,
    help="The certificate's key type.",
)
@click.option(
    "--assign", "addresses", multiple=True, metavar="ADDR", help="Assign it to ADDR (repeatable)."
)
@click.option(
    "--challenge",
    type=click.Choice([kind.value for kind in acme_orders.ChallengeType]),
    default=acme_orders.ChallengeType.HTTP_01.value,
    show_default=True,
    help="How the CA checks the names: http-01 is answered on 'certgate serve --http-port', "
    "tls-alpn-01 on its HTTPS port (no HTTP port needed).",
)
@confirm_change_option
@command_options
def order_command(
    options: Options,
    name: str,
    domains: tuple[str, ...],
    key: str,
    addresses: tuple[str, ...],
    challenge: str,
    confirm: bool,
    as_json: bool,
) -> None:
    """Order a certificate from the ACME CA; it is imported with its key and chain, and
    assigned to the addresses given. Waits for the CA (at most 90 s). An assignment that
    would change the root an address's chain ends at (or leave its hostnames uncovered)
    needs --confirm, asked before the order is placed."""
    try:
        view = options.call(
            acme_orders.place_order,
            name=name,
            domains=domains,
            key=key,
            assign=addresses,
            challenge=challenge,
            actor=options.actor,
            confirm=confirm,
        )
    except AcmeError as error:
        if error.document:
            echo(f"the CA's problem document: {error.document}", err=True)
        raise
    assigned = f", assigned to {', '.join(view.assign)}" if view.assign else ""
    said = f"order {view.id} valid: certificate {view.certificate_id} {view.friendly_name!r}"
    report(as_json, AcmeOrder, view, said + assigned)


@acme_group.command("orders")
@command_options
def orders_command(options: Options, as_json: bool) -> None:
    """Every order placed, newest first, with its state and the CA's error document."""
    views = options.call(acme_orders.list_orders)
    report_table(
        as_json,
        AcmeOrder,
        views,
        ["ID", "Name", "Domains", "State", "Certificate", "Created", "Error"],
        _order_row,
        empty="no ACME order yet",
    )
    if as_json:
        return
    for view in views:
        if view.renewal_suggested_at and view.renewed_by is None:
            echo(
                f"order {view.id}: the CA suggests renewing at "
                f"{view.renewal_suggested_at:%Y-%m-%d %H:%M} UTC"
            )
        if view.error_document:
            echo(f"order {view.id}, the CA's problem document: {view.error_document}")
        if view.renewal_failure:
            echo(f"order {view.id}: {view.renewal_failure}")


def _order_row(view: acme_orders.OrderView) -> list[object]:
    return [
        view.id,
        view.friendly_name,
        ", ".join(view.domains),
        view.state,
        view.certificate_id or "",
        view.created_at.strftime("%Y-%m-%d %H:%M"),
        view.error or "",
    ]


_RENEWAL_STATES = {
    "renewed": "renewed",
    "failed": "renewal failed",
    "not-due": "not due yet",
    "busy": "being renewed by another process",
    "backoff": "waiting after a failed renewal (--force to try now)",
}


@acme_group.command("renew")
@click.argument("certificate_id", metavar="[ID]", type=int, required=False)
@click.option("--force", is_flag=True, help="Renew now, due or not (and despite a backoff).")
@command_options
def renew_command(options: Options, certificate_id: int | None, force: bool, as_json: bool) -> None:
    """Renew the ACME certificates that are due (a third of their validity left), or only
    certificate ID; the new one replaces the old on every address. 'certgate serve' does
    this by itself hourly. Exit status 1 when a renewal failed."""
    outcomes = options.call(acme_renewal.renew, certificate_id, force=force, actor=options.actor)
    if as_json:
        emit_documents(AcmeRenewal, outcomes)
    else:
        for outcome in outcomes:
            said = _RENEWAL_STATES[outcome.state]
            if outcome.renewed_by is not None:
                said += f" by order {outcome.renewed_by.id}, certificate "
                said += str(outcome.renewed_by.certificate_id)
            if outcome.error:
                said += f": {outcome.error}"
            echo(f"{outcome.friendly_name} (certificate {outcome.certificate_id}): {said}")
        if not outcomes:
            echo("no certificate issued by an ACME order")
    if any(outcome.state == "failed" for outcome in outcomes):
        raise SystemExit(1)
