"""Who issued whom: the issuer certgate links a certificate to is the one whose key really
signed it, preferring the CA's current certificate; chains are walked nearest first, and a
loop or an absurd depth ends the walk (pki/chain.py)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from certgate.pki.certinfo import CertInfo, read_certificate
from certgate.pki.chain import (
    MAX_CHAIN_DEPTH,
    Role,
    choose_issuer,
    role_of,
    signed_by,
    walk_chain,
)
from tests.support.pki import TestCA, issue, make_chain, name, new_key

CHAIN = make_chain("www.example.com")


def _described(certificate: x509.Certificate) -> tuple[x509.Certificate, CertInfo]:
    return certificate, read_certificate(certificate)


def test_the_guides_three_roles() -> None:
    assert role_of(read_certificate(CHAIN.leaf)) is Role.SERVER
    assert role_of(read_certificate(CHAIN.intermediate)) is Role.INTERMEDIATE
    assert role_of(read_certificate(CHAIN.root)) is Role.ROOT


def test_an_issuer_is_the_one_whose_key_signed_not_just_one_with_the_right_name() -> None:
    impostor = TestCA.make(intermediate_name="Test Intermediate")  # same name, other key
    assert signed_by(CHAIN.leaf, CHAIN.intermediate)
    assert not signed_by(CHAIN.leaf, impostor.intermediate)
    assert not signed_by(CHAIN.leaf, CHAIN.root)  # right key family, wrong name
    chosen = choose_issuer(
        CHAIN.leaf,
        read_certificate(CHAIN.leaf),
        [impostor.intermediate, CHAIN.intermediate],
        _described,
    )
    assert chosen is CHAIN.intermediate
    assert (
        choose_issuer(CHAIN.leaf, read_certificate(CHAIN.leaf), [impostor.intermediate], _described)
        is None
    )


def test_an_issuer_named_in_other_case_is_still_found() -> None:
    ca_key = new_key()
    ca = issue(name("Good CA"), ca_key.public_key(), name("Good CA"), ca_key, ca=True)
    leaf = issue(
        name("shop.example.com"), new_key().public_key(), name("GOOD CA"), ca_key, ca=False
    )
    assert signed_by(leaf, ca)


def test_of_two_certificates_of_the_same_ca_key_the_one_that_expires_last_is_chosen() -> None:
    """A CA re-issues its intermediate with the same key: the leaf links to the current one."""
    key, root = CHAIN.intermediate_key, CHAIN.root
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    older, newer = (
        issue(
            CHAIN.intermediate.subject,
            key.public_key(),
            root.subject,
            CHAIN.root_key,
            ca=True,
            not_before=start,
            days=days,
        )
        for days in (100, 900)
    )
    leaf_info = read_certificate(CHAIN.leaf)
    assert choose_issuer(CHAIN.leaf, leaf_info, [older, newer], _described) is newer
    assert choose_issuer(CHAIN.leaf, leaf_info, [newer, older], _described) is newer


def test_a_certificate_is_never_its_own_issuer_candidate() -> None:
    root_info = read_certificate(CHAIN.root)
    assert choose_issuer(CHAIN.root, root_info, [CHAIN.root], _described) is None


def test_a_chain_is_walked_nearest_issuer_first_to_the_root() -> None:
    issuer = {"leaf": "intermediate", "intermediate": "root", "root": None}
    assert walk_chain("leaf", issuer.get) == ["intermediate", "root"]
    assert walk_chain("root", issuer.get) == []


def test_a_loop_ends_the_walk_and_a_chain_is_never_longer_than_the_bound() -> None:
    loop = {"a": "b", "b": "c", "c": "a"}
    assert walk_chain("a", loop.get) == ["b", "c"]
    endless = walk_chain(0, lambda n: n + 1)
    assert len(endless) == MAX_CHAIN_DEPTH - 1 and endless[0] == 1
