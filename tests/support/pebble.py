"""A real ACME CA for the tests: Debian's ``pebble`` and ``pebble-challtestsrv`` on free ports.

Pebble's HTTPS certificate is made here (``TestCA``: root in ``ca_file``); its DNS resolver
is the challenge test server, which answers every A query with ``address``, the address the
test's ``certgate serve`` listens on; Pebble validates http-01 on ``http_port`` of it and
tls-alpn-01 on ``tls_port`` (the serve's HTTPS port).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.support.ci import missing
from tests.support.net import free_port
from tests.support.pki import server_files
from tests.support.polling import eventually
from tests.support.server import run_cli, stop

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"


def require_pebble() -> None:
    if not (os.access(PEBBLE, os.X_OK) and os.access(CHALLTESTSRV, os.X_OK)):
        missing("Debian's pebble is not installed (scripts/setup --test installs it)")


@dataclass
class Pebble:
    directory_url: str
    ca_file: Path  # the root of Pebble's own HTTPS certificate
    management_port: int
    http_port: int
    log_path: Path

    def root_pem(self) -> bytes:
        """The root that signs the certificates Pebble issues (new at each start)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        url = f"https://127.0.0.1:{self.management_port}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:
            return bytes(answer.read())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_pebble(
    directory: Path,
    address: str,
    http_port: int,
    nonce_reject: int = 5,
    validity: int | None = None,
    eab_keys: dict[str, str] | None = None,
    tls_port: int | None = None,
    acme_port: int | None = None,
) -> Iterator[Pebble]:
    """Pebble and its DNS (every name -> ``address``), validating http-01 on ``http_port``
    and tls-alpn-01 on ``tls_port`` (none given: a port where nothing listens);
    ``nonce_reject``: the share of good nonces refused as ``badNonce`` (Pebble's default is 5);
    ``validity``: the seconds its certificates are valid (its default: five years);
    ``eab_keys``: key id -> base64url HMAC key, an external account binding then required;
    ``acme_port``: where its directory is (none given: a free port), so that a second Pebble,
    with roots of its own, can stand at the first one's directory URL."""
    require_pebble()
    directory.mkdir(parents=True, exist_ok=True)
    files = server_files(directory, "pebble")
    ca_file = files.ca_file
    acme_port = acme_port or free_port()
    management_port, dns_port, dns_management = (free_port() for _ in range(3))
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{acme_port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(files.certificate),
            "privateKey": str(files.key),
            "httpPort": http_port,
            "tlsPort": tls_port or free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(eab_keys),
            **({"externalAccountMACKeys": eab_keys} if eab_keys else {}),
            **({"certificateValidityPeriod": validity} if validity else {}),
        }
    }
    (directory / "pebble.json").write_text(json.dumps(config))
    log_path = directory / "pebble.log"
    log = log_path.open("w")
    dns = subprocess.Popen(
        [
            CHALLTESTSRV,
            "-defaultIPv4",
            address,
            "-defaultIPv6",
            "",
            "-dns01",
            f"127.0.0.1:{dns_port}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-management",
            f"127.0.0.1:{dns_management}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    environment = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_VA_ALWAYS_VALID": "0",
        "PEBBLE_WFE_NONCEREJECT": str(nonce_reject),
    }
    ca_process = subprocess.Popen(
        [PEBBLE, "-config", str(directory / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        eventually(
            lambda: _listening(acme_port) and _listening(management_port),
            timeout=20,
            what=f"pebble listens on 127.0.0.1:{acme_port} (log: {log_path})",
        )
        yield Pebble(
            f"https://127.0.0.1:{acme_port}/dir", ca_file, management_port, http_port, log_path
        )
    finally:
        stop(ca_process)
        stop(dns)
        log.close()


class Directory(Protocol):
    """Where an ACME client finds the CA: Pebble, or a proxy in front of it."""

    directory_url: str
    ca_file: Path  # the root of its HTTPS certificate


def register(data_dir: Path, ca: Directory) -> dict[str, object]:
    """``certgate acme account set`` with the CA's directory: its answer (``--json``)."""
    done = run_cli(
        data_dir,
        *("acme", "account", "set", "--directory", ca.directory_url),
        *("--ca-file", str(ca.ca_file), "--email", "admin@example.test", "--agree-tos"),
        "--json",
    )
    return dict(json.loads(done.stdout))


def orders(data_dir: Path) -> list[dict[str, object]]:
    """``certgate acme orders --json``."""
    return list(json.loads(run_cli(data_dir, "acme", "orders", "--json").stdout))


def order(
    data_dir: Path, name: str, domain: str, *assign: str, options: tuple[str, ...] = ()
) -> dict[str, object]:
    """``certgate acme order`` of ``domain`` as ``name``, assigned to ``assign``: its
    answer (``--json``)."""
    assigned = [option for address in assign for option in ("--assign", address)]
    done = run_cli(
        data_dir,
        *("acme", "order", "--name", name, "--domain", domain, *assigned, *options, "--json"),
    )
    return dict(json.loads(done.stdout))
