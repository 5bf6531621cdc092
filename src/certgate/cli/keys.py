"""``certgate key``: the master key that seals every private key in the store. ``rotate``
makes a new one for the whole cluster; ``install`` puts it on each other node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from certgate.cli.context import FILE, Options, command_options
from certgate.cli.output import echo, emit_json
from certgate.service import master_key, rotation
from certgate.service.appliance import INSTALL, store_url

F = TypeVar("F", bound=Callable[..., Any])


@click.group("key")
def key_group() -> None:
    """The master key: rotate it, install it on the other nodes."""


@key_group.command("rotate")
@command_options
def key_rotate(options: Options, as_json: bool) -> None:
    """Make a new master key and re-seal every private key and secret of the store with it,
    in one transaction; this node's master.key becomes the new key. Copy it to every other
    node and run 'certgate key install' there."""
    rotated = options.call(rotation.rotate, options.actor)
    if as_json:
        emit_json(
            {
                "generation": rotated.generation,
                "key_file": str(rotated.key_file),
                "private_keys": rotated.private_keys,
                "other_secrets": rotated.other_secrets,
            }
        )
        return
    echo(
        f"master key generation {rotated.generation}: {rotated.private_keys} private key(s) and "
        f"{rotated.other_secrets} other secret(s) re-sealed. The new key is {rotated.made_at}: "
        f"copy it (mode 0600) to every other node and run '{INSTALL}' there; "
        "until then they serve what they had loaded and load no change"
    )


def master_key_file_option(help_text: str, *, required: bool = False) -> Callable[[F], F]:
    """``--master-key-file FILE``: a copy of the cluster's master key (``init --join``,
    ``key install``)."""
    return click.option(
        "--master-key-file",
        required=required,
        type=FILE,
        help=help_text,
    )


@key_group.command("install")
@master_key_file_option(
    "The cluster's current master key (master.key of the node that rotated it, mode 0600).",
    required=True,
)
@command_options
def key_install(options: Options, master_key_file: Path, as_json: bool) -> None:
    """Make the cluster's current master key this node's (after 'certgate key rotate' on
    another node); a key that is not the store's current one is refused, and nothing is
    written. A running 'certgate serve' picks it up within a second."""
    url = store_url(options.data_dir, options.database_url)
    installed = master_key.install(options.data_dir, url, master_key_file)
    if as_json:
        emit_json({"generation": installed.generation, "key_file": str(installed.key_file)})
        return
    echo(
        f"installed master key generation {installed.generation} as {installed.key_file}; a "
        "running 'certgate serve' loads it within a second"
    )
