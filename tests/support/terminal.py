"""``certgate`` as someone at a terminal runs it: its prompts answered as typed."""

from __future__ import annotations

import os
import pty
import select
from pathlib import Path

from tests.support.server import CERTGATE


def on_a_terminal(data_dir: Path, argv: list[str], typed: list[str]) -> str:
    """``certgate`` run with a terminal of its own (a pty), each of ``typed`` entered at the
    next prompt; what it showed."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: certgate, its controlling terminal the pty
        os.environ["CERTGATE_DATA_DIR"] = str(data_dir)
        os.execv(CERTGATE, [CERTGATE, *argv])
    shown = b""
    for line in typed:
        shown += _read_until(terminal, b": ")
        os.write(terminal, line.encode() + b"\n")
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.waitpid(pid, 0)
    os.close(terminal)
    return shown.decode(errors="replace")


def _read_until(terminal: int, prompt: bytes) -> bytes:
    shown = b""
    while not shown.rstrip(b" \r\n").endswith(prompt.strip()):
        ready, _, _ = select.select([terminal], [], [], 60)
        assert ready, f"no prompt; certgate showed {shown!r}"
        try:
            shown += os.read(terminal, 4096)
        except OSError:  # it ended instead of asking
            raise AssertionError(f"no prompt; certgate showed {shown!r}") from None
    return shown
