"""``certgate request ...``: the guide's Security :: Certificate Requests."""

from __future__ import annotations

import click

from certgate.cli.context import Options
from certgate.cli.output import (
    echo,
    emit_document,
    emit_documents,
    fields,
    json_option,
    table,
)
from certgate.schemas import CertificateRequest, DeletedRequest
from certgate.service import requests


@click.group()
def request() -> None:
    """Certificate signing requests (create them with 'cert create --request')."""


@request.command("list")
@json_option
@click.pass_obj
def list_(options: Options, as_json: bool) -> None:
    """Subject, Alternative Name(s) and Fingerprint of every request."""
    with options.appliance() as app:
        views = requests.list_requests(app)
    if as_json:
        emit_documents(CertificateRequest, views)
        return
    table(
        ["ID", "Friendly Name", "Subject", "Alternative Name(s)", "Fingerprint"],
        [
            [v.id, v.friendly_name, v.subject, ", ".join(v.sans), v.fingerprint_sha256]
            for v in views
        ],
    )


@request.command()
@click.argument("reference")
@json_option
@click.pass_obj
def show(options: Options, reference: str, as_json: bool) -> None:
    """One request with its PEM Request Data, to paste to a certificate authority."""
    with options.appliance() as app:
        view = requests.show_request(app, reference)
    if as_json:
        emit_document(CertificateRequest, view)
        return
    fields(
        [
            ("ID", view.id),
            ("Friendly Name", view.friendly_name),
            ("Subject", view.subject),
            ("Alternative Name(s)", view.sans or ["None"]),
            ("SHA-256 Fingerprint", view.fingerprint_sha256),
            ("SHA-1 Fingerprint", view.fingerprint_sha1),
            ("Private Key", "Available" if view.has_private_key else "Not available"),
            ("Issued certificates", [str(i) for i in view.certificate_ids] or ["None yet"]),
        ]
    )
    echo("\nRequest Data:")
    echo(view.pem, nl=False)


@request.command()
@click.argument("reference")
@json_option
@click.pass_obj
def delete(options: Options, reference: str, as_json: bool) -> None:
    """Delete a request (its key too, unless a certificate uses it)."""
    with options.appliance() as app:
        request_id = requests.show_request(app, reference).id
        key_deleted = requests.delete_request(app, reference, options.actor)
    if as_json:
        emit_document(DeletedRequest, {"id": request_id, "private_key_deleted": key_deleted})
        return
    echo("deleted request" + (" and its unused private key" if key_deleted else ""))
