"""Printing for the CLI: aligned tables for people, JSON for scripts, errors without traces.

Everything the CLI prints goes through here, and no control character reaches the terminal
raw (a certificate's subject or name could otherwise retitle or clear it): :func:`echo`,
:func:`table` and :func:`fields` print them as visible escapes (``\\x1b``), JSON as
``\\u001b`` (C1 controls and bidirectional overrides included, which ``json.dumps`` leaves).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from certgate.schemas import document
from certgate.text import json_text, visible

_View = TypeVar("_View")

#: Every command's --json: the document the API gives for the same thing.
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (the API's document for the same thing)."
)


def echo(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    """Print text; control characters other than its line breaks made visible."""
    text = "\n".join(visible(line) for line in str(message).split("\n"))
    click.echo(text, err=err, nl=nl)


class VisibleFormatter(logging.Formatter):
    """Log lines (``certgate serve``'s, on a terminal or in a file) with control characters
    other than line breaks made visible: a log line names certificates."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(visible(line) for line in super().format(record).split("\n"))


class TerminalFormatter(VisibleFormatter):
    """A command's warnings on stderr, one line each: never a traceback (the promise), which
    ``certgate serve``'s log keeps for a report."""

    def formatException(self, ei: object) -> str:
        return ""


def emit_json(value: Any) -> None:
    """A JSON document (from ``certgate.schemas`` documents)."""
    click.echo(json_text(value))


def emit_document(model: type[BaseModel], value: object) -> None:
    """``value`` as the document the API gives for it (``certgate.schemas``)."""
    emit_json(document(model, value))


def emit_documents(model: type[BaseModel], values: Sequence[object]) -> None:
    emit_json([document(model, value) for value in values])


def report(as_json: bool, model: type[BaseModel], value: object, *lines: str) -> None:
    """What a command says it did: with ``--json`` the API's document for ``value``, else
    ``lines`` for people."""
    if as_json:
        emit_document(model, value)
        return
    for line in lines:
        echo(line)


def report_table(
    as_json: bool,
    model: type[BaseModel],
    values: Sequence[_View],
    headers: Sequence[str],
    row: Callable[[_View], Sequence[object]],
    *,
    empty: str | None = None,
) -> None:
    """What a list command prints: with ``--json`` the API's list of documents, else a table
    of one ``row`` a value (``empty``, where given, instead of a table without rows)."""
    if as_json:
        emit_documents(model, values)
        return
    if not values and empty is not None:
        echo(empty)
        return
    table(headers, [row(value) for value in values])


def report_fields(
    as_json: bool,
    model: type[BaseModel],
    value: _View,
    pairs: Callable[[_View], Sequence[tuple[str, object]]],
) -> None:
    """What a show command prints: with ``--json`` the API's document for ``value``, else
    its ``pairs``, one labelled line (or more, for a list) a field."""
    if as_json:
        emit_document(model, value)
        return
    fields(pairs(value))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[visible(str(cell)) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    line = "  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))
    click.echo(line.rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def fields(pairs: Sequence[tuple[str, object]]) -> None:
    width = max(len(label) for label, _ in pairs)
    for label, value in pairs:
        if isinstance(value, list):
            click.echo(f"{label.ljust(width)}  {visible(str(value[0]) if value else 'None')}")
            for item in value[1:]:
                click.echo(f"{' ' * width}  {visible(str(item))}")
        else:
            click.echo(f"{label.ljust(width)}  {visible(str(value))}")
