"""A network namespace of the test's own (Linux; root, or a user allowed to make one): its
loopback is up and addresses come and go on it as keepalived would move them, without
touching the host's network."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.ci import missing
from tests.support.polling import eventually


class NetworkNamespace:
    def __init__(self, holder: subprocess.Popen[bytes]) -> None:
        self._holder = holder
        self.path = f"/proc/{holder.pid}/ns/net"

    def command(self, *args: str) -> list[str]:
        """``args`` to run inside the namespace."""
        return ["nsenter", f"--net={self.path}", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=60, check=True
        )


def _entered(pid: int) -> bool:
    """Whether ``pid`` runs in another network namespace than this process already."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    except OSError:
        return False


@contextmanager
def network_namespace() -> Iterator[NetworkNamespace]:
    """A new network namespace, its loopback up, held by a sleeping process until the end;
    the test is skipped where none can be made (no ``unshare``, not permitted), and fails in
    CI, where it must run."""
    if not (shutil.which("unshare") and shutil.which("nsenter") and shutil.which("ip")):
        missing("needs unshare, nsenter and ip (util-linux, iproute2)")
    if subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False).returncode:
        missing("this user may not make a network namespace (unshare --net)")
    holder = subprocess.Popen(
        ["unshare", "--net", "--", "sleep", "infinity"], stdin=subprocess.DEVNULL
    )
    try:
        eventually(lambda: _entered(holder.pid), what="the namespace is made")
        namespace = NetworkNamespace(holder)
        namespace.run("ip", "link", "set", "lo", "up")
        yield namespace
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
