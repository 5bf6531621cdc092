"""Whether the tests run in CI (``CI=true``), where scripts/setup has installed everything:
a missing tool is a failure there and a skip on a development machine, so no skip hides a gap."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(message: str) -> NoReturn:
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
