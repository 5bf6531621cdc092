"""The Create page's form, from either API body (self-signed certificate or request), and
the answer to a new request."""

from __future__ import annotations

from fastapi import Response

from certgate.limits import DEFAULT_VALIDITY_DAYS
from certgate.pki.keys import KeySpec
from certgate.pki.names import SubjectFields
from certgate.schemas import (
    CertificateRequest,
    CreateCertificateBody,
    CreatedRequest,
    CreateRequestBody,
)
from certgate.service import requests
from certgate.service.appliance import Appliance
from certgate.service.certificates import Created, CreateForm
from certgate.web.api.paths import locate


def create_form(body: CreateRequestBody) -> CreateForm:
    subject = body.subject
    return CreateForm(
        friendly_name=body.friendly_name,
        subject=SubjectFields(
            common_name=subject.common_name,
            country=subject.country,
            state=subject.state,
            city=subject.city,
            organization=subject.organization,
            organizational_unit=subject.organizational_unit,
        ),
        sans=list(body.subject_alternative_names),
        key=KeySpec(body.key),
        days=body.days if isinstance(body, CreateCertificateBody) else DEFAULT_VALIDITY_DAYS,
    )


def created_request(app: Appliance, created: Created, response: Response) -> CreatedRequest:
    """What a new request answers (Create Certificate Request, or a renewal request from a
    certificate): its place (``Location``), the request and the notices."""
    locate(response, "/requests", created.id)
    view = requests.show_request(app, created.id)
    return CreatedRequest(request=CertificateRequest.model_validate(view), notices=created.notices)
