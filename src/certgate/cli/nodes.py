"""``certgate node``: the nodes of the cluster (every ``certgate serve`` on this store)."""

from __future__ import annotations

import datetime as dt

import click

from certgate.cli.context import Options, command_options
from certgate.cli.output import report, report_table
from certgate.pki.diagnostics import format_time
from certgate.schemas import Node, RemovedNode
from certgate.service import nodes


@click.group("node")
def node_group() -> None:
    """The nodes serving this store: alive or not, and what each one presents."""


@node_group.command("list")
@command_options
def node_list(options: Options, as_json: bool) -> None:
    """Every node with its state (alive, stopped, lost), the floating addresses it holds,
    and its drift: addresses it should serve where it presents another certificate, or none."""
    with options.appliance() as app:
        found = nodes.list_nodes(app)
        now = app.now()
    report_table(
        as_json,
        Node,
        found,
        ["Node", "State", "Last seen", "Version", "Listening", "HTTP", "Holds", "Drift"],
        lambda view: _row(view, now),
        empty="No node has run on this store yet: start 'certgate serve'.",
    )


def _row(view: nodes.NodeView, now: dt.datetime) -> list[object]:
    return [
        view.name,
        view.state.value,
        f"{format_time(view.last_seen)} ({_seconds(now - view.last_seen)} s ago)",
        view.version,
        _listening(view.listeners),
        _listening(view.http_listeners) if view.http_said else NOT_REPORTED,
        ", ".join(view.holds),
        ", ".join(
            f"{drift.address} presents {(drift.presented_fingerprint or 'nothing')[:16]}"
            f" instead of {drift.assigned_name!r}"
            for drift in view.drift
        ),
    ]


@node_group.command("remove")
@click.argument("name")
@command_options
def node_remove(options: Options, name: str, as_json: bool) -> None:
    """Forget a stopped or lost node (retired or renamed); an alive one, or one with
    addresses pinned to it, is refused."""
    options.call(nodes.remove_node, name, options.actor)
    report(as_json, RemovedNode, {"name": name}, f"removed node {name}")


#: The HTTP column of a node of an earlier version, whose heartbeat lists no plain HTTP
#: listener (an http-01 order counts it while the HTTP port is set).
NOT_REPORTED = "not reported"


def _listening(listeners: list[nodes.NodeListener]) -> str:
    """How many listen, and which failed: an address taken by another program."""
    failed = [listener.address for listener in listeners if listener.state != "listening"]
    count = str(len(listeners) - len(failed))
    return f"{count} ({', '.join(failed)} failed)" if failed else count


def _seconds(elapsed: dt.timedelta) -> int:
    return int(elapsed.total_seconds())
