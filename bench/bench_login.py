"""Login timing: a wrong password for a known user against any password for an unknown one.

Both must cost the same (one Argon2 verification), or the time tells which usernames exist
(4 ms against 139 ms before the dummy hash). Each attempt comes from a network of its own,
so the throttle never refuses one. Prints p50 and the spread of each, and their ratio.

Run: ``.venv/bin/python bench/bench_login.py [--attempts N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

from bench_import import fresh_appliance
from certgate.errors import AuthenticationError
from certgate.service import auth
from certgate.service.appliance import Appliance
from certgate.service.users import create_user

PASSWORD = "bench password 1234"


def timed(app: Appliance, username: str, attempts: int, first_network: int) -> list[float]:
    throttle = auth.LoginThrottle()
    samples = []
    for index in range(attempts):
        network = first_network + index
        client = f"10.{network // 256}.{network % 256}.1"
        started = time.perf_counter()
        with contextlib.suppress(AuthenticationError):
            auth.login(app, username, "not the password", client, throttle)
        samples.append(time.perf_counter() - started)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=20)
    options = parser.parse_args(argv)
    with fresh_appliance(None) as app:
        create_user(app, "alice", PASSWORD, "admin")
        known = timed(app, "alice", options.attempts, 0)
        unknown = timed(app, "nobody", options.attempts, 1000)
    print(f"login with a wrong password ({options.attempts} attempts each, ms):")
    for label, samples in (("known user", known), ("unknown user", unknown)):
        p50 = statistics.median(samples) * 1000
        spread = (max(samples) - min(samples)) * 1000
        print(f"  {label:<14} p50 {p50:7.1f}   max-min {spread:7.1f}")
    ratio = statistics.median(unknown) / statistics.median(known)
    print(f"  unknown / known: {ratio:.2f} (1.00 = indistinguishable)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
