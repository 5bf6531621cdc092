"""``certgate cert ...``: list, show, create, import, export, delete, replace, chain, rename."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from certgate.cli.context import (
    FILE,
    Options,
    command_options,
    confirm_change_option,
    output_option,
    read_file,
)
from certgate.cli.forms import form_options
from certgate.cli.output import (
    echo,
    emit_document,
    emit_json,
    report,
    report_fields,
    report_table,
    table,
)
from certgate.cli.secrets_input import Secret
from certgate.errors import ExportError
from certgate.limits import (
    DEFAULT_VALIDITY_DAYS,
    MANUAL_CHAIN_MAX,
    VALIDITY_DAYS_MAX,
    VALIDITY_DAYS_MIN,
)
from certgate.pki.diagnostics import format_time
from certgate.pki.export import ExportOptions
from certgate.pki.keys import KeySpec
from certgate.pki.lint import RULES
from certgate.pki.loader import MAX_FILE_SIZE
from certgate.pki.names import SubjectFields
from certgate.schemas import (
    Certificate,
    ChainedCertificate,
    CreatedCertificate,
    CreatedRequest,
    DeletedCertificate,
    ImportResult,
    Replacement,
    document,
)
from certgate.service import certificates, exports, imports, replacement, requests
from certgate.service.appliance import Appliance
from certgate.service.replacement import OLD_CERTIFICATE_NOTE
from certgate.service.views import CertificateView


@click.group()
def cert() -> None:
    """Certificates: the guide's Security > Certificates."""


#: The guide's Certificates table, for a certificate without a SAN.
NO_SANS = "No Supported Names"
IMPORT_PASSWORD = Secret("--password-file", "the password", "CERTGATE_IMPORT_PASSWORD")
EXPORT_PASSPHRASE = Secret("--passphrase-file", "the passphrase", "CERTGATE_EXPORT_PASSPHRASE")


@cert.command("list")
@command_options
def list_(options: Options, as_json: bool) -> None:
    """Every certificate with its warnings, addresses and whether its key is available."""
    views = options.call(certificates.list_certificates)
    report_table(as_json, Certificate, views, LIST_HEADERS, _list_row)


#: The guide's Certificates table.
LIST_HEADERS = (
    "ID",
    "Friendly Name",
    "Issued To",
    "Issued By",
    "Expiration",
    "Alternative Name(s)",
    "IP Address(es)",
    "Private Key?",
    "Warnings",
)


def _list_row(view: CertificateView) -> list[object]:
    return [
        view.id,
        view.friendly_name + (" (factory)" if view.is_factory else ""),
        view.issued_to,
        view.issued_by,
        format_time(view.not_after),
        ", ".join(view.sans) or NO_SANS,
        " ".join(view.ip_addresses) or "N/A",
        "Yes" if view.has_private_key else "No",
        f"{len(view.warnings)} Warning(s)" if view.warnings else "",
    ]


@cert.command()
@click.argument("reference")
@command_options
def show(options: Options, reference: str, as_json: bool) -> None:
    """The Edit Certificate Configuration fields of one certificate (id or fingerprint)."""
    view = options.call(certificates.show_certificate, reference)
    report_fields(as_json, Certificate, view, _view_fields)


def _view_fields(view: CertificateView) -> list[tuple[str, object]]:
    return [
        ("ID", view.id),
        ("Certificate Friendly Name", view.friendly_name),
        ("Subject Name", view.subject),
        ("Issuer Name", view.issuer),
        ("Serial Number", view.serial),
        ("Signature Type", view.signature_type),
        ("Not Valid Before", format_time(view.not_before)),
        ("Not Valid After", format_time(view.not_after)),
        ("Public Key", view.public_key),
        ("Private Key", "Available" if view.has_private_key else "Not available"),
        ("Subject Alternative Names", view.sans or ["No Supported Names"]),
        ("Authority Info Access", view.authority_info_access or ["None"]),
        ("Role", view.role),
        ("Certificate Chain", [view.chain_mode.title(), *view.chain_subjects]),
        ("IP Addresses", view.ip_addresses or ["N/A"]),
        ("SHA-256 Fingerprint", view.fingerprint_sha256),
        ("SHA-1 Fingerprint", view.fingerprint_sha1),
        ("Warnings", [f"[{w.code}] {w.message}" for w in view.warnings] or ["None"]),
        *_lint_field(view),
    ]


def _lint_field(view: CertificateView) -> list[tuple[str, list[str]]]:
    if view.lint is None:
        return []
    found = [f"{finding.severity}: {finding.message} [{finding.code}]" for finding in view.lint]
    return [(RULES, found or ["No error or warning"])]


@cert.command()
@form_options(required=True)
@click.option(
    "--days",
    default=DEFAULT_VALIDITY_DAYS,
    show_default=True,
    type=click.IntRange(VALIDITY_DAYS_MIN, VALIDITY_DAYS_MAX),
    help="Validity of a self-signed certificate (a request has none: its CA sets it).",
)
@click.option(
    "--self-signed",
    "kind",
    flag_value="self-signed",
    default=True,
    help="Create a self-signed certificate (default).",
)
@click.option(
    "--request", "kind", flag_value="request", help="Create a certificate signing request instead."
)
@command_options
def create(
    options: Options,
    /,
    friendly_name: str,
    key_spec: str,
    common_name: str,
    sans: tuple[str, ...],
    days: int,
    kind: str,
    as_json: bool,
    **subject: str,
) -> None:
    """Create a key with a self-signed certificate or a certificate signing request."""
    given = click.get_current_context().get_parameter_source("days")
    if kind == "request" and given is not ParameterSource.DEFAULT:
        raise click.UsageError("--days is for a self-signed certificate: a request has no validity")
    form = certificates.CreateForm(
        friendly_name=friendly_name,
        subject=SubjectFields(common_name=common_name, **subject),
        sans=list(sans),
        key=KeySpec(key_spec),
        days=days,
    )
    with options.appliance() as app:
        created = certificates.create(
            app, form, "request" if kind == "request" else "self-signed", options.actor
        )
        report_created(app, created, as_json)


def report_created(app: Appliance, created: certificates.Created, as_json: bool) -> None:
    """What ``cert create`` and ``request create`` print: the API's document, or one line
    and the notices."""
    if as_json and created.kind == "request":
        view = requests.show_request(app, created.id)
        emit_document(CreatedRequest, {"request": view, "notices": created.notices})
        return
    if as_json:
        shown = certificates.show_certificate(app, created.id)
        emit_document(CreatedCertificate, {"certificate": shown, "notices": created.notices})
        return
    echo(f"created {created.kind} {created.id} ({created.fingerprint_sha256})")
    for notice in created.notices:
        echo(f"note: {notice}")


@cert.command("import")
@click.argument("files", nargs=-1, required=True, type=FILE)
@IMPORT_PASSWORD.option
@command_options
def import_(
    options: Options, files: tuple[Path, ...], password_file: Path | None, as_json: bool
) -> None:
    """Import certificates, keys and requests from files in any supported format."""
    # One byte over the limit is enough for the loader to say "too large".
    contents = [(str(path), read_file(path, MAX_FILE_SIZE + 1)) for path in files]
    password = IMPORT_PASSWORD.read(password_file)
    with options.appliance() as app:
        entries = imports.import_files(app, contents, password, options.actor)
        locked = {e.file for e in entries if e.error_code == "password-required"}
        if password is None and locked:
            password = IMPORT_PASSWORD.read(None, "Password")
            if password is not None:  # only the files that asked: the others are in
                retried = [(name, data) for name, data in contents if name in locked]
                again = imports.import_files(app, retried, password, options.actor)
                order = {name: index for index, (name, _) in enumerate(contents)}
                entries = sorted(
                    [e for e in entries if e.file not in locked] + again,
                    key=lambda entry: order[entry.file],
                )
    if as_json:
        emit_document(ImportResult, {"entries": entries})
    else:
        table(
            ["File", "Status", "Kind", "ID", "Message"],
            [[e.file, e.status, e.kind, e.id or "", e.message] for e in entries],
        )
    if password is None and any(e.error_code == "password-required" for e in entries):
        echo(f"give the password with {IMPORT_PASSWORD.given_by}", err=True)
    if any(entry.status == "error" for entry in entries):
        raise SystemExit(1)


@cert.command()
@click.argument("reference")
@output_option("The file")
@click.option("--no-certificate", is_flag=True, help="Leave the certificate out.")
@click.option("--key", "include_key", is_flag=True, help="Include the private key.")
@click.option("--chain", "include_chain", is_flag=True, help="Include the certificate chain.")
@click.option("--pem", is_flag=True, help="PEM instead of binary formats.")
@click.option("--legacy", is_flag=True, help="PKCS#12 with 3DES/SHA-1 for old Windows.")
@EXPORT_PASSPHRASE.option
@click.option(
    "--unencrypted-private-key",
    is_flag=True,
    help="Explicit opt-in: write the private key without a passphrase.",
)
@command_options
def export(
    options: Options,
    reference: str,
    output: Path,
    no_certificate: bool,
    include_key: bool,
    include_chain: bool,
    pem: bool,
    legacy: bool,
    passphrase_file: Path | None,
    unencrypted_private_key: bool,
    as_json: bool,
) -> None:
    """Export a certificate (DER), its key (PKCS#8), its chain (PKCS#7) or all (PKCS#12)."""
    passphrase = None
    if include_key:
        prompt = None if unencrypted_private_key else "Passphrase"
        passphrase = EXPORT_PASSPHRASE.read(passphrase_file, prompt, new=True)
    export_options = ExportOptions(
        include_certificate=not no_certificate,
        include_private_key=include_key,
        include_chain=include_chain,
        passphrase=passphrase or None,
        pem=pem,
        legacy_pkcs12=legacy,
        unencrypted_private_key=unencrypted_private_key,
    )
    exported = options.call(
        exports.export_certificate,
        reference,
        export_options,
        options.actor,
        deliver=lambda done: _write_private(output, done.data),
    )
    result = {
        "file": str(output),
        "format": exported.format.value,
        "bytes": len(exported.data),
        "media_type": exported.media_type,
    }
    if as_json:
        emit_json(result)
    else:
        echo(f"wrote {output} ({exported.format.value}, {len(exported.data)} bytes)")


def _write_private(path: Path, data: bytes) -> None:
    """Exports may hold a private key: create the file readable by its owner only."""
    import os

    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            # O_CREAT's mode applies to new files only: an existing 0644 file would keep it
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
    except OSError as error:
        raise ExportError(f"cannot write {path}: {error.strerror}") from None


@cert.command()
@click.argument("reference")
@click.option(
    "--reassign-to-factory",
    is_flag=True,
    help="Confirm: hand the addresses it secures to the factory certificate.",
)
@command_options
def delete(options: Options, reference: str, reassign_to_factory: bool, as_json: bool) -> None:
    """Delete a certificate (never the factory certificate)."""
    deleted = options.call(
        certificates.delete_certificate,
        reference,
        reassign_to_factory=reassign_to_factory,
        actor=options.actor,
    )
    if as_json:
        emit_document(DeletedCertificate, deleted)
        return
    key = " and its private key (nothing else used it)" if deleted.private_key_deleted else ""
    echo(f"deleted certificate {deleted.id} ({deleted.friendly_name}){key}")
    if deleted.addresses_moved_to_factory:
        moved = ", ".join(deleted.addresses_moved_to_factory)
        echo(f"{moved} now served by the factory certificate")
    if deleted.chains_incomplete:
        echo(
            "the chain of these certificates is now incomplete (import their issuer again): "
            + ", ".join(deleted.chains_incomplete)
        )


@cert.command()
@click.argument("old")
@click.option(
    "--with",
    "new",
    required=True,
    metavar="CERT",
    help="The certificate (id or fingerprint) that takes over every address of OLD.",
)
@confirm_change_option
@command_options
def replace(options: Options, old: str, new: str, confirm: bool, as_json: bool) -> None:
    """Replace OLD on every address it secures, in one step, live on the next handshake.

    OLD stays on the appliance: it may be removed and/or revoked as necessary. A CERT under
    another root, or one clients will refuse (expired, not yet valid, incomplete chain, a
    hostname not covered), needs --confirm."""
    done = options.call(replacement.replace_certificate, old, new, options.actor, confirm=confirm)
    report(
        as_json,
        Replacement,
        done,
        f"{', '.join(done.addresses)} now present {done.new.friendly_name!r} (certificate "
        f"{done.new.id}) instead of {done.old.friendly_name!r}: live on the next handshake",
        f"{done.old.friendly_name!r} (certificate {done.old.id}) {OLD_CERTIFICATE_NOTE}",
    )


@cert.command()
@click.argument("reference")
@click.option("--automatic", "mode", flag_value="automatic", help="Build the chain from the store.")
@click.option(
    "--manual",
    "manual_file",
    type=FILE,
    help="Use this PEM chain, in any order (it is put nearest issuer first).",
)
@confirm_change_option
@command_options
def chain(
    options: Options,
    reference: str,
    mode: str | None,
    manual_file: Path | None,
    confirm: bool,
    as_json: bool,
) -> None:
    """Choose the certificate chain: automatic or manually specified (PEM).

    For a certificate that secures addresses, a chain ending at another root, or one
    clients will refuse, needs --confirm."""
    if (mode is None) == (manual_file is None):
        raise click.UsageError("give exactly one of --automatic or --manual PEMFILE")
    # One byte over the limit is enough for the service to say "larger than".
    chain_pem = None if manual_file is None else read_file(manual_file, MANUAL_CHAIN_MAX + 1)
    notices: list[str] = []
    with options.appliance() as app:
        if chain_pem is not None:
            notices = certificates.set_manual_chain(
                app, reference, chain_pem, options.actor, confirm=confirm
            )
        else:
            certificates.set_automatic_chain(app, reference, options.actor, confirm=confirm)
        view = certificates.show_certificate(app, reference)
    if as_json:
        emit_json({**document(ChainedCertificate, view), "notices": notices})
        return
    echo(f"chain of {view.id}: {view.chain_mode}")
    for subject in view.chain_subjects:
        echo(f"  {subject}")
    for notice in notices:
        echo(f"note: {notice}")


@cert.command()
@click.argument("reference")
@click.argument("friendly_name")
@command_options
def rename(options: Options, reference: str, friendly_name: str, as_json: bool) -> None:
    """Change a certificate's friendly name."""
    with options.appliance() as app:
        certificates.rename(app, reference, friendly_name, options.actor)
        view = certificates.show_certificate(app, reference)
    report(as_json, Certificate, view, f"renamed certificate {view.id} to {view.friendly_name!r}")
