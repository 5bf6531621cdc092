"""Run a coroutine to completion on an event loop of its own thread.

The browser tests (Playwright's sync API) may leave an event loop running on the main thread,
where ``asyncio.run`` then refuses to start another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_own_loop(coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=timeout)
