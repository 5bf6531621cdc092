"""Two hosts cloned from one image share a host name, the default node name: started on
one store, both serves wrote one heartbeat row, and the node list, Status and the holders
of floating addresses flipped between them. A serve now refuses a name an alive node of
another boot keeps beating under, and starts under one whose other boot has gone quiet
(this host's own row from before a quick reboot)."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from certgate.service import nodes
from certgate.service.appliance import Appliance
from tests.support.net import free_port
from tests.support.server import CERTGATE, node_list, run_cli, serving

ADDRESS = "127.0.0.77"
OTHER_HOST = (
    "cloned-gw",
    "0badc0de-0000-4000-8000-000000000000",
)  # the clone: same name, its own boot


def initialised(data_dir: Path) -> None:
    run_cli(data_dir, "init", "--no-address", CERTGATE_ADMIN_PASSWORD="correct horse battery")
    run_cli(data_dir, "ip", "add", ADDRESS)


@contextmanager
def beating_elsewhere(data_dir: Path, name: str, interval: float) -> Iterator[None]:
    """A node of another host, alive under ``name``: it beats every ``interval`` seconds."""
    app = Appliance.open(data_dir)
    done = threading.Event()
    started = app.now()

    def beat() -> bool:
        return nodes.heartbeat(app, name, started, interval, [], host=OTHER_HOST)

    assert beat()

    def keep_beating() -> None:
        while not done.wait(interval):
            beat()

    thread = threading.Thread(target=keep_beating)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        app.close()


def test_a_name_another_host_beats_under_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    initialised(data_dir)
    with beating_elsewhere(data_dir, "twin", interval=0.5):
        refused = subprocess.run(
            [CERTGATE, "serve", "--node", "twin", "--https-port", str(free_port())],
            env={"PATH": "/usr/bin:/bin", "CERTGATE_DATA_DIR": str(data_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert refused.returncode != 0, refused.stdout + refused.stderr
    said = refused.stdout + refused.stderr
    assert "node name 'twin' is in use by the 'certgate serve' on host 'cloned-gw'" in said
    assert "give this node its own name with --node" in said and "Traceback" not in said


def test_a_name_whose_other_boot_went_quiet_is_taken_over(tmp_path: Path) -> None:
    """This host's own row from before a reboot (another boot id), still within its
    heartbeat's time: serve waits for it to run out, then starts and reports as this host."""
    data_dir = tmp_path / "data"
    initialised(data_dir)
    app = Appliance.open(data_dir)
    try:
        assert nodes.heartbeat(app, "twin", app.now(), 2.0, [], host=OTHER_HOST)
    finally:
        app.close()
    with serving(data_dir, ADDRESS, "correct horse battery", ("--node", "twin")) as running:
        twin = node_list(running)["twin"]
        assert twin["state"] == "alive" and twin["host"] == socket.gethostname()
        assert "waiting for its next heartbeat or its end" in running.log_text()
