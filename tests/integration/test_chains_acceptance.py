"""Chains and warnings against public path-building suites (NIST PKITS, x509-limbo) and the
pathological "100 intermediates sharing one subject and key" case.

certgate does not validate paths for trust (it has no trust anchors); what it must do is link
each certificate to the issuer that really signed it, so that the chain it serves is the one a
client can verify, never link through a bad signature, and stay bounded on hostile input.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from certgate.pki.chain import MAX_CHAIN_DEPTH
from certgate.service.appliance import Appliance
from certgate.service.certificates import list_certificates, show_certificate
from certgate.service.imports import ImportEntry, import_files
from certgate.service.views import CertificateView
from tests.support.acceptance import ACCEPTANCE
from tests.support.pki import fingerprint, issue, name, pem

PKITS = ACCEPTANCE / "pkits"
PKITS_CASES: list[dict[str, Any]] = json.loads((PKITS / "pkits.json").read_text())
LIMBO_CASES: list[dict[str, Any]] = json.loads((ACCEPTANCE / "limbo" / "limbo.json").read_text())[
    "testcases"
]
TRUST_ANCHOR = "TrustAnchorRootCertificate.crt"

#: PKITS certificates whose DSA key inherits its parameters from the issuer: cryptography
#: cannot parse them, so certgate refuses the files (with a message) instead of chaining them.
UNPARSEABLE = {"DSAParametersInheritedCACert.crt", "ValidDSAParameterInheritanceTest5EE.crt"}

#: Seconds one import of a testcase may take. Measured: < 0.2 s for the worst (the 100
#: intermediate cases); the bound is there to turn a hang into a failure.
IMPORT_BOUND = 20.0

T = TypeVar("T")


# --- helpers ------------------------------------------------------------------------------------


def verifies(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """An independent signature check (this test's own, not certgate's), DSA included."""
    key = parent.public_key()
    signature, tbs = child.signature, child.tbs_certificate_bytes
    algorithm = child.signature_hash_algorithm
    parameters = child.signature_algorithm_parameters
    try:
        if isinstance(key, rsa.RSAPublicKey):
            assert isinstance(parameters, padding.PKCS1v15 | padding.PSS) and algorithm
            key.verify(signature, tbs, parameters, algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert isinstance(parameters, ec.ECDSA)
            key.verify(signature, tbs, parameters)
        elif isinstance(key, dsa.DSAPublicKey):
            assert algorithm is not None
            key.verify(signature, tbs, algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, tbs)
        else:
            return False
    except (InvalidSignature, AssertionError, ValueError, TypeError):
        return False
    return True


def certificates_of(view: CertificateView, stored: dict[str, bytes]) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(stored[fp]) for fp in view.chain]


def assert_every_link_verifies(chain: Sequence[x509.Certificate]) -> None:
    for position, (child, parent) in enumerate(itertools.pairwise(chain), start=1):
        assert verifies(child, parent), (
            f"link {position} of the chain: {parent.subject.rfc4514_string()} did not sign "
            f"{child.subject.rfc4514_string()}"
        )


def stored_ders(app: Appliance) -> dict[str, bytes]:
    with app.store.reading() as repository:
        return {row.fingerprint: row.der for row in repository.all_certificates()}


def entry_for(entries: Sequence[ImportEntry], name: str) -> ImportEntry:
    """The file's certificate entry, or its error (file-level notes are separate entries)."""
    found = [
        e for e in entries if e.file == name and (e.kind == "certificate" or e.status == "error")
    ]
    assert len(found) == 1, entries
    return found[0]


def bounded(seconds: float, work: Callable[[], T]) -> tuple[T, float]:
    """Run ``work`` in a daemon thread: a hang fails the test instead of blocking the suite."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error

    start = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - start
    assert not thread.is_alive(), f"did not return within {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"], elapsed


# --- NIST PKITS ---------------------------------------------------------------------------------


def _pkits_param(case: dict[str, Any]) -> Any:
    return pytest.param(case, id=f"{case['id']}-{case['name']}")


def _signature_failure(case: dict[str, Any]) -> str | None:
    """'end-entity' or 'intermediate' when the testcase's error is a bad certificate signature."""
    message = case.get("error", {}).get("msg_regex", "")
    match = re.search(r"signature of (the end-entity|intermediate) certificate", message)
    return match.group(1).removeprefix("the ") if match else None


@pytest.mark.parametrize("case", [_pkits_param(case) for case in PKITS_CASES])
def test_pkits_chain_follows_real_signatures(
    case: dict[str, Any], new_appliance: Callable[[], Appliance]
) -> None:
    app = new_appliance()
    names = [TRUST_ANCHOR, *case.get("other_certs", []), case["cert"]]
    files = [(name, (PKITS / "certs" / name).read_bytes()) for name in names]
    anchor = fingerprint(files[0][1])

    entries = import_files(app, files)

    for file_name, _ in files:
        entry = entry_for(entries, file_name)
        if file_name in UNPARSEABLE:
            assert entry.status == "error" and entry.error_code, entry
            assert "\n" not in entry.message
        else:
            assert entry.status == "added", entry
    if case["cert"] in UNPARSEABLE:
        return
    view = show_certificate(app, entry_for(entries, case["cert"]).id or 0)
    chain = certificates_of(view, stored_ders(app))
    assert len(chain) <= MAX_CHAIN_DEPTH
    assert len(set(view.chain)) == len(view.chain), "a certificate appears twice in its chain"
    assert_every_link_verifies(chain)
    codes = {warning.code for warning in view.warnings}

    if "error" not in case:
        assert len(view.chain) == case["path_len"], view.chain_subjects
        assert view.chain[-1] == anchor
        assert "chain-incomplete" not in codes
    failure = _signature_failure(case)
    if failure == "end-entity":  # nothing it names signed it: it stands alone, incomplete
        assert view.chain == [view.fingerprint_sha256]
        assert "chain-incomplete" in codes
    elif failure == "intermediate":  # the badly signed intermediate never reaches the anchor
        assert anchor not in view.chain
        assert "chain-incomplete" in codes


def test_pkits_bad_ca_signature_is_not_linked_but_the_good_leaf_link_is(
    new_appliance: Callable[[], Appliance],
) -> None:
    """PKITS 4.1.2: BadSignedCACert's own signature is bad; the leaf it signed is fine."""
    app = new_appliance()
    names = [TRUST_ANCHOR, "BadSignedCACert.crt", "InvalidCASignatureTest2EE.crt"]
    entries = import_files(app, [(n, (PKITS / "certs" / n).read_bytes()) for n in names])
    leaf = show_certificate(app, entry_for(entries, names[2]).id or 0)
    bad_ca = show_certificate(app, entry_for(entries, names[1]).id or 0)
    assert leaf.chain == [leaf.fingerprint_sha256, bad_ca.fingerprint_sha256]
    assert bad_ca.chain == [bad_ca.fingerprint_sha256]
    assert "chain-incomplete" in {w.code for w in bad_ca.warnings}


# --- x509-limbo ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@pytest.mark.parametrize("case", LIMBO_CASES, ids=[case["id"] for case in LIMBO_CASES])
def test_limbo_import_is_bounded_and_never_crashes(
    case: dict[str, Any], new_appliance: Callable[[], Appliance]
) -> None:
    files = [
        *((f"trusted-{i}.pem", text.encode()) for i, text in enumerate(case["trusted_certs"])),
        *(
            (f"intermediate-{i}.pem", text.encode())
            for i, text in enumerate(case["untrusted_intermediates"])
        ),
        ("peer.pem", case["peer_certificate"].encode()),
    ]
    app = new_appliance()

    def work() -> tuple[list[ImportEntry], list[CertificateView]]:
        return import_files(app, files), list_certificates(app)

    (entries, views), elapsed = bounded(IMPORT_BOUND, work)

    assert elapsed < IMPORT_BOUND
    assert all(entry.status != "error" or entry.error_code for entry in entries), entries
    stored = {entry.fingerprint_sha256 for entry in entries if entry.kind == "certificate"}
    assert len(views) == len(stored) + 1  # and the factory certificate
    for view in views:
        assert len(view.chain) <= MAX_CHAIN_DEPTH, (view.subject, len(view.chain))
        assert len(set(view.chain)) == len(view.chain), f"loop in the chain of {view.subject}"
    peer = entry_for(entries, "peer.pem")
    assert peer.status in ("added", "present"), peer  # present: the peer is also trusted
    peer_view = next(view for view in views if view.id == peer.id)
    chain = certificates_of(peer_view, stored_ders(app))
    assert_every_link_verifies(chain)
    top = chain[-1]
    top_is_root = top.subject == top.issuer and verifies(top, top)
    warned = "chain-incomplete" in {w.code for w in peer_view.warnings}
    assert warned != top_is_root, (peer_view.chain_subjects, peer_view.warnings)
    if case["expected_result"] == "SUCCESS":  # the chain a client validates is the one served
        trusted = {
            fingerprint(x509.load_pem_x509_certificate(p.encode())) for p in case["trusted_certs"]
        }
        assert trusted & set(peer_view.chain), peer_view.chain_subjects


# --- 100 intermediates sharing one subject and key ----------------------------------------------


@pytest.fixture(scope="module")
def hundred_intermediates() -> tuple[x509.Certificate, list[x509.Certificate], x509.Certificate]:
    """Root -> 100 intermediates with one subject and one key (each a distinct certificate:
    serial and validity differ) -> leaf. Every intermediate verifies the leaf's signature."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    shared_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = issue(
        name("Pathological Root"), root_key.public_key(), name("Pathological Root"), root_key,
        ca=True, days=3650, serial=1, key_ids=False,
    )  # fmt: skip
    intermediates = [
        issue(
            name("Pathological Shared CA"),
            shared_key.public_key(),
            root.subject,
            root_key,
            ca=True,
            days=400 + (37 * index) % 100,
            serial=1000 + index,
            key_ids=False,
        )
        for index in range(100)
    ]
    leaf = issue(
        name("victim.example.com"), leaf_key.public_key(), name("Pathological Shared CA"),
        shared_key, ca=False, days=90, serial=7, key_ids=False,
    )  # fmt: skip
    return root, intermediates, leaf


@pytest.mark.parametrize("order", ["one import", "leaf first, root last"])
def test_hundred_intermediates_sharing_subject_and_key(
    order: str,
    hundred_intermediates: tuple[x509.Certificate, list[x509.Certificate], x509.Certificate],
    new_appliance: Callable[[], Appliance],
) -> None:
    root, intermediates, leaf = hundred_intermediates
    app = new_appliance()
    files = {
        "root": [("root.pem", pem(root))],
        "intermediates": [(f"ica-{i}.pem", pem(c)) for i, c in enumerate(intermediates)],
        "leaf": [("leaf.pem", pem(leaf))],
    }
    batches = (
        [files["root"] + files["intermediates"] + files["leaf"]]
        if order == "one import"
        else [files["leaf"], files["intermediates"], files["root"]]
    )

    def work() -> None:
        for batch in batches:
            assert all(e.status == "added" for e in import_files(app, batch))

    _, elapsed = bounded(IMPORT_BOUND, work)

    assert elapsed < 10
    leaf_view = show_certificate(app, fingerprint(leaf))
    middle = {fingerprint(c) for c in intermediates}
    assert len(leaf_view.chain) == 3
    assert leaf_view.chain[1] in middle
    assert leaf_view.chain[2] == fingerprint(root)
    assert "chain-incomplete" not in {w.code for w in leaf_view.warnings}
    for view in list_certificates(app):
        if view.fingerprint_sha256 in middle:
            assert view.chain[1:] == [leaf_view.chain[2]], "an intermediate lost its root"
