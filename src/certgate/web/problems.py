"""Errors as RFC 9457 problem+json (API) with one stable ``type`` per failure."""

from __future__ import annotations

from http import HTTPStatus

from certgate.errors import (
    CertgateError,
    ConflictError,
    ImportFormatError,
    KeyMissingError,
    NotFoundError,
    ValidationError,
)
from certgate.service.auth import AuthenticationError, ForbiddenError, ThrottledError

PROBLEM_BASE = "https://certgate.invalid/problems/"


def status_for(error: CertgateError) -> int:
    """The HTTP status a failure maps to (most specific class first)."""
    if isinstance(error, ThrottledError):
        return HTTPStatus.TOO_MANY_REQUESTS
    if isinstance(error, AuthenticationError):
        return HTTPStatus.UNAUTHORIZED
    if isinstance(error, ForbiddenError):
        return HTTPStatus.FORBIDDEN
    if isinstance(error, NotFoundError):
        return HTTPStatus.NOT_FOUND
    if isinstance(error, ConflictError):
        return HTTPStatus.CONFLICT
    if isinstance(error, ValidationError | ImportFormatError | KeyMissingError):
        return HTTPStatus.UNPROCESSABLE_ENTITY
    return HTTPStatus.BAD_REQUEST


def problem(error: CertgateError) -> dict[str, object]:
    status = status_for(error)
    body: dict[str, object] = {
        "type": PROBLEM_BASE + error.code,
        "title": HTTPStatus(status).phrase,
        "status": int(status),
        "detail": str(error),
    }
    if isinstance(error, ValidationError):
        body["field"] = error.field
    return body
