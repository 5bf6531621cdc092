"""The path parameter that names a stored row by its number (an ACME order, an API token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

#: The largest id a row has: what a 64-bit database column holds (a larger one is a 422,
#: not a database error).
ROW_ID_MAX = 2**63 - 1

#: A row's id in a path: 1 to ``ROW_ID_MAX``.
RowId = Annotated[int, Path(ge=1, le=ROW_ID_MAX)]
