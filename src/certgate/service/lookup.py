"""Finding the object a user named: an id number or a SHA-256 fingerprint (or a prefix)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from certgate.errors import NotFoundError, ValidationError
from certgate.store.models import CertificateRow, RequestRow
from certgate.store.repository import Repository

_HEX = re.compile(r"^[0-9a-f]{8,64}$")
Row = TypeVar("Row", CertificateRow, RequestRow)


def find_certificate(repository: Repository, reference: str | int) -> CertificateRow:
    return _find(
        reference,
        "certificate",
        "certificate",
        repository.certificate,
        repository.certificates_by_fingerprint_prefix,
    )


def find_request(repository: Repository, reference: str | int) -> RequestRow:
    return _find(
        reference,
        "request",
        "certificate request",
        repository.request,
        repository.requests_by_fingerprint_prefix,
    )


def _find(
    reference: str | int,
    field: str,
    noun: str,
    by_id: Callable[[int], Row | None],
    by_prefix: Callable[[str], list[Row]],
) -> Row:
    text = str(reference).strip().lower().replace(":", "")
    # ASCII digits only: str.isdigit also accepts "²", which int() refuses.
    negative = text.startswith("-") and text[1:].isascii() and text[1:].isdigit()
    if negative:  # well formed, and no row has it: not found, as an id no row has yet
        raise NotFoundError(f"no {noun} with id {text}")
    if text.isascii() and text.isdigit() and len(text) < 8:
        row = by_id(int(text))
        if row is None:
            raise NotFoundError(f"no {noun} with id {text}")
        return row
    if not _HEX.match(text):
        raise ValidationError(field, f"{reference!r} is neither an id nor a fingerprint")
    rows = by_prefix(text)
    if not rows:
        raise NotFoundError(f"no {noun} with fingerprint {text}")
    if len(rows) > 1:
        raise ValidationError(field, f"fingerprint prefix {text} is ambiguous")
    return rows[0]
