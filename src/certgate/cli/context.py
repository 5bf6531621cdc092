"""The options every command shares, and opening the appliance they name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click

from certgate.cli.output import json_option
from certgate.service.appliance import Appliance, is_data_file
from certgate.service.audit import Actor
from certgate.service.auth import cli_principal

#: A file a command reads or writes (click refuses a directory).
FILE = click.Path(path_type=Path, dir_okay=False)
#: A file a command reads, refused by click before the command runs when it is not there.
EXISTING_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)
_Command = TypeVar("_Command", bound=Callable[..., Any])
_P = ParamSpec("_P")
_T = TypeVar("_T")


def read_file(path: Path, limit: int = -1, *, first_line: bool = False) -> bytes:
    """The bytes of a file a command was given (at most ``limit``; with ``first_line``, up
    to its first line break); one that cannot be read is a usage error naming it, never a
    traceback."""
    try:
        with path.open("rb") as handle:
            return handle.readline(limit) if first_line else handle.read(limit)
    except OSError as error:
        raise click.UsageError(f"cannot read {path}: {error.strerror}") from None


def output_option(what: str) -> Callable[[_Command], _Command]:
    """``-o/--output``: the file a command writes, ``what`` in its help; never one of the data
    directory's own files (the master key, the database), which it would replace."""
    return click.option(
        "-o",
        "--output",
        required=True,
        type=FILE,
        callback=_not_a_data_file,
        help=f"{what} to write (replaced if it exists).",
    )


def _not_a_data_file(context: click.Context, _: click.Parameter, path: Path) -> Path:
    options = context.find_object(Options)
    if options is None:
        return path
    if is_data_file(options.data_dir, path):
        raise click.BadParameter(
            f"{path} is a file of the data directory {options.data_dir}: write elsewhere"
        )
    return path


@dataclass(frozen=True)
class Options:
    data_dir: Path
    database_url: str | None

    @property
    def actor(self) -> Actor:
        """Who the audit trail names for this command: the OS user running it, from ``cli``."""
        return cli_principal().actor

    @contextmanager
    def appliance(self, *, store_may_be_away: bool = False) -> Iterator[Appliance]:
        app = Appliance.open(self.data_dir, self.database_url, store_may_be_away=store_may_be_away)
        try:
            yield app
        finally:
            app.close()

    def call(
        self, service: Callable[Concatenate[Appliance, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """``service(appliance, *args, **kwargs)`` on the appliance these options name, opened
        for the call and closed after it: a command that needs one service call."""
        with self.appliance() as app:
            return service(app, *args, **kwargs)


def command_options(command: Callable[Concatenate[Options, _P], _T]) -> Callable[_P, _T]:
    """What every command takes: the shared :class:`Options` (``--data-dir``,
    ``--database-url``) and ``--json``, the API's document for what it prints."""
    return json_option(click.pass_obj(command))


def confirm_option(help_text: str) -> Callable[[_Command], _Command]:
    """``--confirm``: do what is refused without it; ``help_text`` says what that is."""
    return click.option("--confirm", is_flag=True, help=help_text)


#: ``--confirm`` of the commands that change what an address presents (``service.guard``).
confirm_change_option = confirm_option(
    "Apply it even when an address's chain would end at another root, or its new "
    "certificate is expired, not yet valid, has an incomplete chain or does not cover the "
    "address's hostnames (refused otherwise, naming each)."
)
