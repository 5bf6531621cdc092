"""Fixtures of the API tests: real ``certgate serve`` processes over HTTPS on loopback
addresses, an administrator token for each, and a CA made by the openssl CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.api.client import Server, mint_token
from tests.support.openssl import OpensslCA, make_ca
from tests.support.server import running_appliance


@contextmanager
def serve(data_dir: Path, address: str) -> Iterator[Server]:
    """A running appliance; when it stops, its log must hold no traceback: no request may
    fail inside the server."""
    with running_appliance(data_dir, address=address) as running:
        server = Server(running, mint_token(data_dir, "tests", "admin"))
        yield server
    assert "Traceback" not in server.log_text(), server.log_text()[-5000:]


@pytest.fixture(scope="session")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The appliance of the guide's workflows, listening on 127.0.0.2."""
    with serve(tmp_path_factory.mktemp("primary") / "data", "127.0.0.2") as server:
        yield server


@pytest.fixture(scope="session")
def backup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The failover appliance, a second data directory and process on 127.0.0.3."""
    with serve(tmp_path_factory.mktemp("backup") / "data", "127.0.0.3") as server:
        yield server


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> OpensslCA:
    """Root and issuing CA made by the openssl CLI (an independent peer)."""
    return make_ca(tmp_path_factory.mktemp("ca"), "API")
