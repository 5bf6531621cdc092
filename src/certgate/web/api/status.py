"""/status: Status > Basics (the Appliance Statistics and what each listener serves)."""

from __future__ import annotations

from fastapi import APIRouter

from certgate.service import status
from certgate.web.api.deps import App, Viewer
from certgate.web.api.openapi import problem_responses
from certgate.web.api.schemas import ApplianceStatus, Me

router = APIRouter(tags=["status"])


@router.get(
    "/status",
    summary="Show the appliance status",
    response_model=ApplianceStatus,
    responses=problem_responses(401),
)
def get_status(app: App, _: Viewer) -> ApplianceStatus:
    return ApplianceStatus.model_validate(status.appliance_status(app))


@router.get(
    "/me",
    summary="Show who is calling",
    response_model=Me,
    responses=problem_responses(401),
)
def who_am_i(principal: Viewer) -> Me:
    """The caller's name (``token:NAME`` for an API token), role and how it authenticated."""
    return Me.model_validate(principal)
