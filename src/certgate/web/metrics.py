"""``GET /metrics``: the Prometheus scrape, for an administrator or auditor (a session or an
API token, as every read of the API). Outside /api/v1 and its OpenAPI document: it answers
Prometheus's text format, where scrapers look for it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from certgate.service.metrics import MEDIA_TYPE, render_metrics
from certgate.web.api.deps import App, Viewer

router = APIRouter()


@router.get("/metrics", include_in_schema=False)  # Prometheus text, not the JSON API
async def metrics(app: App, _: Viewer) -> Response:
    """Certificate expiry times, the certificate assigned to and served on each address,
    each listener's state, and the TLS front end's handshakes and open connections."""
    return Response(await run_in_threadpool(render_metrics, app), media_type=MEDIA_TYPE)
