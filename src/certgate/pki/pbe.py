"""The work a password-protected file asks for, bounded before any of it is done.

A PKCS#12 file or an encrypted PKCS#8 key names its own iteration counts (the MAC's, and
each PBE/PBES2 key derivation's), up to 2^31. cryptography derives keys holding the GIL,
so a 1 KB file claiming 200 million iterations froze every page and API call for 29 s.
Files met in practice use 2,000 (Windows), 2,048 (OpenSSL), 10,000 (Java) and up to
600,000 (OWASP's 2023 advice for PBKDF2-SHA256); :data:`MAX_ITERATIONS` is well above
them all while one derivation at the bound costs ~0.15 s here (1 million PBKDF2-SHA256
rounds; a count of 10 million would stall everything else for 1.5 s per derivation).

What is visible without the password is checked: the MAC, every encrypted content's and
every shrouded key bag's algorithm, and an encrypted PKCS#8 key's. A key bag inside an
encrypted content is only seen by the library once that content is decrypted.

The same walk finds a PFX's visible key bags (:func:`pkcs12_key_bags`): the library returns
only the first key of a file that holds several.
"""

from __future__ import annotations

from collections.abc import Iterator

from certgate.errors import ExcessiveWorkError
from certgate.pki import der
from certgate.pki.der import Tlv

#: The largest iteration count accepted for one key derivation (MAC, PBES1, PBKDF2).
MAX_ITERATIONS = 1_000_000
#: The most iterations one file may ask for in total (a MAC and two encryptions at the bound).
MAX_FILE_ITERATIONS = 3 * MAX_ITERATIONS
#: scrypt: the largest N * r * p (OpenSSL's defaults are 16384 * 8 * 1).
MAX_SCRYPT_WORK = 1 << 20

_PKCS12_PBE = "1.2.840.113549.1.12.1."  # pbeWithSHAAnd3-KeyTripleDES-CBC and its siblings
_PBES1 = frozenset(f"1.2.840.113549.1.5.{n}" for n in (1, 3, 4, 6, 10, 11))
_PBKDF2 = "1.2.840.113549.1.5.12"
_SCRYPT = "1.3.6.1.4.1.11591.4.11"
_DATA = "1.2.840.113549.1.7.1"
_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_KEY_BAG = "1.2.840.113549.1.12.10.1.1"
_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
_SAFE_CONTENTS_BAG = "1.2.840.113549.1.12.10.1.6"
_CONSTRUCTED_OCTET_STRING = 0x24
_MAX_NESTING = 8
_TOO_BIG = 1 << 63  # stands for an INTEGER too long to be a plausible count


def check_pkcs12(data: bytes, spent: int = 0) -> int:
    """Refuse a PFX (its outer structure already recognised) whose counts are absurd.
    ``spent``: what the file's objects before it asked for; returns the file's total."""
    counts = list(_pkcs12_counts(data))
    return _check(counts, "PKCS#12 file", spent)


def check_encrypted_pkcs8(data: bytes, spent: int = 0) -> int:
    """Refuse an EncryptedPrivateKeyInfo whose key derivation asks too much (``spent``: as
    for :func:`check_pkcs12`; a PEM file holds many)."""
    outer = der.read_tlv(data, 0)
    kids = der.children(data, outer, limit=2) if outer is not None else None
    counts = list(_algorithm_counts(data, kids[0])) if kids else []
    return _check(counts, "encrypted private key", spent)


def _check(counts: list[int], what: str, spent: int) -> int:
    for count in counts:
        if count > MAX_ITERATIONS:
            shown = "more than 2^63" if count >= _TOO_BIG else f"{count:,}"
            raise ExcessiveWorkError(
                f"the {what} asks for {shown} key derivation iterations; certgate accepts up "
                f"to {MAX_ITERATIONS:,} (files are usually made with 2,048 to 600,000): "
                "export it again with a usual iteration count"
            )
    total = spent + sum(counts)
    if total > MAX_FILE_ITERATIONS:
        asking = f"the {what} asks" if not spent else "the file's encrypted objects ask"
        raise ExcessiveWorkError(
            f"{asking} for {total:,} key derivation iterations in all; certgate "
            f"accepts up to {MAX_FILE_ITERATIONS:,} per file"
        )
    return total


def pkcs12_key_bags(data: bytes) -> list[tuple[bytes, bool]]:
    """Each key bag in a PFX's unencrypted contents: (its PKCS#8 DER, True when encrypted)."""
    bags = []
    for contents in _data_contents(data):
        for kind, bag_data, wrapper, value in _bags(contents, der.read_tlv(contents, 0), 0):
            if kind in (_KEY_BAG, _SHROUDED_KEY_BAG):
                bags.append((bag_data[wrapper.start : value.after], kind == _SHROUDED_KEY_BAG))
    return bags


def _data_contents(data: bytes) -> Iterator[bytes]:
    """The SafeContents of each unencrypted ContentInfo of a PFX's AuthenticatedSafe."""
    outer = der.read_tlv(data, 0)
    kids = der.children(data, outer, limit=3) if outer is not None else None
    safe = _content_info(data, kids[1]) if kids and len(kids) >= 2 else None
    if safe is None:
        return
    for info in _elements(safe, der.read_tlv(safe, 0)):
        kinds = der.children(safe, info, limit=1) if info.tag == der.SEQUENCE else None
        if kinds and der.oid(safe, kinds[0]) == _DATA:
            contents = _content_info(safe, info)
            if contents is not None:
                yield contents


def _pkcs12_counts(data: bytes) -> Iterator[int]:
    """PFX ::= SEQUENCE { version, authSafe ContentInfo, macData MacData OPTIONAL }."""
    outer = der.read_tlv(data, 0)
    kids = der.children(data, outer, limit=3) if outer is not None else None
    if not kids or len(kids) < 2:
        return
    if len(kids) == 3:  # MacData ::= SEQUENCE { DigestInfo, macSalt, iterations DEFAULT 1 }
        mac = der.children(data, kids[2], limit=3) or []
        if len(mac) == 3:
            yield _count(data, mac[2])
        digest = der.children(data, mac[0], limit=1) if mac else None
        if digest:  # PBMAC1 (RFC 9579) names PBKDF2 in the DigestInfo's algorithm
            yield from _algorithm_counts(data, digest[0])
    content = _content_info(data, kids[1])
    if content is not None:
        yield from _authenticated_safe(content)


def _content_info(data: bytes, tlv: Tlv) -> bytes | None:
    """The octets of a ContentInfo of type data: SEQUENCE { OID, [0] { OCTET STRING } }."""
    kids = der.children(data, tlv, limit=2) if tlv.tag == der.SEQUENCE else None
    if not kids or len(kids) != 2 or der.oid(data, kids[0]) != _DATA:
        return None
    inner = der.children(data, kids[1], limit=1)
    return _octets(data, inner[0]) if inner else None


def _octets(data: bytes, tlv: Tlv) -> bytes | None:
    """An OCTET STRING's content; BER's constructed form (chunks) joined."""
    if tlv.tag == der.OCTET_STRING:
        return data[tlv.start : tlv.end]
    if tlv.tag != _CONSTRUCTED_OCTET_STRING:
        return None
    chunks = der.children(data, tlv, limit=1 << 16) or []
    return b"".join(data[c.start : c.end] for c in chunks if c.tag == der.OCTET_STRING)


def _authenticated_safe(data: bytes) -> Iterator[int]:
    """AuthenticatedSafe ::= SEQUENCE OF ContentInfo (data, or encryptedData)."""
    outer = der.read_tlv(data, 0)
    for info in _elements(data, outer):
        kids = der.children(data, info, limit=2) if info.tag == der.SEQUENCE else None
        if not kids or len(kids) != 2:
            continue
        kind = der.oid(data, kids[0])
        if kind == _DATA:
            contents = _content_info(data, info)
            if contents is not None:
                yield from _safe_contents(contents, der.read_tlv(contents, 0), 0)
        elif kind == _ENCRYPTED_DATA:  # [0] { SEQUENCE { version, EncryptedContentInfo } }
            wrapper = der.children(data, kids[1], limit=1) or []
            encrypted = der.children(data, wrapper[0], limit=2) if wrapper else None
            if encrypted and len(encrypted) == 2:  # { contentType, algorithm, [0] content }
                parts = der.children(data, encrypted[1], limit=2) or []
                if len(parts) == 2:
                    yield from _algorithm_counts(data, parts[1])


def _safe_contents(data: bytes, outer: Tlv | None, depth: int) -> Iterator[int]:
    for kind, _, _, value in _bags(data, outer, depth):
        if kind == _SHROUDED_KEY_BAG:  # EncryptedPrivateKeyInfo
            info = der.children(data, value, limit=1) or []
            if info:
                yield from _algorithm_counts(data, info[0])


def _bags(data: bytes, outer: Tlv | None, depth: int) -> Iterator[tuple[str, bytes, Tlv, Tlv]]:
    """SafeContents ::= SEQUENCE OF SafeBag { bagId, [0] bagValue, attributes }: each bag's
    kind, the buffer, its [0] wrapper and the value in it, nested SafeContents bags opened."""
    if depth > _MAX_NESTING:
        return
    for bag in _elements(data, outer):
        kids = der.children(data, bag, limit=2) if bag.tag == der.SEQUENCE else None
        if not kids or len(kids) != 2:
            continue
        kind = der.oid(data, kids[0])
        value = der.children(data, kids[1], limit=1) or []
        if kind == _SAFE_CONTENTS_BAG and value:
            yield from _bags(data, value[0], depth + 1)
        elif value:
            yield kind, data, kids[1], value[0]


def _elements(data: bytes, outer: Tlv | None) -> list[Tlv]:
    if outer is None or outer.tag != der.SEQUENCE:
        return []
    return der.children(data, outer, limit=1 << 16) or []


def _algorithm_counts(data: bytes, algorithm: Tlv, depth: int = 0) -> Iterator[int]:
    """The iteration counts an AlgorithmIdentifier asks for (PBES1, PKCS#12 PBE, PBES2 with
    PBKDF2 or scrypt, PBMAC1), found in its parameters however they nest."""
    kids = der.children(data, algorithm, limit=2) if algorithm.tag == der.SEQUENCE else None
    if not kids or depth > _MAX_NESTING:
        return
    name = der.oid(data, kids[0])
    constructed = len(kids) == 2 and kids[1].tag & 0x20
    parameters = der.children(data, kids[1], limit=5) if constructed else None
    if not name or not parameters:
        return
    if name.startswith(_PKCS12_PBE) or name in _PBES1 or name == _PBKDF2:
        if len(parameters) >= 2:  # { salt, iterationCount, (PBKDF2: keyLength, prf) }
            yield _count(data, parameters[1])
    elif name == _SCRYPT:  # { salt, costParameter, blockSize, parallelizationParameter, ... }
        if len(parameters) >= 4:
            cost, block, parallel = (_count(data, p) for p in parameters[1:4])
            work = cost * block * parallel
            yield 0 if work <= MAX_SCRYPT_WORK else _TOO_BIG
    else:  # PBES2 { keyDerivationFunc, encryptionScheme }, PBMAC1 { kdf, mac }
        for parameter in parameters:
            yield from _algorithm_counts(data, parameter, depth + 1)


def _count(data: bytes, tlv: Tlv) -> int:
    """A non-negative INTEGER's value (0 for anything else: the library refuses those)."""
    if tlv.tag != der.INTEGER or tlv.end == tlv.start:
        return 0
    if tlv.end - tlv.start > 8:
        return 0 if data[tlv.start] & 0x80 else _TOO_BIG
    return max(int.from_bytes(data[tlv.start : tlv.end], "big", signed=True), 0)
