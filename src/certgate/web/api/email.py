"""/email: Security > Email Configuration (the SMTP relay, the administrators' addresses, the
days before expiry at which notices go) and Send Test Email."""

from __future__ import annotations

from fastapi import APIRouter

from certgate.schemas import EmailSettings, EmailSettingsChange, EmailTestResult
from certgate.service import email
from certgate.web.api.deps import Admin, App, Viewer
from certgate.web.api.openapi import problem_responses

router = APIRouter(prefix="/email", tags=["email"])


@router.get("", summary="Show the email settings")
def get_email_settings(app: App, _: Viewer) -> EmailSettings:
    """The password is never shown: ``password_set`` says whether one is stored."""
    return EmailSettings.model_validate(email.get_settings(app))


@router.put("", summary="Change the email settings", responses=problem_responses(422))
def put_email_settings(app: App, principal: Admin, body: EmailSettingsChange) -> EmailSettings:
    """Fields left out keep their value; the whole result is checked before it is stored.
    The password is sealed with the master key and never answered back."""
    updated = email.update_settings(
        app,
        host=body.host,
        port=body.port,
        security=body.security,
        verify_certificate=body.verify_certificate,
        ca_bundle=body.ca_bundle,
        from_address=body.from_address,
        to_addresses=body.to_addresses,
        username=body.username,
        password=None if body.password is None else body.password.get_secret_value(),
        notice_days=body.notice_days,
        actor=principal.actor,
    )
    return EmailSettings.model_validate(updated)


@router.post("/test", summary="Send a test email", responses=problem_responses(422, 502))
def send_test_email(app: App, _: Admin) -> EmailTestResult:
    """Sends at once, to every administrator address. When the relay cannot be reached or
    refuses the mail, the answer is a 502 problem (type `mail`) quoting the relay."""
    return EmailTestResult.model_validate(email.send_test(app))
