"""Page benchmark: server time to render Security > Certificates with 10,000 certificates.

The store gets bench_import's 10,000-certificate bundle (1 root, 100 intermediates, 9,899
leaves) once; then the page is requested N times through the ASGI app (httpx's ASGITransport,
no network), logged in as an administrator, and the p50/p95 are printed for the page as it
first opens and for the table's search, sort, last page and htmx fragment. The first request
after a change rebuilds the views of every certificate; it is printed on its own ("cold").
Target: p50 < 100 ms for the page.

Run: ``.venv/bin/python bench/bench_pages.py [--requests N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

import httpx

from bench_import import SHAPES, allow_bundle_size, cached_bundle, fresh_appliance
from certgate.service import auth
from certgate.service.appliance import Appliance
from certgate.service.imports import import_files
from certgate.service.users import create_user
from certgate.web.app import create_app
from certgate.web.security import SESSION_COOKIE

PAGE = "/appliance/security/certificates"
PASSWORD = "bench password 1234"
VARIANTS: Sequence[tuple[str, str, dict[str, str]]] = (
    ("page (first 100)", PAGE, {}),
    ("search 'host4242'", PAGE + "?q=host4242", {}),
    ("sort expiration desc", PAGE + "?sort=expiration&order=desc", {}),
    ("last page", PAGE + "?page=100", {}),
    ("htmx table fragment", PAGE + "?q=bench", {"HX-Request": "true", "HX-Target": "certificates"}),
)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure(app: Appliance, cookie: str, requests: int, total: int) -> None:
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://certgate.bench", cookies={SESSION_COOKIE: cookie}
    ) as client:
        started = time.perf_counter()
        first = await client.get(PAGE)
        cold = time.perf_counter() - started
        assert first.status_code == 200, first.status_code
        assert f"of {total:,}" in first.text, f"the page does not show {total:,} certificates"
        print(f"  {'cold (views rebuilt)':<24} {cold * 1000:8.1f} ms")
        print(f"  {'request':<24} {'p50':>8} {'p95':>8}   (ms, {requests} requests each)")
        for label, url, headers in VARIANTS:
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                answer = await client.get(url, headers=headers)
                samples.append(time.perf_counter() - started)
                assert answer.status_code == 200, (url, answer.status_code)
            p50, p95 = percentile(samples, 0.5) * 1000, percentile(samples, 0.95) * 1000
            verdict = "" if label != VARIANTS[0][0] else ("  ok" if p50 < 100 else "  OVER 100 ms")
            print(f"  {label:<24} {p50:8.1f} {p95:8.1f}{verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="requests per variant")
    options = parser.parse_args(argv)
    shape = SHAPES[10_000]
    bundle = cached_bundle(shape)
    allow_bundle_size(len(bundle))
    with fresh_appliance(None) as app:
        started = time.perf_counter()
        entries = import_files(app, [("bundle.pem", bundle)])
        added = sum(entry.status == "added" for entry in entries)
        print(f"imported {added:,} certificates in {time.perf_counter() - started:.1f} s (SQLite)")
        create_user(app, "bench", PASSWORD, "admin")
        session = auth.login(app, "bench", PASSWORD, "bench", auth.LoginThrottle())
        total = shape.total + 1  # and the factory certificate
        print(f"Security > Certificates, {total:,} certificates in the store:")
        asyncio.run(measure(app, session.cookie_value, options.requests, total))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
