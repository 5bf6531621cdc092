"""``certgate request ...``: the guide's Security :: Certificate Requests."""

from __future__ import annotations

import click

from certgate.cli.certs import report_created
from certgate.cli.context import Options, command_options
from certgate.cli.forms import form_options
from certgate.cli.output import (
    echo,
    report,
    report_fields,
    report_table,
)
from certgate.pki.keys import DEFAULT_KEY_SPEC, KeySpec
from certgate.pki.names import SubjectFields
from certgate.schemas import CertificateRequest, DeletedRequest
from certgate.service import certificates, renewal, requests
from certgate.service.views import RequestView


@click.group()
def request() -> None:
    """Certificate signing requests."""


@request.command()
@click.option(
    "--from-cert",
    "from_cert",
    metavar="CERT",
    help="Renew this certificate (id or fingerprint): the request is signed with its own "
    "private key and takes its subject and SANs, unless the options below say otherwise.",
)
@form_options(required=False)
@command_options
def create(
    options: Options,
    /,
    from_cert: str | None,
    friendly_name: str | None,
    key_spec: str | None,
    common_name: str | None,
    sans: tuple[str, ...],
    as_json: bool,
    **subject: str | None,
) -> None:
    """Create a certificate signing request: with a new key (--name, --cn...), or with the
    key of a certificate (--from-cert) for a certificate authority that wants a request to
    renew it. Importing the certificate the CA returns links it to the key."""
    with options.appliance() as app:
        if from_cert is not None:
            if key_spec is not None:
                raise click.UsageError(
                    "--key cannot be used with --from-cert: a renewal request is signed with "
                    "the certificate's own key"
                )
            changes = renewal.Changes(
                friendly_name, {"common_name": common_name, **subject}, list(sans) or None
            )
            created = renewal.renew_request(app, from_cert, changes, options.actor)
        else:
            if friendly_name is None or common_name is None:
                raise click.UsageError("give --name and --cn, or --from-cert CERT to renew one")
            form = certificates.CreateForm(
                friendly_name=friendly_name,
                subject=SubjectFields(
                    common_name=common_name,
                    **{name: value or "" for name, value in subject.items()},
                ),
                sans=list(sans),
                key=KeySpec(key_spec or DEFAULT_KEY_SPEC.value),
            )
            created = certificates.create(app, form, "request", options.actor)
        report_created(app, created, as_json)


@request.command("list")
@command_options
def list_(options: Options, as_json: bool) -> None:
    """Subject, Alternative Name(s) and Fingerprint of every request."""
    views = options.call(requests.list_requests)
    report_table(
        as_json,
        CertificateRequest,
        views,
        ["ID", "Friendly Name", "Subject", "Alternative Name(s)", "Fingerprint"],
        lambda v: [v.id, v.friendly_name, v.subject, ", ".join(v.sans), v.fingerprint_sha256],
    )


@request.command()
@click.argument("reference")
@command_options
def show(options: Options, reference: str, as_json: bool) -> None:
    """One request with its PEM Request Data, to paste to a certificate authority."""
    view = options.call(requests.show_request, reference)
    report_fields(as_json, CertificateRequest, view, _request_fields)
    if as_json:
        return
    echo("\nRequest Data:")
    echo(view.pem, nl=False)


def _request_fields(view: RequestView) -> list[tuple[str, object]]:
    return [
        ("ID", view.id),
        ("Friendly Name", view.friendly_name),
        ("Subject", view.subject),
        ("Alternative Name(s)", view.sans or ["None"]),
        ("SHA-256 Fingerprint", view.fingerprint_sha256),
        ("SHA-1 Fingerprint", view.fingerprint_sha1),
        ("Private Key", "Available" if view.has_private_key else "Not available"),
        ("Renewal of", [str(i) for i in view.renews] or ["None"]),
        ("Issued certificates", [str(i) for i in view.certificate_ids] or ["None yet"]),
    ]


@request.command()
@click.argument("reference")
@command_options
def delete(options: Options, reference: str, as_json: bool) -> None:
    """Delete a request (its key too, unless a certificate or another request uses it)."""
    with options.appliance() as app:
        deleted = requests.delete_request(app, reference, options.actor)
    report(
        as_json,
        DeletedRequest,
        deleted,
        "deleted request" + (" and its unused private key" if deleted.private_key_deleted else ""),
    )
