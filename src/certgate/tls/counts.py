"""The TLS front end's counts, summed over the worker processes of one ``certgate serve``.

A scrape of ``/metrics`` reaches one worker, but the handshakes were made by all of them: each
worker publishes its front end's counts into its own slot of one small file of the data
directory (a shared memory map, written every second), and any process reads the sum. A
replaced worker carries its slot's totals on, so the counters never go back while the serve
runs; a new serve starts them at zero, as a Prometheus counter may.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

#: One slot per worker: handshakes completed, handshakes failed, connections open.
_SLOT = struct.Struct("<qqq")


@dataclass(frozen=True)
class FrontCounts:
    handshakes_completed: int = 0
    handshakes_failed: int = 0
    connections_open: int = 0


def reset_counts(path: Path) -> None:
    """A new serve: every counter from zero (called before its workers start)."""
    path.unlink(missing_ok=True)


def read_counts(path: Path) -> FrontCounts | None:
    """The sum over every worker's slot; None when no serve has published any."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    slots = [_SLOT.unpack_from(data, offset) for offset in range(0, len(data), _SLOT.size)]
    if not slots:
        return None
    return FrontCounts(*(sum(values) for values in zip(*slots, strict=True)))


class CountsSlot:
    """This worker's slot: what it publishes, on top of what its predecessors counted."""

    def __init__(self, path: Path, index: int) -> None:
        self._offset = index * _SLOT.size
        end = self._offset + _SLOT.size
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)  # grown by one worker at a time, never shrunk
            if os.fstat(descriptor).st_size < end:
                os.ftruncate(descriptor, end)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            self._map = mmap.mmap(descriptor, end)
        finally:
            os.close(descriptor)
        completed, failed, _ = _SLOT.unpack_from(self._map, self._offset)
        self._base = (completed, failed)  # a replaced worker's totals go on
        self._last = (0, 0)

    def publish(self, completed: int, failed: int, connections: int) -> None:
        self._last = (completed, failed)
        _SLOT.pack_into(
            self._map, self._offset, self._base[0] + completed, self._base[1] + failed, connections
        )

    def close(self) -> None:
        """Its connections are gone; its totals stay for the sum."""
        self.publish(*self._last, 0)
        self._map.close()
