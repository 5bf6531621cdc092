"""Work ``certgate serve`` repeats on a thread of its own (never the event loop): the expiry
notices' check, the ACME renewal check. Each runs at start, then every ``interval`` seconds;
a failure is logged and the next round comes anyway."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from certgate.errors import CertgateError

log = logging.getLogger("certgate.serve")


def interval_from(variable: str, longest: float) -> float:
    """``longest``, or a shorter interval (at least 0.1 s) from the environment ``variable``
    (for tests and impatient administrators)."""
    try:
        asked = float(os.environ.get(variable, longest))
    except ValueError:
        return longest
    return min(max(asked, 0.1), longest) if asked == asked else longest


class Periodic:
    def __init__(self, work: Callable[[], object], name: str, failed: str, interval: float) -> None:
        self.work = work
        self.failed = failed  # said before the reason when a round fails
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask it to stop; a round in progress is not waited for (its claims lapse)."""
        self._stop.set()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.work()
            except (CertgateError, SQLAlchemyError) as error:
                log.error("%s: %s", self.failed, error)
            except Exception:  # a fault must not end the schedule for good
                log.exception(self.failed)
            self._stop.wait(self.interval)
