"""How a path names a stored item (a row by its number; a certificate or a request by its id
or fingerprint), and where a route that made one says it now lives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path, Response
from pydantic import AfterValidator

from certgate.errors import NotFoundError
from certgate.limits import ROW_ID_MAX
from certgate.schemas import REFERENCE_DESCRIPTION, REFERENCE_PATTERN
from certgate.web.api.openapi import API_PREFIX


def _possible(not_found: str) -> Callable[[int], int]:
    """A row's id in a path is a number; one no row can have (0, -1, past ``ROW_ID_MAX``,
    which the database cannot hold) is not found, as one no row has yet is: ``not_found``
    and the number, the service's words (a 422 said 'greater than or equal to 1')."""

    def possible(number: int) -> int:
        if not 1 <= number <= ROW_ID_MAX:
            raise NotFoundError(f"{not_found} {number}")
        return number

    return possible


#: The path parameter naming one API token.
TokenId = Annotated[int, Path(), AfterValidator(_possible("no API token with id"))]
#: The path parameter naming one ACME order.
OrderId = Annotated[int, Path(), AfterValidator(_possible("there is no ACME order"))]


def _reference(description: str) -> Any:
    """An id or (a prefix of) a SHA-256 fingerprint in a path: what ``service.lookup`` reads."""
    return Path(pattern=REFERENCE_PATTERN, description=description, examples=["1"])


#: The path parameter naming one certificate.
CertificateRef = Annotated[str, _reference(REFERENCE_DESCRIPTION)]
#: The path parameter naming one certificate request.
RequestRef = Annotated[
    str,
    _reference(
        "The request's id, or its SHA-256 fingerprint (or an unambiguous prefix of at least 8 "
        "hex digits)."
    ),
]


def locate(response: Response, collection: str, key: object) -> None:
    """The ``Location`` of a 201 answer: the new item's place under the API, its
    collection's path (a router's prefix) and its key. Said once, so every route that
    creates agrees (a path without the API's prefix named a page that does not exist)."""
    response.headers["Location"] = f"{API_PREFIX}{collection}/{quote(str(key), safe=':')}"
