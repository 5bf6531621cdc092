"""The web application: /appliance pages and the /api/v1 JSON API, one ASGI app.

Views are thin: they parse the request, call the service layer, and render or serialise.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from certgate import __version__
from certgate.service.appliance import Appliance
from certgate.service.auth import LoginThrottle
from certgate.web.api import router as api_router
from certgate.web.api.openapi import API_PREFIX
from certgate.web.errors import install_error_handlers
from certgate.web.head import HeadAsGet
from certgate.web.headers import ApiHeaders
from certgate.web.hsts import Hsts
from certgate.web.limits import MAX_FORM_BODY, MAX_IMPORT_BODY, BodyLimit
from certgate.web.metrics import router as metrics_router
from certgate.web.pages import router as pages_router
from certgate.web.pages.import_ import PAGE as IMPORT_PAGE
from certgate.web.pages.rendering import STATIC


def create_app(appliance: Appliance) -> FastAPI:
    app = FastAPI(
        title="certgate API",
        version=__version__,
        openapi_url=API_PREFIX + "/openapi.json",
        docs_url=None,  # a page of the appliance instead: web/pages/api_docs.py
        redoc_url=None,
        redirect_slashes=False,  # web/slashes.py: a relative Location, not the Host's
    )
    app.state.appliance = appliance
    app.state.throttle = LoginThrottle()

    install_error_handlers(app)

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/appliance", status_code=303)

    app.mount(STATIC, StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(pages_router)
    app.include_router(api_router)
    app.include_router(metrics_router)
    app.add_middleware(BodyLimit, limit_for=_body_limit)
    app.add_middleware(ApiHeaders, prefix=API_PREFIX)
    app.add_middleware(HeadAsGet)
    app.add_middleware(Hsts)  # outermost of ours: every answer, errors too
    return app


#: The two views that take files; every other body is a form or a JSON document.
_UPLOADS = frozenset({API_PREFIX + "/imports", IMPORT_PAGE})


def _body_limit(path: str) -> int:
    return MAX_IMPORT_BODY if path.rstrip("/") in _UPLOADS else MAX_FORM_BODY
