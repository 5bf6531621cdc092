"""Integration fixtures: the ``certgate`` command as an administrator runs it, on fresh data
directories, and a CA made by the openssl CLI.

``certgate_exe`` runs the installed executable in a subprocess (what a user or a script sees,
exit codes and stderr included); ``certgate`` runs the same ``main()`` in this process through
click's test isolation, which is ten times faster for the matrices. Every data directory is a
copy of one initialised directory, so that no test pays for ``init`` and key generation it
does not test; the tests about ``init`` and the failover copy make their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from certgate.service.appliance import Appliance
from certgate.service.nodes import HEARTBEAT_ENV
from certgate.service.setup import initialise
from tests.support.openssl import OpensslCA, make_ca
from tests.support.server import RunningAppliance, two_nodes

CERTGATE = Path(sys.executable).with_name("certgate")
TIMEOUT = 120


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


class Certgate:
    """``certgate`` on one data directory; every run is checked for leaked tracebacks."""

    def __init__(self, data_dir: Path, *, subprocess: bool) -> None:
        self.data_dir = data_dir
        self.subprocess = subprocess

    def __call__(
        self, *args: str | Path, expect: int | None = 0, env: Mapping[str, str] | None = None
    ) -> Run:
        argv = [str(arg) for arg in args]
        extra = {"CERTGATE_DATA_DIR": str(self.data_dir), **(env or {})}
        run = self._subprocess(argv, extra) if self.subprocess else self._in_process(argv, extra)
        assert "Traceback" not in run.stderr, run.stderr
        assert "internal error" not in run.stderr, run.stderr
        if expect is not None:
            assert run.returncode == expect, (
                f"certgate {' '.join(argv)} exited {run.returncode}, expected {expect}\n"
                f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
            )
        return run

    @property
    def reader(self) -> Certgate:
        """The same data directory driven in-process: for checking what a step did without
        paying a process start per look."""
        return Certgate(self.data_dir, subprocess=False)

    def json(self, *args: str | Path, env: Mapping[str, str] | None = None) -> Any:
        return self(*args, "--json", env=env).json()

    def certificates(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.json("cert", "list")
        return result

    def show(self, reference: str | int) -> dict[str, Any]:
        result: dict[str, Any] = self.json("cert", "show", str(reference))
        return result

    def _subprocess(self, argv: list[str], extra: dict[str, str]) -> Run:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CERTGATE_")}
        environment.update(extra)
        done = subprocess.run(
            [str(CERTGATE), *argv],
            env=environment,
            cwd=self.data_dir.parent,  # relative paths in argv land beside the data directory
            stdin=subprocess.DEVNULL,  # no terminal: certgate must never wait for a prompt
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def _in_process(self, argv: list[str], extra: dict[str, str]) -> Run:
        from certgate.cli.main import main  # the CLI's own import errors belong to its tests

        unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CERTGATE_")}
        runner = CliRunner()
        saved_argv = sys.argv
        code: int | str | None = 0
        with runner.isolation(env={**unset, **extra}) as (stdout, stderr, _):
            sys.argv = ["certgate", *argv]
            try:
                main()
            except SystemExit as exit_:
                code = exit_.code
            finally:
                sys.argv = saved_argv
            out = stdout.getvalue().decode(errors="replace")
            err = stderr.getvalue().decode(errors="replace")
        return Run(code if isinstance(code, int) else 1, out, err)


@pytest.fixture(scope="session")
def initialised_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory made by the real ``certgate init``, copied for each test."""
    directory = tmp_path_factory.mktemp("template") / "data"
    Certgate(directory, subprocess=True)("init", "--no-address")
    return directory


def fresh_data_dir(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)  # copy2 keeps the master key's 0600 mode
    return target


@pytest.fixture
def certgate(initialised_template: Path, tmp_path: Path) -> Certgate:
    """An initialised appliance driven in-process."""
    return Certgate(fresh_data_dir(initialised_template, tmp_path / "data"), subprocess=False)


@pytest.fixture
def certgate_exe(initialised_template: Path, tmp_path: Path) -> Certgate:
    """An initialised appliance driven by the installed executable."""
    return Certgate(fresh_data_dir(initialised_template, tmp_path / "data-exe"), subprocess=True)


@pytest.fixture(scope="session")
def openssl_ca(tmp_path_factory: pytest.TempPathFactory) -> OpensslCA:
    """Root and issuing CA made by the openssl CLI, shared (read-only) by the session."""
    return make_ca(tmp_path_factory.mktemp("openssl-ca"))


# --- the service layer on fresh SQLite appliances ----------------------------------------------


@pytest.fixture(scope="session")
def service_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised data directory (in-process ``initialise``), copied per appliance."""
    directory = tmp_path_factory.mktemp("service-template") / "data"
    initialise(directory)
    return directory


@pytest.fixture
def new_appliance(service_template: Path, tmp_path: Path) -> Iterator[Callable[[], Appliance]]:
    """Make as many fresh SQLite appliances as a test needs; all are closed afterwards."""
    opened: list[Appliance] = []

    def make() -> Appliance:
        app = Appliance.open(fresh_data_dir(service_template, tmp_path / f"app{len(opened)}"))
        opened.append(app)
        return app

    yield make
    for app in opened:
        app.close()


@pytest.fixture
def nodes(
    tmp_path: Path, postgresql_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningAppliance, RunningAppliance]]:
    """Two serving nodes on one PostgreSQL store (``server.two_nodes``), each beating every
    0.5 s: one that stops beating is lost after 1.5 s."""
    monkeypatch.setenv(HEARTBEAT_ENV, "0.5")
    with two_nodes(tmp_path, postgresql_url) as pair:
        yield pair
