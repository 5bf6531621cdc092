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


#: Documentation addresses (RFC 5737, RFC 3849) standing for a failover pair's shared
#: address while another host holds it: bound only with IP_FREEBIND.
AWAY_IPV4, AWAY_IPV6 = "198.51.100.10", "2001:db8:5::10"


def on_this_host(address: str) -> bool:
    """Whether ``address`` is one of this host's: a plain bind (no IP_FREEBIND) succeeds."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family) as probe:
            probe.bind((address, 0))
        return True
    except OSError:
        return False


def connection_refused(address: str, port: int, timeout: float = 2.0) -> bool:
    """Whether nothing listens on ``address:port`` (a TCP connect is refused)."""
    try:
        socket.create_connection((address, port), timeout=timeout).close()
    except ConnectionRefusedError:
        return True
    return False
