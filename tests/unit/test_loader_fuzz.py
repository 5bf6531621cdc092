"""Fuzzing the importer: ``load_file`` on mutations of real files (NIST PKITS certificates
and CRLs, x509-limbo's PEM chains, and PKCS#12 / PKCS#7 / key files made here) returns what it
found or raises a ``CertgateError``, never anything else, and never hangs.

hypothesis picks a seed file and mutates it: flipped, inserted, deleted and overwritten bytes,
cut ends, a DER length octet changed, two seeds spliced, PEM bodies damaged. The run is
bounded (``EXAMPLES``, derandomized, so the suite is a stable gate); set
``CERTGATE_FUZZ_EXAMPLES=20000 CERTGATE_FUZZ_RANDOM=1`` to explore. Whatever it finds becomes
a regression test in ``test_loader.py``.
"""

from __future__ import annotations

import json
import os
from functools import cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certgate.errors import CertgateError
from certgate.pki.loader import LoadedFile, load_file
from tests.support.acceptance import ACCEPTANCE
from tests.support.pki import issue, name, new_key

EXAMPLES = int(os.environ.get("CERTGATE_FUZZ_EXAMPLES", "400"))
PASSWORD = b"fuzz"


@cache
def seeds() -> tuple[bytes, ...]:
    """Real files of every format the importer reads (a sample of each corpus)."""
    found: list[bytes] = []
    pkits = ACCEPTANCE / "pkits"
    found += [path.read_bytes() for path in sorted((pkits / "certs").glob("*.crt"))[::20]]
    found += [path.read_bytes() for path in sorted((pkits / "crls").glob("*.crl"))[::40]]
    limbo = json.loads((ACCEPTANCE / "limbo" / "limbo.json").read_text())["testcases"]
    for case in limbo[::150]:
        chain = [case["peer_certificate"], *case.get("untrusted_intermediates", [])]
        found.append("".join(chain).encode())
    found += _made_here()
    return tuple(found)


def _made_here() -> list[bytes]:
    """PKCS#12 (modern and legacy), PKCS#7, keys (plain and encrypted), a CSR-like mix."""
    key = new_key()
    subject = name("fuzz.example")
    certificate = issue(subject, key.public_key(), subject, key, ca=True)
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    modern = serialization.BestAvailableEncryption(PASSWORD)
    legacy = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(PASSWORD)
    )
    plain_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return [
        pkcs12.serialize_key_and_certificates(b"fuzz", key, certificate, None, modern),  # type: ignore[arg-type]
        pkcs12.serialize_key_and_certificates(b"fuzz", key, certificate, None, legacy),  # type: ignore[arg-type]
        pkcs7.serialize_certificates([certificate], serialization.Encoding.DER),
        pkcs7.serialize_certificates([certificate], serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, modern),
        pem + plain_key,
    ]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "set", "cut", "length", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x30, 0x80, 0x81, 0x82, 0x84, 0xA0, 0xFF]))
        elif kind == "cut":
            del data[at:]
        elif kind == "length" and data:  # a DER length octet made long, indefinite or huge
            data[at : at + 1] = draw(st.sampled_from([b"\x80", b"\x84\xff\xff\xff\xff", b"\x00"]))
        elif kind == "splice":
            other = draw(st.sampled_from(seeds()))
            data[at:] = other[draw(st.integers(0, max(len(other) - 1, 0))) :]
    return bytes(data)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("CERTGATE_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=mutated(), password=st.sampled_from([None, PASSWORD, b"wrong", b"\xff\xfe"]))
def test_load_file_answers_every_mutated_file_with_its_content_or_a_certgate_error(
    data: bytes, password: bytes | None
) -> None:
    try:
        loaded = load_file(data, password)
    except CertgateError as error:
        assert str(error) and error.code
    else:
        assert isinstance(loaded, LoadedFile)
        assert loaded.certificates or loaded.private_keys or loaded.requests


def test_the_seeds_load() -> None:
    """The corpora are there (a missing directory would make the fuzzing above vacuous)."""
    loaded = 0
    for seed in seeds():
        try:
            load_file(seed, PASSWORD)
            loaded += 1
        except CertgateError:
            pass  # CRLs are named and refused
    assert len(seeds()) > 30 and loaded > 20
