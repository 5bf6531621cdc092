"""Imports in parallel: a large bundle's issuers are checked on several threads with the same
links as one thread finds, and two imports in two threads keep their own warnings."""

from __future__ import annotations

import random
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.pki.loader import LoadedFile, load_file
from certgate.service import linking, prechecks
from certgate.service.appliance import Appliance
from certgate.service.certificates import list_certificates
from certgate.service.imports import import_files
from certgate.service.setup import initialise
from tests.support.pki import issue, name, negative_serial_pem, new_key

LEAVES = 300  # over linking.PARALLEL_BATCH: the threads are used


def _bundle() -> tuple[bytes, dict[str, list[str]]]:
    """A root, three intermediates and LEAVES leaves, shuffled; the expected chain subjects
    of each leaf."""
    root_key = new_key()
    root = issue(name("Bulk Root"), root_key.public_key(), name("Bulk Root"), root_key, ca=True)
    certificates = [root]
    intermediates = []
    for number in range(3):
        key = new_key()
        subject = name(f"Bulk Intermediate {number}")
        intermediates.append(
            (subject, key, issue(subject, key.public_key(), root.subject, root_key, ca=True))
        )
        certificates.append(intermediates[-1][2])
    expected: dict[str, list[str]] = {}
    leaf_key = new_key()  # one key for all leaves: key generation is not what is tested
    for number in range(LEAVES):
        subject_name, issuer_key, _ = intermediates[number % 3]
        host = f"leaf-{number}.bulk.test"
        certificates.append(
            issue(name(host), leaf_key.public_key(), subject_name, issuer_key, ca=False)
        )
        expected[host] = [f"CN=Bulk Intermediate {number % 3}", "CN=Bulk Root"]
    random.Random(7).shuffle(certificates)
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates), expected


def _chains(data_dir: Path, bundle: bytes) -> dict[str, list[str]]:
    initialise(data_dir, None)
    app = Appliance.open(data_dir)
    try:
        import_files(app, [("bundle.pem", bundle)])
        return {view.issued_to: view.chain_subjects for view in list_certificates(app)}
    finally:
        app.close()


def _forged(bundle: bytes) -> tuple[bytes, str]:
    """The bundle plus a leaf that names an intermediate of it as issuer but was signed by
    another key: no chain may be built for it."""
    impostor = new_key()
    forged = issue(
        name("forged.bulk.test"), impostor.public_key(), name("Bulk Intermediate 1"), impostor,
        ca=False,
    )  # fmt: skip
    return bundle + forged.public_bytes(Encoding.PEM), "forged.bulk.test"


@pytest.mark.parametrize("precheck", ["process", "failing process", "none"])
def test_threads_and_prechecks_link_a_large_bundle_as_one_thread_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precheck: str
) -> None:
    bundle, expected = _bundle()
    bundle, forged = _forged(bundle)
    expected[forged] = []
    answers: list[int] = []
    collect = prechecks.SignaturePrecheck._collect

    def counted(self: prechecks.SignaturePrecheck) -> dict[tuple[str, str], bool]:
        found = collect(self)
        answers.append(len(found))
        return found

    with monkeypatch.context() as patch:
        patch.setattr(prechecks, "MIN_CERTIFICATES", 1 if precheck != "none" else 10**9)
        patch.setattr(prechecks.SignaturePrecheck, "_collect", counted)
        if precheck == "failing process":
            patch.setattr(prechecks, "WORKER_MODULE", "certgate.no_such_module")
        threaded = _chains(tmp_path / "threaded", bundle)
    # every leaf and intermediate was checked in advance (the forged leaf too: False)
    assert answers == {"process": [LEAVES + 3 + 1], "failing process": [0], "none": [0]}[precheck]
    with monkeypatch.context() as patch:  # everything in the calling thread, nothing before
        patch.setattr(linking, "PARALLEL_BATCH", 10**9)
        patch.setattr(prechecks, "MIN_CERTIFICATES", 10**9)
        single = _chains(tmp_path / "single", bundle)
    assert threaded == single
    for host, chain in expected.items():
        assert threaded[host] == chain, host


def test_two_threads_loading_odd_files_keep_their_own_warnings() -> None:
    files = {host: negative_serial_pem(host) for host in ("first.odd.test", "second.odd.test")}
    alone = {host: load_file(data) for host, data in files.items()}
    for host, loaded in alone.items():
        assert any(host in note and "negative" in note for note in loaded.warnings), host
    results: dict[str, list[LoadedFile]] = {host: [] for host in files}

    def load_many(host: str) -> None:
        for _ in range(200):
            results[host].append(load_file(files[host]))

    threads = [threading.Thread(target=load_many, args=(host,)) for host in files]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: inside the captures
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    for host, loads in results.items():
        assert all(loaded.warnings == alone[host].warnings for loaded in loads), host
