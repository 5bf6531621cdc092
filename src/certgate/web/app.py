"""The web application: /appliance pages and the /api/v1 JSON API, one ASGI app.

Views are thin: they parse the request, call the service layer, and render or serialise.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from certgate import __version__
from certgate.errors import CertgateError
from certgate.service.appliance import Appliance
from certgate.service.auth import LoginThrottle
from certgate.web.api import router as api_router
from certgate.web.api.errors import register_api_error_handlers
from certgate.web.limits import MAX_FORM_BODY, MAX_IMPORT_BODY, BodyLimit
from certgate.web.pages import router as pages_router
from certgate.web.pages.common import STATIC
from certgate.web.pages.errors import error_page, is_page, page_error
from certgate.web.pages.import_ import PAGE as IMPORT_PAGE
from certgate.web.problems import problem, status_for


def create_app(appliance: Appliance) -> FastAPI:
    app = FastAPI(
        title="certgate API",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.appliance = appliance
    app.state.throttle = LoginThrottle()

    @app.exception_handler(CertgateError)
    async def certgate_error(request: Request, error: CertgateError) -> Response:
        if is_page(request):
            return page_error(request, error)
        return JSONResponse(
            problem(error), status_code=status_for(error), media_type="application/problem+json"
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if is_page(request):
            return error_page(request, error.status_code, str(error.detail))
        return await http_exception_handler(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        if is_page(request):
            return error_page(request, 400, "the request is not one this page understands")
        return await request_validation_exception_handler(request, error)

    register_api_error_handlers(app)  # /api/v1: problem+json for every failure

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/appliance", status_code=303)

    app.mount(STATIC, StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(pages_router)
    app.include_router(api_router)
    app.add_middleware(BodyLimit, limit_for=_body_limit)
    return app


#: The two views that take files; every other body is a form or a JSON document.
_UPLOADS = frozenset({"/api/v1/imports", IMPORT_PAGE})


def _body_limit(path: str) -> int:
    return MAX_IMPORT_BODY if path.rstrip("/") in _UPLOADS else MAX_FORM_BODY
