"""Two hosts cloned from one image share a host name, the default node name: started on
one store, both serves wrote one heartbeat row, and the node list, Status and the holders
of floating addresses flipped between them. A serve now refuses a name an alive node of
another boot keeps beating under, and starts under one whose other boot has gone quiet
(this host's own row from before a quick reboot)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import insert

from certgate.errors import AlreadyServingError
from certgate.service import nodes
from certgate.service.appliance import Appliance
from certgate.store.database import make_engine
from certgate.store.models import NodeRow
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


def test_of_two_starts_under_one_name_at_the_same_moment_the_second_is_refused(
    appliance: Appliance,
) -> None:
    """Both found no row under the name and both started: on PostgreSQL the second's first
    heartbeat failed on the unique name (a raw error in its log), on SQLite it took over the
    first's row. The other host's start is a real transaction, its row written but not yet
    committed while this one claims; this one is then refused as if it had come later."""
    interval = 0.5
    other_host, other_boot = OTHER_HOST
    engine = make_engine(appliance.store.url, immediate=True)
    refused: list[BaseException] = []

    def claim() -> None:
        try:
            nodes.claim_name(appliance, "twin")
        except AlreadyServingError as error:
            refused.append(error)

    claiming = threading.Thread(target=claim)
    try:
        with engine.begin() as other:
            now = appliance.now()
            other.execute(
                insert(NodeRow).values(
                    name="twin",
                    version="1",
                    started_at=now,
                    last_seen=now,
                    interval=interval,
                    listeners=[],
                    host=other_host,
                    boot_id=other_boot,
                )
            )
            claiming.start()
            time.sleep(0.5)  # the claim reads no row and writes its own, held by this one's
        for _ in range(10):  # the other node beats on while this one looks
            if not claiming.is_alive():
                break
            nodes.heartbeat(appliance, "twin", now, interval, [], host=OTHER_HOST)
            claiming.join(interval)
    finally:
        claiming.join()
        engine.dispose()
    [error] = refused
    assert "node name 'twin' is in use by the 'certgate serve' on host 'cloned-gw'" in str(error)
    [row] = [view for view in nodes.list_nodes(appliance) if view.name == "twin"]
    assert row.host == "cloned-gw"
