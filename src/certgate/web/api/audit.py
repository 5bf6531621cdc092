"""/audit: the audit trail, newest first, for administrators and auditors. The document
(``certgate.schemas.AuditPage``) is the one ``certgate audit list --json`` prints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from certgate.limits import AUDIT_ACTOR_MAX, AUDIT_TARGET_MAX, ROW_ID_MAX
from certgate.schemas import AuditPage
from certgate.service import audit
from certgate.web.api.deps import App, Viewer
from certgate.web.api.openapi import problem_responses

router = APIRouter(prefix="/audit", tags=["audit"])


_TIME = (
    "ISO 8601 (`2026-12-04`, `2026-12-04T19:30`; UTC unless an offset is given) or a time "
    "ago (`30m`, `12h`, `7d`, `2w`)."
)


@router.get("", summary="List audit events", responses=problem_responses(422))
async def list_events(
    app: App,
    _: Viewer,
    actor: Annotated[str, Query(max_length=AUDIT_ACTOR_MAX, description="Any part of who.")] = "",
    action: Annotated[
        str,
        Query(
            max_length=64,
            description="An action (`key.export`) or a family ending in `.` (`key.`).",
        ),
    ] = "",
    target: Annotated[
        str, Query(max_length=AUDIT_TARGET_MAX, description="Any part of what.")
    ] = "",
    since: Annotated[str, Query(max_length=64, description="From then on. " + _TIME)] = "",
    until: Annotated[str, Query(max_length=64, description="Before then. " + _TIME)] = "",
    before: Annotated[
        int,
        Query(ge=0, le=ROW_ID_MAX, description="Only events older than this id (0: the newest)."),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIMIT)] = audit.DEFAULT_LIMIT,
) -> AuditPage:
    """Every change and every use of a private key: who, from where, what. Administrators
    and auditors may read it; nobody can change it."""
    now = app.now()
    wanted = audit.wanted_events(
        now, actor=actor, action=action, target=target, since=since, until=until, before=before
    )
    page = await run_in_threadpool(audit.list_events, app, wanted, limit)
    return AuditPage.model_validate(page)
