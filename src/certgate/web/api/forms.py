"""The Create page's form, from either API body (self-signed certificate or request)."""

from __future__ import annotations

from certgate.limits import DEFAULT_VALIDITY_DAYS
from certgate.pki.keys import KeySpec
from certgate.pki.names import SubjectFields
from certgate.schemas import CreateCertificateBody, CreateRequestBody
from certgate.service.certificates import CreateForm


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
