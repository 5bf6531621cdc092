"""Who issued whom: issuer selection confirmed by signature, chain walking, roles.

The store keeps, per certificate, the issuer this module chose (a cached signature check), so
building a chain on read is a walk along those links with a depth bound and loop check.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from certgate.pki.certinfo import CertInfo, signature_verifies
from certgate.pki.dnames import names_match

#: Longest chain, the certificate itself included; real chains are 2-5 long, longer is a
#: loop or an attack.
MAX_CHAIN_DEPTH = 16
#: Most issuer candidates checked by signature for one certificate (bounds pathological input).
MAX_SIGNATURE_CHECKS = 16


class Role(enum.StrEnum):
    """How the guide tells the parts of a chain apart."""

    SERVER = "server"
    INTERMEDIATE = "intermediate"
    ROOT = "root"


#: SAN types that name a server a client connects to.
_SERVER_NAME_TYPES = frozenset({"dNSName", "iPAddress"})


def role_of(info: CertInfo, *, has_private_key: bool = False) -> Role:
    """The role an administrator would give it. ``openssl req -x509`` marks every self-signed
    certificate CA:TRUE; one with its private key and server names is a server certificate
    (it can be assigned, and warned about as self-signed), not a root."""
    if not info.is_ca:
        return Role.SERVER
    if not info.self_signed:
        return Role.INTERMEDIATE
    if has_private_key and any(san.type in _SERVER_NAME_TYPES for san in info.sans):
        return Role.SERVER
    return Role.ROOT


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key issued ``cert`` (signature verified).

    Names match as RFC 5280 compares them (case and white space do not count).
    """
    if not names_match(cert.issuer, issuer.subject):
        return False
    return issued_by_key(cert, issuer)


Candidate = TypeVar("Candidate")


#: Signature checks made already, elsewhere: whether the certificate with the first
#: fingerprint was signed by the one with the second (None: not known).
KnownSignatures = Callable[[str, str], bool | None]


def choose_issuer(
    cert: x509.Certificate,
    info: CertInfo,
    candidates: Iterable[Candidate],
    describe: Callable[[Candidate], tuple[x509.Certificate, CertInfo]],
    tbs: bytes | None = None,
    known: KnownSignatures | None = None,
) -> Candidate | None:
    """Pick the issuer of ``cert`` among ``candidates`` (already matched by issuer name);
    ``tbs``: its signed part, when the caller has it; ``known``: checks made already.

    Candidates whose subject key id matches the authority key id, that are CAs, that are not
    key rollover certificates (self-issued, signed by another key: preferring the CA's own
    certificate keeps chains short and out of rollover loops) and that expire last are tried
    first; at most MAX_SIGNATURE_CHECKS signatures are checked.
    """

    def preference(candidate: Candidate) -> tuple[bool, bool, bool, float]:
        _, candidate_info = describe(candidate)
        key_id_match = (
            info.authority_key_id is None
            or candidate_info.subject_key_id is None
            or info.authority_key_id == candidate_info.subject_key_id
        )
        rollover = candidate_info.self_issued and not candidate_info.self_signed
        return (
            not key_id_match,
            not candidate_info.is_ca,
            rollover,
            -candidate_info.not_after.timestamp(),
        )

    ranked = [c for c in candidates if describe(c)[1].fingerprint_sha256 != info.fingerprint_sha256]
    if len(ranked) > 1:  # the usual single candidate needs no ranking
        ranked.sort(key=preference)
    for candidate in ranked[:MAX_SIGNATURE_CHECKS]:
        if _issued(cert, info, *describe(candidate), tbs, known):
            return candidate
    return None


def _issued(
    cert: x509.Certificate,
    info: CertInfo,
    issuer: x509.Certificate,
    issuer_info: CertInfo,
    tbs: bytes | None,
    known: KnownSignatures | None,
) -> bool:
    """:func:`signed_by`, with the names compared by the hashes already read (hashing both
    names again cost as much as a fifth of the signature check)."""
    if info.issuer_name_hash != issuer_info.subject_name_hash:
        return False
    if known is not None:
        answer = known(info.fingerprint_sha256, issuer_info.fingerprint_sha256)
        if answer is not None:
            return answer
    return issued_by_key(cert, issuer, tbs)


def order_chain(
    cert: x509.Certificate, given: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """``given`` arranged nearest issuer first above ``cert``, as far as the signatures link
    them (each checked); the certificates left out signed nothing of the walk. The guide's
    screenshots list a chain root first, a CA's download may hold it in any order."""
    remaining = list(given)
    ordered: list[x509.Certificate] = []
    previous = cert
    while remaining:
        found = next((c for c in remaining if signed_by(previous, c)), None)
        if found is None:
            break
        ordered.append(found)
        remaining.remove(found)
        previous = found
    return ordered


def issued_by_key(
    cert: x509.Certificate, issuer: x509.Certificate, tbs: bytes | None = None
) -> bool:
    """Whether ``issuer``'s key made ``cert``'s signature (names are not compared)."""
    try:
        public_key = issuer.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return False
    return signature_verifies(cert, public_key, tbs)


Node = TypeVar("Node", bound=Hashable)


def walk_chain(start: Node, issuer_of: Callable[[Node], Node | None]) -> list[Node]:
    """The issuers above ``start``, nearest first, stopping at a root, a loop or the bound
    (``start`` and its issuers are at most MAX_CHAIN_DEPTH certificates)."""
    chain: list[Node] = []
    seen: set[Node] = {start}
    current = issuer_of(start)
    while current is not None and len(chain) < MAX_CHAIN_DEPTH - 1 and current not in seen:
        chain.append(current)
        seen.add(current)
        current = issuer_of(current)
    return chain
