"""A change costs what it changes: a small store beside a large one (1,000 addresses, each
with a certificate of its own, and 100,000 certificates in the store).

Printed, never asserted. For each store a real ``certgate serve`` process runs on the data
directory; this process (a different one, as the CLI would be) then:

- flips one address between two certificates 20 times through the service layer
  (``networking.assign``) while client threads handshake with that address in a loop, and
  times each commit to the first handshake that started after it and presented the new
  certificate (target at the large size: p50 < 50 ms);
- makes writes that change nothing served (a user, an API token, an export by an auditor,
  an import of a certificate no address uses) and prints the CPU time ``serve`` spent per
  write beyond its idle use (target: nothing);
- prints how long ``serve`` took to listen on every address, and its resident memory.

Run: ``.venv/bin/python bench/bench_large_store.py`` (several minutes the first time: the
100,000-certificate bundle is generated once and cached in the temporary directory).
``--addresses`` and ``--certificates`` make the large store smaller for a quick look.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from _nginx import cpu_seconds
from bench_commit_swap import Clients, first_seen, free_port
from bench_import import NOT_AFTER, NOT_BEFORE, Shape, _name, cached_bundle
from bench_memory import resident_kib
from certgate.pki.export import ExportOptions
from certgate.service import auth, exports, imports, networking, users
from certgate.service.appliance import Appliance
from certgate.service.audit import Actor
from certgate.store.models import IpAddressRow

CERTGATE = str(Path(sys.executable).with_name("certgate"))
PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Figures:
    label: str
    start_seconds: float
    rss_mib: float
    swap_p50_ms: float
    swap_p95_ms: float
    failed_handshakes: int
    idle_cpu: float  # share of a core
    write_cpu_ms: dict[str, float]


def address_of(index: int) -> str:
    return f"127.1.{index // 250}.{index % 250 + 1}"


def leaves(count: int, prefix: str) -> list[tuple[bytes, bytes]]:
    """``count`` leaves (PEM) with their keys (PKCS#8 PEM), under one issuer."""
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    issuer = _name(f"certgate {prefix} issuer")
    out = []
    for index in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        host = f"{prefix}{index}.bench.example"
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        out.append((certificate.public_bytes(PEM), key_pem))
    return out


def import_all(app: Appliance, name: str, content: bytes) -> list[int]:
    entries = imports.import_files(app, [(name, content)])
    errors = [entry for entry in entries if entry.status == "error"]
    assert not errors, errors[:3]
    return [e.id for e in entries if e.kind == "certificate" and e.id is not None]


def prepare(data_dir: Path, addresses: int, certificates: int) -> tuple[list[int], int]:
    """The store: ``addresses`` addresses each with its own certificate, a spare one, and
    ``certificates`` more that no address uses. Returns the served ids and the spare's."""
    subprocess.run([CERTGATE, "init"], env=_env(data_dir), check=True, capture_output=True)
    app = Appliance.open(data_dir)
    try:
        if certificates:
            shape = Shape(intermediates=max(1, certificates // 100), leaves=0)
            shape = Shape(shape.intermediates, certificates - 1 - shape.intermediates)
            started = time.perf_counter()
            end = b"-----END CERTIFICATE-----\n"
            blocks = [block + end for block in cached_bundle(shape).split(end) if block.strip()]
            files = [  # 10,000 a file: under the loader's 32 MiB limit
                (f"bulk{start}.pem", b"".join(blocks[start : start + 10_000]))
                for start in range(0, len(blocks), 10_000)
            ]
            entries = imports.import_files(app, files)
            assert not [entry for entry in entries if entry.status == "error"]
            print(
                f"  imported {shape.total:,} certificates in {time.perf_counter() - started:.1f} s"
            )
        pairs = leaves(addresses + 1, "served")
        ids = import_all(app, "served.pem", b"".join(cert + key for cert, key in pairs))
        served, spare = ids[:addresses], ids[addresses]
        with app.store.transaction("bench") as repository:
            repository.add_all(
                IpAddressRow(address=address_of(index), certificate_id=certificate_id)
                for index, certificate_id in enumerate(served)
            )
        return served, spare
    finally:
        app.close()


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "CERTGATE_DATA_DIR": str(data_dir)}


def wait_listening(data_dir: Path, count: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    status = data_dir / "listeners.json"
    while time.monotonic() < deadline:
        try:
            listeners = json.loads(status.read_text())["listeners"]
        except (OSError, ValueError, KeyError):
            listeners = []
        if sum(1 for item in listeners if item["state"] == "listening") >= count:
            return
        time.sleep(0.05)
    raise RuntimeError(f"serve did not listen on {count} addresses in {timeout:.0f} s")


def quiet_writes(
    app: Appliance, served: int, pid: int, repeats: int, pause: float
) -> dict[str, float]:
    """CPU ms ``serve`` spends per write that changes nothing served, beyond idle."""
    options = ExportOptions(include_certificate=True)
    spares = iter(leaves(repeats, "unassigned"))
    counter = iter(range(10**6))

    def unassigned_import() -> None:
        certificate, _ = next(spares)
        import_all(app, "unassigned.pem", certificate)

    writes = {
        "user": lambda: users.create_user(
            app, f"user{next(counter)}", "a long password!", "auditor"
        ),
        "token": lambda: auth.create_token(app, f"token{next(counter)}", "auditor"),
        "export (auditor)": lambda: exports.export_certificate(
            app, served, options, actor=Actor("token:auditor", "127.0.0.1")
        ),
        "unassigned cert": unassigned_import,
    }
    time.sleep(pause)
    before = cpu_seconds(pid)
    time.sleep(pause * repeats)
    idle = (cpu_seconds(pid) - before) / (pause * repeats)
    figures: dict[str, float] = {}
    for label, write in writes.items():
        before, started = cpu_seconds(pid), time.monotonic()
        for _ in range(repeats):
            write()
            time.sleep(pause)
        spent = cpu_seconds(pid) - before - idle * (time.monotonic() - started)
        figures[label] = max(0.0, spent) * 1000 / repeats
    return figures


def measure(label: str, addresses: int, certificates: int, swaps: int) -> Figures:
    data_dir = Path(tempfile.mkdtemp(prefix="certgate-large-store-"))
    try:
        print(f"{label}: preparing {addresses:,} addresses, {certificates:,} more certificates")
        # In a process of its own: the import leaves millions of objects behind, and this
        # process's garbage collector walking them would stall the handshake clients.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            served, spare = pool.apply(prepare, (data_dir, addresses, certificates))
        port = free_port()
        log = (data_dir / "serve.log").open("w")
        started = time.monotonic()
        server = subprocess.Popen(
            [CERTGATE, "serve", "--https-port", str(port)],
            env=_env(data_dir),
            stdout=log,
            stderr=log,
        )
        app = Appliance.open(data_dir)
        try:
            wait_listening(data_dir, addresses)
            start_seconds = time.monotonic() - started
            time.sleep(1.0)
            rss = resident_kib(server.pid) / 1024
            idle_before = cpu_seconds(server.pid)
            time.sleep(3.0)
            idle = (cpu_seconds(server.pid) - idle_before) / 3.0
            write_cpu = quiet_writes(app, served[0], server.pid, repeats=5, pause=0.3)
            latencies: list[float] = []
            fingerprints = {
                certificate_id: _fingerprint(app, certificate_id)
                for certificate_id in (served[0], spare)
            }
            with Clients(port, 4, address_of(0)) as clients:
                time.sleep(1.0)
                for swap in range(swaps):
                    target = spare if swap % 2 == 0 else served[0]
                    networking.assign(app, [address_of(0)], target, confirm=True)
                    committed = time.monotonic()
                    time.sleep(0.5)
                    seen = first_seen(clients.records, committed, fingerprints[target])
                    latencies.append((seen - committed) * 1000)
            failed = len(clients.failures)
            rss = max(rss, resident_kib(server.pid) / 1024)
        finally:
            server.terminate()
            server.wait(30)
            app.close()
        valid = sorted(value for value in latencies if value == value)
        p50 = statistics.median(valid) if valid else float("nan")
        p95 = valid[min(len(valid) - 1, int(len(valid) * 0.95))] if valid else float("nan")
        return Figures(label, start_seconds, rss, p50, p95, failed, idle, write_cpu)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _fingerprint(app: Appliance, certificate_id: int) -> str:
    with app.store.reading() as repository:
        row = repository.certificate(certificate_id)
        assert row is not None
        return row.fingerprint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addresses", type=int, default=1000)
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--swaps", type=int, default=20)
    arguments = parser.parse_args()
    rows = [
        measure("small", 1, 0, arguments.swaps),
        measure("large", arguments.addresses, arguments.certificates, arguments.swaps),
    ]
    kinds = list(rows[0].write_cpu_ms)
    print()
    print(
        f"{'store':<34} {'listening':>9} {'RSS':>9} {'swap p50':>9} {'p95':>8} {'failed':>6}"
        f" {'idle CPU':>8}  serve CPU per write that changes nothing served (ms)"
    )
    for row, (addresses, certificates) in zip(
        rows, [(1, 0), (arguments.addresses, arguments.certificates)], strict=True
    ):
        store = f"{row.label} ({addresses:,} addr, {certificates:,} certs)"
        writes = "  ".join(f"{kind} {row.write_cpu_ms[kind]:.1f}" for kind in kinds)
        print(
            f"{store:<34} {row.start_seconds:>8.1f}s {row.rss_mib:>6.0f}MiB"
            f" {row.swap_p50_ms:>7.1f}ms {row.swap_p95_ms:>6.1f}ms {row.failed_handshakes:>6}"
            f" {row.idle_cpu:>8.1%}  {writes}"
        )
    print("targets: large swap p50 < 50 ms; CPU per write that changes nothing served ~ 0")


if __name__ == "__main__":
    main()
