"""A posted form read once, within the limits, and its values: text, check boxes, files,
numbers and ids; a validation error placed beside its input."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from certgate.errors import ValidationError
from certgate.fields import input_name
from certgate.pki.loader import MAX_FILE_SIZE
from certgate.service.auth import Principal
from certgate.web.limits import MAX_FORM_BODY, MAX_IMPORT_FILES


async def read_form(request: Request) -> FormData:
    """The posted form (already parsed by the CSRF check, so read once)."""
    return await request.form(max_files=MAX_IMPORT_FILES, max_part_size=MAX_FORM_BODY)


async def admin_form(request: Request, principal: Principal, what: str) -> FormData:
    """The posted form of a change only an administrator makes; an auditor is refused,
    ``what`` naming the change (``"adding a user"``)."""
    principal.require_admin(what)
    return await read_form(request)


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default


def typed(form: FormData, names: Iterable[str]) -> dict[str, str]:
    """What was typed in each of these text inputs, trimmed: what a page reads, and shows
    again beside an error."""
    return {name: text(form, name).strip() for name in names}


def texts(form: FormData, name: str) -> list[str]:
    return [value for value in form.getlist(name) if isinstance(value, str)]


def checked(form: FormData, name: str) -> bool:
    return text(form, name) not in ("", "0", "off", "false")


async def uploads(form: FormData, name: str) -> list[tuple[str, bytes]]:
    """The files of a file input (browsers send one empty part when none was chosen)."""
    files: list[tuple[str, bytes]] = []
    for value in form.getlist(name):
        if isinstance(value, UploadFile) and (value.filename or value.size):
            # One byte over the loader's limit is enough for it to say "file too large".
            files.append((value.filename or "upload", await value.read(MAX_FILE_SIZE + 1)))
    return files


#: A number typed into a form or a URL: ASCII digits (``str.isdigit`` also accepts "²", which
#: ``int`` refuses) and few enough of them for a 64-bit database column.
_NUMBER = re.compile(r"-?[0-9]{1,18}")


def number(value: str) -> int | None:
    """The number ``value`` spells, or None when it spells none (or one no column holds)."""
    text = value.strip()
    return int(text) if _NUMBER.fullmatch(text) else None


def identifiers(values: list[str]) -> list[int]:
    """The ids among checked boxes, each once, in order; anything else is ignored."""
    return sorted({found for value in values if (found := number(value) or 0) > 0})


def integer(value: str, field: str, default: int) -> int:
    if not value.strip():
        return default
    found = number(value)
    if found is None:
        raise ValidationError(field, f"{value[:40]!r} is not a number")
    return found


def field_errors(
    error: ValidationError, inputs: Collection[str], prefix: str = ""
) -> dict[str, str]:
    """Place a validation error beside its input (the last part of the field's key, see
    ``certgate.fields``) when the form has one of the ``inputs``, else at the top of the form.
    ``prefix``: the ids of a form's inputs on a page with two forms of the same names."""
    name = input_name(error.field)
    return {prefix + name if name in inputs else "form": error.reason}


@dataclass(frozen=True)
class FormState:
    """What a form page shows: what was typed (``values``; None: what is stored), each error
    beside its input (``errors``) and the status it answers with."""

    values: Mapping[str, str] | None = None
    errors: Mapping[str, str] = field(default_factory=dict)
    status_code: int = 200

    @classmethod
    def refused(
        cls,
        values: Mapping[str, str] | None,
        error: ValidationError,
        inputs: Collection[str],
        prefix: str = "",
    ) -> FormState:
        """A form the service refused: shown again as typed, the error beside its input
        (``field_errors``), 422."""
        return cls(values, field_errors(error, inputs, prefix), 422)


#: A form page as it stands: what is stored, no error.
FRESH = FormState()
