"""Loopback addresses and ports for the servers under test. All of 127.0.0.0/8 is loopback on
Linux, so 127.0.0.2, 127.0.0.3, ... stand for distinct appliance addresses."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's choice for an ephemeral bind)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (some containers have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False
