"""``certgate backup`` and ``certgate restore``: the whole appliance (store and master key) in
one file encrypted with a passphrase, and back into an empty data directory."""

from __future__ import annotations

from pathlib import Path

import click

from certgate.cli.context import FILE, Options, command_options, output_option
from certgate.cli.output import echo, emit_json
from certgate.cli.secrets_input import Secret
from certgate.errors import BackupError
from certgate.service import backup as backups

PASSPHRASE = Secret("--passphrase-file", "the backup's passphrase", "CERTGATE_BACKUP_PASSPHRASE")


def _passphrase(file: Path | None, *, new: bool) -> bytes:
    secret = PASSPHRASE.read(file, "Backup passphrase", new=new)
    if not secret:
        raise BackupError(
            f"a backup needs a passphrase: {PASSPHRASE.option_name}, ${PASSPHRASE.env_var} or "
            "a terminal"
        )
    return secret


@click.command("backup")
@output_option("The backup file")
@PASSPHRASE.option
@command_options
def backup_command(
    options: Options, output: Path, passphrase_file: Path | None, as_json: bool
) -> None:
    """Write an encrypted copy of the whole appliance (store and master key); safe while
    'certgate serve' runs."""
    passphrase = _passphrase(passphrase_file, new=True)
    report = options.call(backups.create_backup, output, passphrase, options.actor)
    if as_json:
        emit_json(report.to_json())
        return
    echo(
        f"wrote {report.file} ({report.bytes} bytes): the {report.store} store with "
        f"{report.certificates} certificate(s), {report.private_keys} private key(s), "
        "and the master key"
    )


@click.command("restore")
@click.argument("backup_file", type=FILE)
@PASSPHRASE.option
@command_options
def restore_command(
    options: Options, backup_file: Path, passphrase_file: Path | None, as_json: bool
) -> None:
    """Restore a backup into an empty data directory (and, with --database-url, an empty
    PostgreSQL database); then 'certgate serve' serves what the backup held."""
    passphrase = _passphrase(passphrase_file, new=False)
    report = backups.restore_backup(
        options.data_dir, options.database_url, backup_file, passphrase, options.actor
    )
    if as_json:
        emit_json(report.to_json())
        return
    echo(
        f"restored {report.data_dir} (store: {report.database}) from the backup of "
        f"{report.backup_created_at}: {report.certificates} certificate(s), "
        f"{report.private_keys} private key(s)"
    )
