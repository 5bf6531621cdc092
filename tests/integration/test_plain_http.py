"""The plain HTTP listeners of a running ``certgate serve`` (``tls/plain.py``): they keep the
TLS settings' deadlines, and an HTTP port that is the HTTPS port takes nothing from HTTPS."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from certgate.service.appliance import STATUS_FILE
from tests.support.net import free_port
from tests.support.polling import eventually
from tests.support.served import handshake_succeeds
from tests.support.server import running_appliance

#: The header deadline set, and the slack a busy machine gets (the default is 60 s).
DEADLINE = 1.0
SLACK = 5.0


def http_listeners(data_dir: Path) -> list[dict[str, object]]:
    report = json.loads((data_dir / STATUS_FILE).read_text())
    return list(report["http_listeners"])


def test_a_half_request_on_the_http_port_is_closed_at_the_header_deadline(
    tmp_path: Path,
) -> None:
    address, http_port = "127.0.0.71", free_port()
    settings = ("--http-port", str(http_port), "--header-timeout", str(DEADLINE))
    with (
        running_appliance(tmp_path / "data", address, tls_settings=settings),
        socket.create_connection((address, http_port), timeout=10) as client,
    ):
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no blank line
        started = time.monotonic()
        client.settimeout(DEADLINE + SLACK)
        assert client.recv(1024) == b""  # closed, unanswered: the client is not sending
        assert time.monotonic() - started < DEADLINE + SLACK


def test_an_http_port_that_is_the_https_port_takes_no_https_connection(tmp_path: Path) -> None:
    """The setting's HTTP port given to serve as its HTTPS port: with several workers, plain
    HTTP listeners bound there too (SO_REUSEPORT) took a share of the TLS connections."""
    address, port = "127.0.0.72", free_port()
    data_dir = tmp_path / "data"
    with running_appliance(
        data_dir,
        address,
        tls_settings=("--http-port", str(port)),
        serve_options=("--workers", "2"),
        port=port,
    ):
        eventually(lambda: (data_dir / STATUS_FILE).exists(), what="the status file")
        # Connections are spread over every socket on the port: 20 in a row would reach
        # a plain HTTP one with probability 1 - (2/4)**20.
        assert all(handshake_succeeds(address, port) for _ in range(20))
        [listener] = http_listeners(data_dir)
        assert listener["state"] == "failed"
        assert f"the HTTP port {port} is the HTTPS port" in str(listener["error"])
