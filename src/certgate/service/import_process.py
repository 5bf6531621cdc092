"""A large import from the pages or the API, run in a process of its own.

Reading 100,000 certificates is a minute of Python holding the GIL: run on a thread of
``certgate serve``, it made every other page and API call of that process wait for it in turns
(p99 1.5 s). In a child process the serving process only waits for the answer. Small imports
stay on a thread: a process costs about half a second to start. The CLI imports in its own
process already and calls ``imports.import_files`` directly.

The child opens the same appliance (data directory, master key, database URL) and does
exactly what ``imports.import_files`` does; the request (files, password) goes to it through
a pipe, never the command line or the environment, and the answer (or the error) comes back
pickled from our own child. The answer is what the caller makes of the entries (``answer``),
made in the child too: for 100,000 entries, unpickling them, checking them against the API's
schema and encoding them held the serving process's GIL for ~0.7 s after the commit.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from certgate.errors import CertgateError, ImportProcessError
from certgate.service.appliance import Appliance
from certgate.service.imports import ImportEntry, import_files
from certgate.store.audit import Actor

#: Below this many bytes in all, the import runs on the calling thread (about 700 PEM
#: certificates: a second of work at most).
ISOLATE_ABOVE = 1 << 20
_MODULE = "certgate.service.import_process"
#: The child yields the cores to the serving processes: on two cores, an import and its
#: signature checks took both, and every page and API call waited for a turn.
NICENESS = 10
T = TypeVar("T")
log = logging.getLogger("certgate.import")


def import_files_apart(
    app: Appliance,
    files: Sequence[tuple[str, bytes]],
    password: bytes | None,
    actor: Actor,
    answer: Callable[[list[ImportEntry]], T],
) -> T:
    """``answer`` of ``imports.import_files``' entries, both in a child process when the files
    are large. ``answer`` must be a module-level function (pickled by name), and what it
    returns picklable. Blocking: the faces call it from a thread."""
    if sum(len(data) for _, data in files) < ISOLATE_ABOVE:
        return answer(import_files(app, files, password, actor))
    request = (str(app.data_dir), app.store.url, list(files), password, actor, answer)
    done = subprocess.run(
        [sys.executable, "-I", "-m", _MODULE],  # -I: never code from the working directory
        input=pickle.dumps(request),
        capture_output=True,
        check=False,
    )
    try:
        kind, value = pickle.loads(done.stdout)
    except Exception:  # whatever a dead child left on its stdout
        # Its own words (a traceback of a fault, never the files' content) go to the log.
        log.error("the import process failed:\n%s", done.stderr.decode(errors="replace")[-4000:])
        raise ImportProcessError(
            f"the import process ended without an answer (exit status {done.returncode}); "
            "it may have been committed or not: look for the certificates before importing "
            "again"
        ) from None
    if kind == "error":
        raise value
    answered: T = value
    return answered


def _child() -> None:
    os.nice(NICENESS)  # and the signature checks it starts (prechecks.py) with it
    data_dir, url, files, password, actor, answer = pickle.loads(sys.stdin.buffer.read())
    outcome: tuple[str, Any]
    try:
        app = Appliance.open(Path(data_dir), url)
        try:
            entries = import_files(app, files, password, actor)
        finally:
            app.close()
    except CertgateError as error:
        outcome = ("error", error)
    else:
        try:
            outcome = ("answer", answer(entries))
        except Exception:  # committed already: say so, not "may have been committed or not"
            log.exception("the answer to a committed import could not be made")
            outcome = (
                "error",
                ImportProcessError(
                    f"the files were imported ({len(entries)} entries), but the answer could "
                    "not be made: see the certificates list"
                ),
            )
    sys.stdout.buffer.write(pickle.dumps(outcome))


if __name__ == "__main__":
    _child()
