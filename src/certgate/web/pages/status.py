"""Status > Basics: the guide's Appliance Statistics table and what each listener serves."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.service.networking import list_addresses
from certgate.service.nodes import list_nodes
from certgate.service.status import appliance_status, statistics
from certgate.service.support import EXTENSION, FILE_STEM, MEDIA_TYPE, build_support_package
from certgate.web.pages.access import Poster, Viewer, call
from certgate.web.pages.rendering import PREFIX, download, redirect, render

router = APIRouter()


@router.get(PREFIX)
async def home(_: Viewer) -> Response:
    return redirect(PREFIX + "/status")


@router.get(PREFIX + "/status")
async def basics(request: Request, principal: Viewer) -> Response:
    status = await call(request, appliance_status)
    addresses = await call(request, list_addresses)
    nodes = await call(request, list_nodes)
    names = {a.certificate_fingerprint: (a.certificate_id, a.certificate_name) for a in addresses}
    return render(
        request,
        "status.html",
        {
            "title": "Status :: Basics",
            "section": "status",
            "status": status,
            "statistics": statistics(status),
            "names": names,
            "nodes": nodes,
        },
        principal=principal,
    )


@router.post(PREFIX + "/status/support-package")
async def support_package(request: Request, principal: Poster) -> Response:
    """The support package the guide's "Update the Appliance" asks for (no key, no password)."""
    package = await call(request, build_support_package, principal.actor)
    return download(package.data, package.name, EXTENSION, MEDIA_TYPE, FILE_STEM)
