"""Keeps the worker processes of ``certgate serve --workers N`` running.

Each worker is a whole ``certgate serve`` (listeners, pages, API) that follows the committed
store by itself; the kernel spreads connections over their ``SO_REUSEPORT`` sockets. The
supervisor only starts them, restarts one that dies, stops them all on SIGTERM/SIGINT and
passes SIGHUP on (each reads the store again).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("certgate.serve")

#: A worker that dies this many times in a row, each sooner than STARTUP_GRACE seconds after
#: its start, cannot start (database gone, data directory broken): restarting it would only
#: loop, so the whole serve stops with its exit code.
STARTUP_GRACE = 5.0
QUICK_DEATHS = 3
#: A worker's exit code when none of the addresses can be served (sysexits' EX_CONFIG): the
#: others read the same plan, so the whole serve stops at once instead of restarting it.
CANNOT_SERVE = 78
#: How long stopping workers may take beyond their shutdown grace before they are killed.
STOP_MARGIN = 5.0
POLL_INTERVAL = 0.1
#: Tells each worker its supervisor's pid: it stops as soon as its parent is another one,
#: even if the supervisor died before the worker first looked.
SUPERVISOR_VARIABLE = "CERTGATE_SUPERVISOR_PID"


class Supervisor:
    """Runs ``command --worker-index K`` for K in 0..count-1 until told to stop."""

    def __init__(
        self,
        command: list[str],
        count: int,
        environment: dict[str, str],
        shutdown_grace: Callable[[], float],
    ) -> None:
        """``shutdown_grace`` says, when stopping, how long the workers give their requests
        (each ends its connections then and exits)."""
        self.command = command
        self.shutdown_grace = shutdown_grace
        self.count = count
        self.environment = environment
        self.workers: list[subprocess.Popen[bytes]] = []
        self.started: list[float] = []
        self.quick_deaths: list[int] = []
        self._stopping = False

    def run(self) -> int:
        """Returns the exit code of ``certgate serve``: 0 after a requested stop."""
        previous = {
            number: signal.signal(number, self._request_stop)
            for number in (signal.SIGTERM, signal.SIGINT)
        }
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._pass_on)
        try:
            for index in range(self.count):  # one by one: a failed start stops the others
                self.workers.append(self._start(index))
            self.started = [time.monotonic()] * self.count
            self.quick_deaths = [0] * self.count
            log.info("started %d workers", self.count)
            return self._watch()
        finally:
            self._stop_all()
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*self.command, "--worker-index", str(index)],
            env={**self.environment, SUPERVISOR_VARIABLE: str(os.getpid())},
            stdin=subprocess.DEVNULL,
        )

    def _watch(self) -> int:
        while not self._stopping:
            for index, worker in enumerate(self.workers):
                code = worker.poll()
                if code is None or self._stopping:
                    continue
                if code == CANNOT_SERVE:
                    log.error("worker %d can serve none of the addresses; stopping", index)
                    return 1
                quick = time.monotonic() - self.started[index] < STARTUP_GRACE
                self.quick_deaths[index] = self.quick_deaths[index] + 1 if quick else 0
                if self.quick_deaths[index] >= QUICK_DEATHS:
                    log.error("worker %d cannot start (%s); stopping", index, _how(code))
                    return code if code > 0 else 1
                log.error("worker %d (process %d) %s; restarting", index, worker.pid, _how(code))
                self.workers[index] = self._start(index)
                self.started[index] = time.monotonic()
            time.sleep(POLL_INTERVAL)
        return 0

    def _request_stop(self, number: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _pass_on(self, number: int, frame: FrameType | None) -> None:
        """SIGHUP: each worker reads the store again; none stops."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(number)

    def _stop_all(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_grace() + STOP_MARGIN
        for worker in self.workers:
            try:
                worker.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker process %d did not stop in time; killing it", worker.pid)
                worker.kill()
                worker.wait()


def _how(code: int) -> str:
    """How a worker ended, in words: a negative return code is the signal that killed it."""
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
