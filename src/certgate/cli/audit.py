"""``certgate audit list``: the audit trail, newest first, filtered."""

from __future__ import annotations

import click

from certgate.cli.context import Options, command_options
from certgate.cli.output import echo, emit_document, table
from certgate.limits import ROW_ID_MAX
from certgate.pki.diagnostics import format_time
from certgate.schemas import AuditPage
from certgate.service import audit


@click.group("audit")
def audit_group() -> None:
    """The audit trail: who changed what, from where; every use of a private key."""


@audit_group.command("list")
@click.option("--actor", help="Only events by this user, token:NAME or cli:USER (any part).")
@click.option(
    "--action", help="Only this action (e.g. key.export), or a family ending in '.' (key.)."
)
@click.option("--target", help="Only events about this (any part of a name or fingerprint).")
@click.option("--since", help="From this time on: 2026-12-04, 2026-12-04T19:30 (UTC), or 12h, 7d.")
@click.option("--until", help="Before this time (same forms as --since).")
@click.option(
    "--before",
    type=click.IntRange(1, ROW_ID_MAX),
    help="Only events older than this event id (the next page).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, audit.MAX_LIMIT),
    default=audit.DEFAULT_LIMIT,
    show_default=True,
    help="At most this many events.",
)
@command_options
def audit_list(
    options: Options,
    actor: str | None,
    action: str | None,
    target: str | None,
    since: str | None,
    until: str | None,
    before: int | None,
    limit: int,
    as_json: bool,
) -> None:
    """Recorded changes and key uses, newest first."""
    with options.appliance() as app:
        now = app.now()
        wanted = audit.wanted_events(
            now, actor=actor, action=action, target=target, since=since, until=until, before=before
        )
        page = audit.list_events(app, wanted, limit)
    if as_json:
        emit_document(AuditPage, page)
        return
    table(
        ["ID", "Time", "Who", "From", "Action", "Target", "Detail"],
        [
            [e.id, format_time(e.at), e.actor, e.source, e.action, e.target, e.detail]
            for e in page.events
        ],
    )
    if page.older is not None:
        echo(f"(older events: --before {page.older})")
