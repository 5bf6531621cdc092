"""``certgate``: init, cert, request. Thin: every rule lives in the service layer."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from certgate import __version__
from certgate.cli.accounts import token, user
from certgate.cli.acme import acme_group
from certgate.cli.audit import audit_group
from certgate.cli.backup import backup_command, restore_command
from certgate.cli.certs import cert
from certgate.cli.context import Options, command_options
from certgate.cli.email import email_group, notify_command
from certgate.cli.keys import key_group, master_key_file_option
from certgate.cli.network import ip, status_command, tls
from certgate.cli.nodes import node_group
from certgate.cli.output import TerminalFormatter, echo, emit_json
from certgate.cli.requests import request
from certgate.cli.secrets_input import read_secret
from certgate.cli.serve import serve
from certgate.cli.support import support_package_command
from certgate.errors import CertgateError, internal_error
from certgate.service.appliance import DATA_DIR_ENV, DATABASE_URL_ENV
from certgate.service.networking import LOOPBACK
from certgate.service.setup import initialise
from certgate.service.setup import join as join_cluster
from certgate.service.tls_settings import get_settings


@click.group()
@click.version_option(__version__, prog_name="certgate")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=DATA_DIR_ENV,
    default=Path("data"),
    show_default=True,
    help="Data directory (master key, SQLite database). Env: CERTGATE_DATA_DIR.",
)
@click.option(
    "--database-url",
    envvar=DATABASE_URL_ENV,
    default=None,
    help="Use this database instead of the SQLite file (postgresql://...).",
)
@click.pass_context
def cli(context: click.Context, data_dir: Path, database_url: str | None) -> None:
    """certgate: the certificate subsystem of a network appliance."""
    context.obj = Options(data_dir, database_url)


@cli.command()
@click.option(
    "--admin-password-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Password of the first administrator, 'admin'. Env: CERTGATE_ADMIN_PASSWORD. "
    "Without either, one is generated and printed once.",
)
@click.option(
    "--address",
    default=LOOPBACK,
    show_default=True,
    help="The IP address to configure when none is (it presents the factory certificate).",
)
@click.option(
    "--no-address",
    is_flag=True,
    help="Configure no address (then 'certgate serve' listens nowhere until 'certgate ip add').",
)
@click.option(
    "--join",
    is_flag=True,
    help="Add this node to the cluster whose store --database-url names (initialised by "
    "another node): its data directory gets the cluster's master key, from "
    "--master-key-file, once that key is known to open the store.",
)
@master_key_file_option(
    "With --join: a copy of the cluster's master key (master.key of one of its nodes, mode 0600)."
)
@command_options
def init(
    options: Options,
    admin_password_file: Path | None,
    address: str,
    no_address: bool,
    join: bool,
    master_key_file: Path | None,
    as_json: bool,
) -> None:
    """Create the data directory, the database, the factory certificate, the first
    administrator and, when no address is configured, 127.0.0.1 (idempotent); with --join,
    add this node to an initialised store instead."""
    if join != (master_key_file is not None):
        raise click.UsageError("--join and --master-key-file go together")
    if join and admin_password_file is not None:
        raise click.UsageError("--join keeps the cluster's accounts: no --admin-password-file")
    if join:
        done = join_cluster(options.data_dir, options.database_url, master_key_file or Path())
    else:
        secret = read_secret(admin_password_file, "CERTGATE_ADMIN_PASSWORD", None)
        done = initialise(
            options.data_dir,
            options.database_url,
            secret.decode() if secret is not None else None,
            options.actor,
            first_address=None if no_address else address,
        )
    if as_json:
        emit_json(
            {
                "data_dir": str(done.data_dir),
                "created": done.created,
                "factory_certificate_id": done.factory_certificate_id,
                "serial_number": done.serial_number,
                "guid": done.guid,
                "admin_password": done.admin_password,
                "address_added": done.address_added,
            }
        )
        return
    if join:
        echo(
            f"{done.data_dir}: joined the store (appliance {done.serial_number}); start "
            "'certgate serve --node NAME' with the same --database-url"
        )
        return
    state = "initialised" if done.created else "already initialised"
    echo(f"{done.data_dir}: {state}; factory certificate id {done.factory_certificate_id}")
    if done.admin_password:
        echo(f"administrator 'admin', password (shown only now): {done.admin_password}")
    if done.address_added:
        echo(
            f"configured the address {done.address_added} (there was none): after "
            f"'certgate serve', log in at {appliance_url(options, done.address_added)}"
        )


def appliance_url(options: Options, address: str) -> str:
    """Where the pages answer on ``address`` once ``certgate serve`` runs."""
    port = options.call(get_settings).https_port
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{port}/appliance"


cli.add_command(cert)
cli.add_command(request)
for command in (
    ip,
    tls,
    email_group,
    acme_group,
    notify_command,
    status_command,
    serve,
    node_group,
    key_group,
    user,
    token,
    audit_group,
    backup_command,
    restore_command,
    support_package_command,
):
    cli.add_command(command)


def main() -> None:
    """Run the CLI; a CertgateError becomes one line on stderr, never a traceback."""
    if logging.lastResort is not None:  # what a command logs, until ``serve`` sets a log up
        logging.lastResort.setFormatter(TerminalFormatter())
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort as error:
        echo("aborted", err=True)
        # Ctrl-C (at a prompt too, where click hides it): the shell's 130, not a failure's 1
        sys.exit(130 if isinstance(error.__context__, KeyboardInterrupt) else 1)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except CertgateError as error:
        echo(f"error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # the promise: no traceback reaches a user
        echo(internal_error(error), err=True)
        sys.exit(70)
