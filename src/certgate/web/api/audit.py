"""/audit: the audit trail, newest first, for administrators and auditors. The document is
the service's own (``AuditPage.to_json``), the one ``certgate audit list --json`` prints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import Field

from certgate.service import audit
from certgate.web.api.deps import App, Viewer
from certgate.web.api.openapi import problem_responses
from certgate.web.api.schemas import Instant, Out

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEvent(Out):
    id: int
    at: Instant
    actor: str = Field(description="A username, `token:<name>`, `cli:<OS user>` or `appliance`.")
    source: str = Field(description="The client's address, `cli` or `appliance`.")
    action: str = Field(examples=["key.export"])
    target: str = Field(description="What it was done to: a name and fingerprint, an address.")
    detail: str


class AuditPage(Out):
    events: list[AuditEvent] = Field(description="Newest first.")
    older: int | None = Field(
        description="Pass as `before` for the next (older) events; null at the oldest."
    )


_TIME = (
    "ISO 8601 (`2026-12-04`, `2026-12-04T19:30`; UTC unless an offset is given) or a time "
    "ago (`30m`, `12h`, `7d`, `2w`)."
)


@router.get(
    "",
    summary="List audit events",
    response_model=AuditPage,
    responses=problem_responses(401, 422),
)
async def list_events(
    app: App,
    _: Viewer,
    actor: Annotated[str, Query(max_length=200, description="Any part of who.")] = "",
    action: Annotated[
        str,
        Query(
            max_length=64,
            description="An action (`key.export`) or a family ending in `.` (`key.`).",
        ),
    ] = "",
    target: Annotated[str, Query(max_length=300, description="Any part of what.")] = "",
    since: Annotated[str, Query(max_length=64, description="From then on. " + _TIME)] = "",
    until: Annotated[str, Query(max_length=64, description="Before then. " + _TIME)] = "",
    before: Annotated[
        int,
        Query(ge=0, le=2**63 - 1, description="Only events older than this id (0: the newest)."),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = audit.DEFAULT_LIMIT,
) -> JSONResponse:
    """Every change and every use of a private key: who, from where, what. Administrators
    and auditors may read it; nobody can change it."""
    now = app.now()
    wanted = audit.wanted_events(
        now, actor=actor, action=action, target=target, since=since, until=until, before=before
    )
    page = await run_in_threadpool(audit.list_events, app, wanted, limit)
    return JSONResponse(page.to_json())
