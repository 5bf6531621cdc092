"""``--ca-file FILE`` and ``--no-ca-file``: the roots a command's server is trusted by instead
of the system's (an internal mail relay, a private ACME server), said once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from certgate.cli.context import EXISTING_FILE, read_file
from certgate.service.email import CA_BUNDLE_MAX

_Command = TypeVar("_Command", bound=Callable[..., Any])


def ca_bundle_options(whose: str) -> Callable[[_Command], _Command]:
    """The two options, as a decorator: ``whose`` is what the roots are trusted for, in the
    help (``an internal relay's certificate``)."""

    def decorate(command: _Command) -> _Command:
        command = click.option(
            "--no-ca-file", is_flag=True, help="Trust the system's roots again."
        )(command)
        return click.option(
            "--ca-file",
            type=EXISTING_FILE,
            help=f"PEM roots to trust for {whose} instead of the system's.",
        )(command)

    return decorate


def ca_bundle(ca_file: Path | None, no_ca_file: bool) -> str | None:
    """What the options ask to store: the file's PEM text, "" (the system's roots again) or
    None (no change)."""
    if ca_file is not None and no_ca_file:
        raise click.UsageError("--ca-file and --no-ca-file exclude each other")
    if ca_file is None:
        return "" if no_ca_file else None
    # One byte over the limit is enough for the service to say "too large".
    try:
        return read_file(ca_file, CA_BUNDLE_MAX + 1).decode("ascii")
    except UnicodeDecodeError as error:
        raise click.UsageError(f"cannot read {ca_file} as a PEM file: {error}") from None
