"""Issuer signatures of a large import, checked in advance by a process of its own.

While the importing thread reads the certificates' fields, ``pki.bundle_signatures`` checks
who signed whom on another core; ``chain.choose_issuer`` then takes its answers instead of
checking again. Anything it did not check (names equal only by RFC 5280's rules, issuers
already stored), or any failure of the process, leaves the checks to the import itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType

from certgate.pki import pem

log = logging.getLogger("certgate.import")

#: Bundles with fewer certificates than this are not worth a process (it takes ~0.1 s).
MIN_CERTIFICATES = 2000
#: How long the import waits for the answers before checking by itself.
TIMEOUT = 120.0
WORKER_MODULE = "certgate.pki.bundle_signatures"


def _feed(process: subprocess.Popen[bytes], bundle: bytes) -> None:
    stdin = process.stdin
    assert stdin is not None
    try:
        stdin.write(bundle)
    except (OSError, ValueError):  # stopped meanwhile (the import failed or finished)
        pass
    finally:
        with contextlib.suppress(OSError, ValueError):
            stdin.close()


def precheck_for(files: Sequence[tuple[str, bytes]]) -> SignaturePrecheck:
    """A precheck of the files that are PEM bundles of certificates only (the others are
    checked by the import itself)."""
    bundles = [pem.as_text(data) for _, data in files]
    counts = [pem.plain_certificate_count(text) for text in bundles]
    plain = b"\n".join(text for text, count in zip(bundles, counts, strict=True) if count)
    return SignaturePrecheck(plain, sum(counts))


class SignaturePrecheck:
    """Started on the bundles' bytes; :meth:`known` answers ``choose_issuer``."""

    def __init__(self, bundle: bytes, certificates: int) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._answers: dict[tuple[str, str], bool] | None = None
        self._lock = threading.Lock()
        self._feeder: threading.Thread | None = None
        if certificates < MIN_CERTIFICATES or len(os.sched_getaffinity(0)) < 2:
            return
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-m", WORKER_MODULE],  # -I: never code from the cwd
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            # Fed from a thread: the pipe holds 64 KiB, and the import must not wait while
            # the process starts and reads.
            self._feeder = threading.Thread(target=_feed, args=(self._process, bundle))
            self._feeder.start()
        except OSError as error:
            log.warning("signatures are checked in this process: %s", error)
            self._stop()

    @property
    def active(self) -> bool:
        """Whether a process checks this import's signatures (else :meth:`known` knows none)."""
        return self._process is not None or bool(self._answers)

    def collect(self) -> None:
        """Wait for the answers (at most TIMEOUT; none if the process failed)."""
        with self._lock:  # known() may be asked from several linking threads at once
            if self._answers is None:
                self._answers = self._collect()

    def known(self, child: str, issuer: str) -> bool | None:
        """Whether the certificate with fingerprint ``child`` was signed by ``issuer``, if
        checked in advance (waits for the answers if :meth:`collect` was not called)."""
        if self._answers is None:
            self.collect()
        assert self._answers is not None
        return self._answers.get((child, issuer))

    def _collect(self) -> dict[tuple[str, str], bool]:
        if self._process is None or self._process.stdout is None:
            return {}
        deadline = time.monotonic() + TIMEOUT
        if self._feeder is not None:
            self._feeder.join(TIMEOUT)  # until the process has read the whole bundle
            if self._feeder.is_alive():
                log.warning("the signature checks in advance did not start; checking here")
                self._stop()
                return {}
        self._process.stdin = None  # closed by the feeder; nothing more to send
        try:
            output, _ = self._process.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("signature checks in advance took too long; checking here")
            self._stop()
            return {}
        if self._process.returncode != 0:
            return {}
        answers: dict[tuple[str, str], bool] = {}
        for line in output.decode("ascii", errors="replace").splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[2] in ("0", "1"):
                answers[(fields[0], fields[1])] = fields[2] == "1"
        return answers

    def _stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            if self._feeder is not None:
                self._feeder.join()  # its write fails at once on the dead process's pipe
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None and not stream.closed:
                    stream.close()
            self._process = None

    def __enter__(self) -> SignaturePrecheck:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop()
