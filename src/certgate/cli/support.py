"""``certgate support-package``: the zip the guide's "Update the Appliance" asks for."""

from __future__ import annotations

from pathlib import Path

import click

from certgate.cli.context import Options, command_options, output_option
from certgate.cli.output import echo, emit_json
from certgate.service.support import save_support_package


@click.command("support-package")
@output_option("The .zip file")
@command_options
def support_package_command(options: Options, output: Path, as_json: bool) -> None:
    """Write the support package: Status > Basics, the TLS settings, every certificate and
    its chain (PEM), their warnings and the address assignments. Never a private key or a
    password."""
    package = options.call(save_support_package, output, options.actor)
    if as_json:
        emit_json(
            {
                "file": str(output),
                "bytes": len(package.data),
                "certificates": package.certificates,
                "members": package.members,
            }
        )
        return
    echo(
        f"wrote {output} ({len(package.data)} bytes): status, settings, addresses and "
        f"{package.certificates} certificate(s) with their chains and warnings; no private key"
    )
