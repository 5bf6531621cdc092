"""Passwords and passphrases: from a file, an environment variable or a prompt — never argv."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


def read_secret(file: Path | None, env_var: str, prompt: str | None) -> bytes | None:
    """The secret from ``file`` (first line), else ``$env_var``, else a prompt if ``prompt``
    and a terminal is attached; None when none is given."""
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as error:
            raise click.UsageError(f"cannot read {file}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise click.UsageError(f"{file} is not UTF-8 text") from None
        return text.splitlines()[0].encode() if text else b""
    value = os.environ.get(env_var)
    if value is not None:
        return value.encode()
    if prompt and sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True, default="", show_default=False)).encode()
    return None
