"""Printing for the CLI: aligned tables for people, JSON for scripts, errors without traces."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from certgate.service.views import jsonable


def emit_json(value: Any) -> None:
    click.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(cell) for cell in row] for row in rows]
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
            click.echo(f"{label.ljust(width)}  {value[0] if value else 'None'}")
            for item in value[1:]:
                click.echo(f"{' ' * width}  {item}")
        else:
            click.echo(f"{label.ljust(width)}  {value}")
