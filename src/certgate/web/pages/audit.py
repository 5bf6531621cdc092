"""Status > Audit Log: who changed what, from where, and every use of a private key;
filtered by who, action, target and time, newest first, a page at a time."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.errors import ValidationError
from certgate.service import audit
from certgate.web.pages.access import Viewer, appliance, call
from certgate.web.pages.rendering import PREFIX, render

router = APIRouter()

PAGE = PREFIX + "/audit"
_FIELDS = ("actor", "action", "target", "since", "until")


@router.get(PAGE)
async def audit_log(request: Request, principal: Viewer) -> Response:
    app = appliance(request)
    state = {name: request.query_params.get(name, "").strip()[:300] for name in _FIELDS}
    before_text = request.query_params.get("before", "")
    errors: dict[str, str] = {}
    page: audit.AuditPage | None = None
    try:
        before = _event_id(before_text)
        wanted = audit.wanted_events(app.now(), before=before, **state)
        page = await call(request, audit.list_events, wanted, audit.DEFAULT_LIMIT)
    except ValidationError as error:
        errors[f"audit-{error.field}"] = error.reason
    older = None
    if page is not None and page.older is not None:
        older = PAGE + "?" + urlencode({**_given(state), "before": page.older})
    return render(
        request,
        "audit.html",
        {
            "title": "Status :: Audit Log",
            "section": "status",
            "subsection": "audit",
            "state": state,
            "actions": audit.ACTION_FILTERS,
            "events": page.events if page is not None else [],
            "older": older,
            "newest": (PAGE + "?" + urlencode(_given(state))) if before_text else None,
            "errors": errors,
        },
        principal=principal,
        status_code=422 if errors else 200,
    )


def _given(state: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in state.items() if value}


def _event_id(text: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise ValidationError("before", f"{text[:40]!r} is not an event number")
    return int(text)
