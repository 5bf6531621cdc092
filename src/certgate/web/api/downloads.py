"""File downloads: the media type, a Content-Disposition that names the file, no caching."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import Response

from certgate.pki.export import ExportFormat

#: Every media type an export can have (the OpenAPI document lists them all).
EXPORT_MEDIA_TYPES = sorted({export_format.media_type for export_format in ExportFormat})
EXPORT_FORMAT_HEADER = "X-Certgate-Export-Format"

_NOT_ASCII_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_FILE_SAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def content_disposition(label: str, extension: str, fallback: str) -> str:
    """``attachment`` with a portable name made of the friendly name (``Business-Company.p12``),
    and the name as typed in ``filename*`` when it is not plain ASCII."""
    ascii_name = (_NOT_ASCII_SAFE.sub("-", label).strip("-.")[:80] or fallback) + extension
    typed_name = (_NOT_FILE_SAFE.sub("-", label).strip(" -.")[:80] or fallback) + extension
    header = f'attachment; filename="{ascii_name}"'
    if typed_name != ascii_name:
        header += f"; filename*=UTF-8''{quote(typed_name, safe='')}"
    return header


def download(
    data: bytes, media_type: str, disposition: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=data,
        media_type=media_type,
        headers={
            "Content-Disposition": disposition,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
    )


def binary_responses(
    media_types: list[str], description: str, headers: dict[str, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The 200 response of a download route, one entry per media type."""
    documented = {"Content-Disposition": "attachment, with the file name", **(headers or {})}
    return {
        200: {
            "description": description,
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in media_types
            },
            "headers": {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in documented.items()
            },
        }
    }
