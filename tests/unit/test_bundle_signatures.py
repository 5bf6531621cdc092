"""The process that checks a bundle's signatures in advance: the pairs it finds by name
bytes, the answers it gives (a forged signature is False), what it leaves to the import."""

from __future__ import annotations

import subprocess
import sys

from cryptography.hazmat.primitives.serialization import Encoding

from certgate.pki.bundle_signatures import MAX_TWINS, checked_pairs
from tests.support.pki import fingerprint, issue, make_chain, name, new_key


def test_pairs_by_name_bytes_and_a_forged_signature_is_false() -> None:
    chain = make_chain("pairs.example")
    impostor = new_key()
    forged = issue(
        name("forged.example"), impostor.public_key(), chain.intermediate.subject, impostor,
        ca=False,
    )  # fmt: skip
    certificates = [chain.leaf, forged, chain.intermediate, chain.root]
    bundle = b"".join(c.public_bytes(Encoding.PEM) for c in certificates)
    found = set(checked_pairs(bundle))
    leaf, bad, intermediate, root = (fingerprint(c) for c in certificates)
    assert found == {
        (leaf, intermediate, True),
        (bad, intermediate, False),
        (intermediate, root, True),
    }


def test_a_name_with_too_many_certificates_is_left_to_the_import() -> None:
    key = new_key()
    twins = [
        issue(name("Many"), key.public_key(), name("Many"), key, ca=True)
        for _ in range(MAX_TWINS + 1)
    ]
    leaf = issue(name("leaf.example"), new_key().public_key(), name("Many"), key, ca=False)
    bundle = b"".join(c.public_bytes(Encoding.PEM) for c in [leaf, *twins])
    assert not [pair for pair in checked_pairs(bundle) if pair[0] == fingerprint(leaf)]


def test_run_as_a_process_it_prints_one_line_per_pair_and_nothing_for_other_input() -> None:
    chain = make_chain("process.example")
    bundle = b"".join(c.public_bytes(Encoding.PEM) for c in (chain.leaf, chain.intermediate))
    command = [sys.executable, "-m", "certgate.pki.bundle_signatures"]
    done = subprocess.run(command, input=bundle, capture_output=True, check=True)
    assert done.stdout.decode() == (
        f"{fingerprint(chain.leaf)} {fingerprint(chain.intermediate)} 1\n"
    )
    other = subprocess.run(command, input=b"not a bundle", capture_output=True, check=True)
    assert other.stdout == b""
