"""/status: Status > Basics (the Appliance Statistics and what each listener serves)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from certgate.errors import ForbiddenError
from certgate.schemas import ApplianceStatus, Me, OwnPassword
from certgate.service import auth, status, support
from certgate.web.api.deps import App, Caller, Viewer
from certgate.web.api.downloads import binary_responses, content_disposition, download
from certgate.web.api.openapi import NO_CONTENT, problem_responses
from certgate.web.head import is_head

router = APIRouter(tags=["status"])


@router.get("/status", summary="Show the appliance status")
def get_status(app: App, _: Viewer) -> ApplianceStatus:
    return ApplianceStatus.model_validate(status.appliance_status(app))


@router.get(
    "/support-package",
    summary="Download the support package",
    response_class=Response,
    responses={
        **binary_responses([support.MEDIA_TYPE], "The support package (.zip)."),
    },
)
def get_support_package(request: Request, app: App, principal: Viewer) -> Response:
    """The guide's "Update the Appliance" zip: Status > Basics, TLS settings, every
    certificate and its chain (PEM), their warnings and the address assignments. Never a
    private key, password or token value. The download is recorded in the audit trail
    (a HEAD is not)."""
    package = support.build_support_package(app, principal.actor, audited=not is_head(request))
    return download(
        package.data,
        support.MEDIA_TYPE,
        content_disposition(package.name, support.EXTENSION, support.FILE_STEM),
    )


@router.get("/me", summary="Show who is calling")
def who_am_i(principal: Viewer) -> Me:
    """The caller's name (``token:NAME`` for an API token), role and how it authenticated."""
    return Me.model_validate(principal)


@router.put(
    "/me/password",
    summary="Change your own password",
    **NO_CONTENT,
    responses=problem_responses(409, 422, 429),
)
async def change_own_password(
    request: Request, app: App, principal: Caller, body: OwnPassword
) -> None:
    """Any user, auditors included, with the current password; every session of theirs
    ends. An API token has no password (403)."""
    if principal.via == "token":
        raise ForbiddenError("an API token has no password; revoke it and create another")
    throttle, password = request.app.state.throttle, body.password.get_secret_value()
    delay = await run_in_threadpool(auth.begin_password_change, app, principal, password, throttle)
    await anyio.sleep(delay)  # slowed down without holding a thread
    await run_in_threadpool(
        auth.finish_password_change,
        app,
        principal,
        body.current_password.get_secret_value(),
        password,
        throttle,
    )
