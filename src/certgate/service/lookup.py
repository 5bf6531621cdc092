"""Finding the object a user named: an id number or a SHA-256 fingerprint (or a prefix)."""

from __future__ import annotations

import re

from certgate.errors import NotFoundError, ValidationError
from certgate.store.models import CertificateRow, RequestRow
from certgate.store.repository import Repository

_HEX = re.compile(r"^[0-9a-f]{8,64}$")


def _normalise(reference: str) -> str:
    return reference.strip().lower().replace(":", "")


def find_certificate(repository: Repository, reference: str | int) -> CertificateRow:
    text = _normalise(str(reference))
    if text.isdigit() and len(text) < 8:
        row = repository.certificate(int(text))
        if row is None:
            raise NotFoundError(f"no certificate with id {text}")
        return row
    if not _HEX.match(text):
        raise ValidationError("certificate", f"{reference!r} is neither an id nor a fingerprint")
    rows = repository.certificates_by_fingerprint_prefix(text)
    if not rows:
        raise NotFoundError(f"no certificate with fingerprint {text}")
    if len(rows) > 1:
        raise ValidationError("certificate", f"fingerprint prefix {text} is ambiguous")
    return rows[0]


def find_request(repository: Repository, reference: str | int) -> RequestRow:
    text = _normalise(str(reference))
    if text.isdigit() and len(text) < 8:
        row = repository.request(int(text))
        if row is None:
            raise NotFoundError(f"no certificate request with id {text}")
        return row
    if not _HEX.match(text):
        raise ValidationError("request", f"{reference!r} is neither an id nor a fingerprint")
    rows = repository.requests_by_fingerprint_prefix(text)
    if not rows:
        raise NotFoundError(f"no certificate request with fingerprint {text}")
    if len(rows) > 1:
        raise ValidationError("request", f"fingerprint prefix {text} is ambiguous")
    return rows[0]
