"""The API's documentation as a page of the appliance: for logged-in users only, made from
the OpenAPI document on the server, with nothing from outside the package.

Decision: FastAPI's interactive Swagger UI page loaded its script and styles, unpinned, from
a CDN (so it broke on an offline appliance and trusted a third party with a page that holds
the session) and needs inline script, which the pages' Content-Security-Policy forbids. This
page lists every operation with its parameters, body and answers; ``/api/v1/openapi.json``
stays the machine-readable document, and ``/api/v1/docs`` leads here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from certgate.web.pages.access import Viewer
from certgate.web.pages.rendering import PREFIX, redirect, render

router = APIRouter()
PAGE = PREFIX + "/api"
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    required: bool
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    parameters: list[Parameter]
    body: list[str]  # the media types and schema names of the request body
    answers: list[tuple[str, str]]  # (status, description)


def _schema_name(schema: dict[str, Any]) -> str:
    reference = schema.get("$ref", "")
    if reference:
        return str(reference).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items', {}))}"
    return str(schema.get("type", "object"))


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of the OpenAPI document, in its order."""
    found = []
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body = operation.get("requestBody", {}).get("content", {})
            found.append(
                Operation(
                    method.upper(),
                    path,
                    operation.get("summary", ""),
                    operation.get("description", ""),
                    [
                        Parameter(
                            parameter["name"],
                            parameter["in"],
                            bool(parameter.get("required")),
                            parameter.get("description", ""),
                        )
                        for parameter in operation.get("parameters", [])
                    ],
                    [
                        f"{media_type}: {_schema_name(content.get('schema', {}))}"
                        for media_type, content in body.items()
                    ],
                    [
                        (status, answer.get("description", ""))
                        for status, answer in operation.get("responses", {}).items()
                    ],
                )
            )
    return found


@router.get(PAGE)
async def api_docs(request: Request, principal: Viewer) -> Response:
    document = request.app.openapi()
    return render(
        request,
        "api_docs.html",
        {
            "title": "API",
            "info": document.get("info", {}),
            "operations": operations(document),
        },
        principal=principal,
    )


@router.get("/api/v1/docs", include_in_schema=False)
async def api_docs_redirect() -> Response:
    """Where FastAPI's Swagger UI page was: the page (which asks to log in first)."""
    return redirect(PAGE)
