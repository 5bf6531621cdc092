"""Passwords and passphrases: from a file, an environment variable or a prompt — never argv."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from certgate.cli.context import FILE, read_file

_Command = TypeVar("_Command", bound=Callable[..., Any])
#: The most of a secret's file read: far over any password, passphrase or key certgate takes
#: (a longer one is refused by its own rule), and a file that holds none (/dev/zero, an
#: image) is never read whole.
SECRET_FILE_MAX = 64 * 1024


@dataclass(frozen=True)
class Secret:
    """A password or passphrase a command takes, said once: its ``--...-file`` option (the
    file's first line) and its environment variable, for the help and for :meth:`read`."""

    option_name: str  #: ``--password-file``
    what: str  #: ``the SMTP password``: the help's words
    env_var: str

    @property
    def given_by(self) -> str:
        """How it is given without a terminal: ``--password-file FILE or CERTGATE_...``."""
        return f"{self.option_name} FILE or {self.env_var}"

    def option(self, command: _Command) -> _Command:
        """The ``--...-file`` option, as a decorator of the command."""
        help = f"File whose first line is {self.what}. Env: {self.env_var}."
        return click.option(self.option_name, type=FILE, help=help)(command)

    def read(
        self, file: Path | None, prompt: str | None = None, *, new: bool = False
    ) -> bytes | None:
        """See :func:`read_secret`."""
        return read_secret(file, self.env_var, prompt, new=new)


def read_secret(
    file: Path | None, env_var: str, prompt: str | None, *, new: bool = False
) -> bytes | None:
    """The secret from ``file`` (first line), else ``$env_var``, else a prompt if ``prompt``
    and a terminal is attached; None when none is given. ``new``: a secret that something
    is encrypted with now is typed twice (a typo would make it open nothing)."""
    if file is not None:
        try:
            text = read_file(file, SECRET_FILE_MAX, first_line=True).decode("utf-8")
        except UnicodeDecodeError:
            raise click.UsageError(f"{file} is not UTF-8 text") from None
        return text.splitlines()[0].encode() if text else b""
    value = os.environ.get(env_var)
    if value is not None:
        try:
            return value.encode()
        except UnicodeEncodeError:  # a byte that is not UTF-8 (a lone surrogate to Python)
            raise click.UsageError(f"${env_var} is not UTF-8 text") from None
    if prompt and sys.stdin.isatty():
        typed = click.prompt(
            prompt, hide_input=True, default="", show_default=False, confirmation_prompt=new
        )
        return str(typed).encode()
    return None
