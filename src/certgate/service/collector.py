"""CPython's cycle collector held while a bulk of long-lived objects is made.

An import of a bundle, or the views of 100,000 certificates: every object made lives on, so
each collection the allocations trigger re-scans all of them for nothing (a fifth of a
10,000-certificate import; 40 % of building 100,000 views). The collector runs again after,
on the next allocations.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Only restarts the collector if it was running (another thread may hold it too)."""
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()
