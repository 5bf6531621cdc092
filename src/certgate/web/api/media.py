"""Bodies of the JSON operations are JSON: a body declared as anything else (a form, text) is
refused with 415 rather than read as JSON or reported as missing fields."""

from __future__ import annotations

from fastapi import Request
from fastapi.params import Form
from starlette.exceptions import HTTPException


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def json_bodies_only(request: Request) -> None:
    """A dependency of every API route; the file uploads (multipart forms) are exempt."""
    route = request.scope.get("route")
    body = getattr(route, "body_field", None)
    if body is None or isinstance(body.field_info, Form):  # File(...) is a Form too
        return
    media = _media_type(request)
    if media and media != "application/json" and not media.endswith("+json"):
        raise HTTPException(415, f"send the body as application/json, not {media}")
