"""Failures as RFC 9457 problem+json documents, with one stable ``type`` per failure.

A ``CertgateError`` gives its own status and code; FastAPI's request validation is a 422
naming every field at fault; Starlette's HTTP errors (unknown path, wrong method, body too
large) keep their status. ``web/errors.py`` decides when a problem is the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from certgate.errors import (
    AcmeError,
    CertgateError,
    ThrottledError,
    UnassignedCertificateError,
    UnconfirmedChangeError,
    ValidationError,
)
from certgate.fields import label
from certgate.schemas import Concern, document
from certgate.web.api.openapi import PROBLEM_MEDIA_TYPE

PROBLEM_BASE = "https://certgate.invalid/problems/"

_HTTP_CODES = {
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
}


def problem(code: str, status: HTTPStatus, detail: str, **more: object) -> dict[str, object]:
    """A problem document: its ``type`` from ``code``, its ``title`` from ``status``, then
    ``detail`` and what else the failure says (``more``, in that order)."""
    return {
        "type": PROBLEM_BASE + code,
        "title": status.phrase,
        "status": int(status),
        "detail": detail,
        **more,
    }


def problem_response(
    body: dict[str, object], headers: dict[str, str] | None = None
) -> JSONResponse:
    status = body["status"]
    assert isinstance(status, int)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_of(location: Sequence[int | str]) -> str:
    """``("body", "subject", "common_name")`` -> ``subject.common_name``; list items as [n].
    Pydantic's tags of a union's members (``str-enum[WarningCode]``) are not fields."""
    path = ""
    for part in location[1:]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif "[" in str(part):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or str(location[0] if location else "body")


def validation_problem(error: RequestValidationError) -> dict[str, object]:
    """FastAPI's 422, as a problem. Never echoes the input (it may be a password)."""
    errors = [
        {
            "field": "body"
            if item.get("type") == "json_invalid"
            else _field_of(item.get("loc", ())),
            "location": str(item.get("loc", ("body",))[0]),
            "message": str(item.get("msg", "is not valid")),
        }
        for item in error.errors()
    ] or [{"field": "body", "location": "body", "message": "is not valid"}]
    first = errors[0]
    return problem(
        ValidationError.code,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        f"{first['field']}: {first['message']}",
        field=first["field"],
        label=label(first["field"]),
        errors=errors,
    )


def http_problem(request: Request, error: StarletteHTTPException) -> Response:
    """Starlette's and FastAPI's own HTTP errors as problems."""
    if error.status_code == HTTPStatus.BAD_REQUEST:  # FastAPI could not read the body
        said = "cannot be read as JSON"
        if request.headers.get("content-type", "").lower().startswith("multipart/"):
            said = f"cannot be read as a multipart form: {error.detail}"  # 65 files, say
        body = validation_problem(
            RequestValidationError([{"type": "body", "loc": ("body",), "msg": said}])
        )
        return problem_response(body)
    status = HTTPStatus(error.status_code)
    headers = dict(error.headers or {})
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        headers["Allow"] = ", ".join(allowed_methods(request))
    code = _HTTP_CODES.get(status, f"http-{int(status)}")
    detail = str(error.detail) if error.detail else status.description
    return problem_response(problem(code, status, detail), headers)


#: The methods an ``Allow`` header may name.
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes on this path (Starlette names only the first route's).
    Each is asked of the routes themselves: FastAPI's included routers hold their routes'
    methods out of sight (reading ``route.methods`` gave an empty ``Allow``)."""
    routes = request.app.router.routes
    allowed = {
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    }
    if "GET" in allowed:
        allowed.add("HEAD")  # answered as GET: web/head.py
    return sorted(allowed)


def certgate_problem(error: CertgateError) -> Response:
    body = problem(error.code, error.status, str(error))
    if isinstance(error, ValidationError):
        body["field"] = error.field  # the stable key, as the body spells it
        body["label"] = error.label
    if isinstance(error, AcmeError) and error.document:
        body["ca_document"] = error.document
    if isinstance(error, UnconfirmedChangeError | UnassignedCertificateError):
        body["concerns"] = [document(Concern, concern) for concern in error.concerns]
    if isinstance(error, UnassignedCertificateError):
        body["certificate_id"] = error.certificate_id
    headers = retry_after(error)
    if error.status == HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="certgate"'
    return problem_response(body, headers)


def retry_after(error: CertgateError) -> dict[str, str]:
    """The ``Retry-After`` header of a throttled answer (API and pages alike), else none."""
    if isinstance(error, ThrottledError):
        return {"Retry-After": str(error.retry_after)}
    return {}
