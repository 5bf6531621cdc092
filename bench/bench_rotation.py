"""``certgate key rotate`` on a store of many private keys, against its floor.

Printed, never asserted. A store with ``--keys`` private keys (P-256, each with its
certificate) is made once; then the rotation (``service/rotation.py``: one transaction that
re-seals every key with a new master key) is timed, beside the floor measured in the same
run: opening and sealing the same sealed keys in memory with the same two sealers, no store.
The rotation holds the store's write lock for its whole time (other writes wait; the
listeners go on serving), so the ratio to the floor is what the store adds.

Run: ``.venv/bin/python bench/bench_rotation.py`` (``--keys 100000``: several minutes to
make the store).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import select

from bench_large_store import CERTGATE, _env, import_all, leaves
from certgate.service import rotation
from certgate.service.appliance import Appliance
from certgate.store.models import KeyRow
from certgate.store.sealing import Sealer

IMPORT_BATCH = 2000  # key + certificate pairs a file


def make_store(data_dir: Path, keys: int) -> None:
    subprocess.run([CERTGATE, "init"], env=_env(data_dir), check=True, capture_output=True)
    app = Appliance.open(data_dir)
    try:
        pairs = leaves(keys, "rotated")
        for start in range(0, keys, IMPORT_BATCH):
            content = b"".join(cert + key for cert, key in pairs[start : start + IMPORT_BATCH])
            import_all(app, f"keys{start}.pem", content)
    finally:
        app.close()


def floor_seconds(app: Appliance) -> float:
    """Every sealed key opened with the current sealer and sealed with a new one."""
    with app.store.reading() as repository:
        rows = repository.session.execute(select(KeyRow.public_key_fingerprint, KeyRow.sealed))
        sealed = [tuple(row) for row in rows]
    new = Sealer.generate()
    started = time.perf_counter()
    for fingerprint, data in sealed:
        new.seal(fingerprint, app.sealer.unseal(fingerprint, data))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=20_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="certgate-bench-rotation-") as scratch:
        data_dir = Path(scratch) / "data"
        started = time.perf_counter()
        make_store(data_dir, arguments.keys)
        print(f"store of {arguments.keys:,} keys made in {time.perf_counter() - started:.1f} s")
        app = Appliance.open(data_dir)
        try:
            floor = floor_seconds(app)
            started = time.perf_counter()
            rotated = rotation.rotate(app)
            seconds = time.perf_counter() - started
        finally:
            app.close()
    print(f"{'':<28} {'seconds':>8} {'per key':>9}")
    for label, value in (("floor (unseal + seal)", floor), ("key rotate", seconds)):
        print(f"{label:<28} {value:>8.2f} {value / rotated.private_keys * 1e6:>7.0f}µs")
    print(f"rotate / floor: {seconds / floor:.2f}x ({rotated.private_keys:,} keys re-sealed)")


if __name__ == "__main__":
    main()
