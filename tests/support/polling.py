"""Waiting for what another thread or process does: poll until it holds, never a fixed sleep."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], *, timeout: float = 10.0, what: str = "") -> T:
    """Return ``check()``'s first true value; fail the test if there is none within ``timeout``
    seconds. Changes land within milliseconds, so it looks often at first, then every 0.1 s so
    that a slow condition does not take the CPU of a shared, loaded machine from the server it
    waits for. Exceptions from ``check`` propagate: a refused connection is a finding."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    raise AssertionError(f"not within {timeout:g} s: {what or _source(check)}")


def _source(check: Callable[[], object]) -> str:
    try:
        return inspect.getsource(check).strip()
    except (OSError, TypeError):
        return repr(check)
