"""A cross-signed intermediate: of its two certificates, the one leading to a stored root is
the leaf's issuer, even when the other one is preferred otherwise (it expires later) and
whatever the order of arrival."""

from __future__ import annotations

import itertools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.service.appliance import Appliance
from certgate.service.certificates import show_certificate
from certgate.service.imports import import_files
from tests.support.pki import issue, name, new_key

_SHA256 = hashes.SHA256()


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.PEM)


def _cross_signed() -> dict[str, x509.Certificate]:
    """Root A (stored) and root B (never imported) both sign intermediate X (one key); the
    copy signed by B expires later, so without lookahead it would be chosen."""
    root_a_key, root_b_key, x_key, leaf_key = (new_key() for _ in range(4))
    root_a = issue(name("Root A"), root_a_key.public_key(), name("Root A"), root_a_key, ca=True)
    x_by_a = issue(name("X"), x_key.public_key(), name("Root A"), root_a_key, ca=True, days=100)
    x_by_b = issue(name("X"), x_key.public_key(), name("Root B"), root_b_key, ca=True, days=900)
    leaf = issue(name("site.example.test"), leaf_key.public_key(), name("X"), x_key, ca=False)
    return {"root_a": root_a, "x_by_a": x_by_a, "x_by_b": x_by_b, "leaf": leaf}


@pytest.mark.parametrize("batches", ["one", "separate"])
def test_the_leaf_chains_to_the_stored_root_through_the_right_twin(
    appliance: Appliance, batches: str
) -> None:
    parts = _cross_signed()
    order = ["x_by_b", "leaf", "x_by_a", "root_a"]
    if batches == "one":
        import_files(appliance, [(f"{key}.pem", _pem(parts[key])) for key in order])
    else:
        for key in order:
            import_files(appliance, [(f"{key}.pem", _pem(parts[key]))])
    leaf = show_certificate(appliance, parts["leaf"].fingerprint(_SHA256).hex())
    assert leaf.chain_subjects == ["CN=X", "CN=Root A"]
    assert "chain-incomplete" not in {warning.code for warning in leaf.warnings}


def test_every_arrival_order_ends_at_the_root(appliance: Appliance) -> None:
    parts = _cross_signed()
    for number, order in enumerate(itertools.permutations(parts)):
        if number % 6:  # a quarter of the 24 orders keeps the test short, all first items
            continue
        import_files(appliance, [(f"{key}.pem", _pem(parts[key])) for key in order])
    leaf = show_certificate(appliance, parts["leaf"].fingerprint(_SHA256).hex())
    assert leaf.chain_subjects == ["CN=X", "CN=Root A"]
