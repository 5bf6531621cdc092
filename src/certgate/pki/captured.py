"""Capturing cryptography's warnings about odd-but-accepted input, one capture at a time.

``warnings.catch_warnings`` swaps process-wide state. Two imports in two threads (two
uploads through the pages, an API call beside them) would lose or swap each other's notes,
or leave the "always" filter behind for good. Every capture in certgate goes through here,
under one lock; a capture is short (one file's parsing), so imports barely wait on it.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()


@contextmanager
def captured_warnings(keep: bool = True) -> Iterator[list[warnings.WarningMessage]]:
    """The warnings raised in the block (none kept, only silenced, when ``keep`` is False)."""
    with _LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always" if keep else "ignore")
        # Warnings raised meanwhile by other threads or by the garbage collector (an unclosed
        # socket, a coroutine never awaited, a library's deprecation) are not about the input:
        # caught here they sent a clean bundle down the slow path (seen in CI).
        for unrelated in (ResourceWarning, RuntimeWarning, DeprecationWarning):
            warnings.simplefilter("ignore", unrelated)
        yield caught
