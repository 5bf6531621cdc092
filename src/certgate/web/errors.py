"""The one mapping from a failure to an HTTP answer.

The status comes from the error (``CertgateError.status``, or the HTTP error's own); the
path decides the form: the /appliance pages answer with a page (or the login page), every
other path with a problem+json document.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from certgate.errors import CertgateError
from certgate.web.api.errors import (
    allowed_methods,
    certgate_problem,
    http_problem,
    problem_response,
    validation_problem,
)
from certgate.web.api.openapi import document_problems
from certgate.web.pages.errors import error_page, is_page, page_error
from certgate.web.slashes import slash_redirect

#: What a page says when the request is not one of its forms (a crafted or stale request).
_NOT_UNDERSTOOD = "the request is not one this page understands"


async def answer(request: Request, error: Exception) -> Response:
    """Every failure a view raises, answered for the face the request came to."""
    page = is_page(request)
    if isinstance(error, CertgateError):
        return page_error(request, error) if page else certgate_problem(error)
    if isinstance(error, HTTPException):
        if error.status_code == HTTPStatus.NOT_FOUND and (moved := slash_redirect(request)):
            return moved  # no route has the path; one has it with(out) a trailing slash
        if page:
            response = error_page(request, error.status_code, str(error.detail))
            if error.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
                response.headers["Allow"] = ", ".join(allowed_methods(request))
            return response
        return http_problem(request, error)
    if isinstance(error, RequestValidationError):
        if page:
            return error_page(request, 400, _NOT_UNDERSTOOD)
        return problem_response(validation_problem(error))
    raise error  # anything else is a bug: the server's own 500, logged


def install_error_handlers(app: FastAPI) -> None:
    for kind in (CertgateError, HTTPException, RequestValidationError):
        app.add_exception_handler(kind, answer)
    document_problems(app)
