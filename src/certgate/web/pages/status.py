"""Status > Basics: the guide's Appliance Statistics table and what each listener serves."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from certgate.service.networking import list_addresses
from certgate.service.status import appliance_status
from certgate.web.pages.common import PREFIX, Viewer, appliance, redirect, render

router = APIRouter()


@router.get(PREFIX)
async def home(_: Viewer) -> Response:
    return redirect(PREFIX + "/status")


@router.get(PREFIX + "/status")
async def basics(request: Request, principal: Viewer) -> Response:
    app = appliance(request)
    status = await run_in_threadpool(appliance_status, app)
    addresses = await run_in_threadpool(list_addresses, app)
    names = {a.certificate_fingerprint: (a.certificate_id, a.certificate_name) for a in addresses}
    return render(
        request,
        "status.html",
        {"title": "Status :: Basics", "section": "status", "status": status, "names": names},
        principal=principal,
    )
