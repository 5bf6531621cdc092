"""Just enough DER reading to tell what kind of object a blob of bytes holds.

cryptography's loaders only say "could not parse"; to tell the user precisely what the file is
(a CRL, a public key, a PKCS#12 file that needs a password...) we look at the outer ASN.1 shape
first. Nothing here decodes more than tags, lengths, small INTEGERs and OIDs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06
ENUMERATED = 0x0A
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
CONTEXT_0 = 0xA0

_MAX_DEPTH = 24
_PKCS7 = "1.2.840.113549.1.7."
_PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2"
_PASSWORD_BASED_ENCRYPTION = ("1.2.840.113549.1.5.", "1.2.840.113549.1.12.1.")
_EC_FIELD_TYPES = ("1.2.840.10045.1.1", "1.2.840.10045.1.2")
_CURVE_ARCS = ("1.2.840.10045.3.", "1.3.132.0.", "1.3.36.3.3.2.8.1.1.")  # X9.62, SEC, Brainpool


class Shape(enum.Enum):
    """What the outer ASN.1 structure says a DER blob is."""

    CERTIFICATE = "certificate"
    REQUEST = "certificate request"
    CRL = "certificate revocation list"
    ATTRIBUTE_CERTIFICATE = "attribute certificate"
    PKCS7 = "PKCS#7 signed data"
    PKCS7_OTHER = "PKCS#7 message of another type"
    PKCS12 = "PKCS#12"
    PKCS8 = "PKCS#8 private key"
    ENCRYPTED_PKCS8 = "encrypted PKCS#8 private key"
    RSA_KEY = "OpenSSL RSA private key"
    EC_KEY = "OpenSSL EC private key"
    DSA_KEY = "OpenSSL DSA private key"
    PUBLIC_KEY = "public key"
    INTEGERS = "a bare sequence of integers (PKCS#1 public key or DSA/DH parameters)"
    EC_PARAMETERS = "EC parameters"
    OCSP_RESPONSE = "OCSP response"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Tlv:
    """One element: its tag octet and where its content lies in the buffer."""

    tag: int
    start: int  # first content octet
    end: int  # one past the last content octet
    after: int  # where the next element starts (differs from end for BER indefinite lengths)


def read_tlv(data: bytes, pos: int, depth: int = 0) -> Tlv | None:
    """Read the element at ``pos``; None if it is malformed or runs past the end of the data."""
    header = _read_header(data, pos)
    if header is None:
        return None
    tag, start, length = header
    if length is not None:
        end = start + length
        return Tlv(tag, start, end, end) if end <= len(data) else None
    if not tag & 0x20 or depth >= _MAX_DEPTH:  # indefinite length is only legal when constructed
        return None
    pos = start
    while data[pos : pos + 2] != b"\x00\x00":
        child = read_tlv(data, pos, depth + 1)
        if child is None:
            return None
        pos = child.after
    return Tlv(tag, start, pos, pos + 2)


def _read_header(data: bytes, pos: int) -> tuple[int, int, int | None] | None:
    """Tag, content offset and length (None = BER indefinite) of the element at ``pos``."""
    if pos + 2 > len(data):
        return None
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:  # high tag number form: skip the continuation octets
        while pos < len(data) and data[pos] & 0x80:
            pos += 1
        pos += 1
    if pos >= len(data):
        return None
    first = data[pos]
    pos += 1
    if first < 0x80:
        return tag, pos, first
    if first == 0x80:
        return tag, pos, None
    count = first & 0x7F
    if count > 4 or pos + count > len(data):
        return None
    return tag, pos + count, int.from_bytes(data[pos : pos + count], "big")


def children(data: bytes, parent: Tlv, limit: int = 12) -> list[Tlv] | None:
    """The first ``limit`` elements inside a constructed element; None if any is malformed."""
    result: list[Tlv] = []
    pos = parent.start
    while pos < parent.end and len(result) < limit:
        child = read_tlv(data, pos)
        if child is None or child.after > parent.end:
            return None
        result.append(child)
        pos = child.after
    return result


def small_int(data: bytes, tlv: Tlv) -> int | None:
    """The value of a short INTEGER (versions), or None if it is not one."""
    if tlv.tag != INTEGER or not 0 < tlv.end - tlv.start <= 8:
        return None
    return int.from_bytes(data[tlv.start : tlv.end], "big", signed=True)


def oid(data: bytes, tlv: Tlv) -> str:
    """Dotted form of an OBJECT IDENTIFIER; empty string if it is not one."""
    if tlv.tag != OID or tlv.end == tlv.start:
        return ""
    arcs: list[int] = []
    value = 0
    for octet in data[tlv.start : tlv.end]:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return ""
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


class CertificateParts(NamedTuple):
    """Byte ranges of a DER certificate, as found without asking cryptography."""

    tbs: bytes  # the signed part
    issuer: bytes  # the issuer Name, whole element
    subject: bytes  # the subject Name, whole element


def certificate_parts(data: bytes) -> CertificateParts | None:
    """The TBS part and the issuer and subject names (whole elements) of a DER certificate,
    or None if it is not shaped like one. cryptography re-encodes the TBS part each time it
    is asked for it, and builds the names' Python objects to compare them: a bundle names a
    few issuers thousands of times, so their bytes tell which were read already, and which
    certificate names which as its issuer before anything else is read."""
    try:
        tbs_start, _ = _definite(data, 0, SEQUENCE)
        pos, tbs_end = _definite(data, tbs_start, SEQUENCE)
        before_issuer = (CONTEXT_0, INTEGER, SEQUENCE)  # [0] version, serial, algorithm
        for tag in before_issuer if data[pos] == CONTEXT_0 else before_issuer[1:]:
            pos = _definite(data, pos, tag)[1]
        issuer_end = _definite(data, pos, SEQUENCE)[1]
        subject_start = _definite(data, issuer_end, SEQUENCE)[1]  # after the validity
        subject_end = _definite(data, subject_start, SEQUENCE)[1]
    except (IndexError, ValueError):
        return None
    if subject_end > tbs_end or tbs_end > len(data):
        return None
    return CertificateParts(
        data[tbs_start:tbs_end], data[pos:issuer_end], data[subject_start:subject_end]
    )


def _definite(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """Content start and end of the element at ``pos``, which must have this one-octet tag
    and a definite length (as DER always has); the lean reader for :func:`certificate_parts`."""
    if data[pos] != tag:
        raise ValueError("unexpected tag")
    first = data[pos + 1]
    if first < 0x80:
        return pos + 2, pos + 2 + first
    count = first & 0x7F
    if not 0 < count <= 4:
        raise ValueError("unsupported length")
    start = pos + 2 + count
    return start, start + int.from_bytes(data[pos + 2 : start], "big")


def outer_end(data: bytes) -> int | None:
    """Where the outermost element ends, or None if it is malformed or cut short."""
    tlv = read_tlv(data, 0)
    return tlv.after if tlv is not None else None


def looks_truncated(data: bytes) -> bool:
    """True when the data starts like a DER structure but declares more bytes than it has."""
    header = _read_header(data, 0)
    if header is None or header[0] != SEQUENCE:
        return False
    _, start, length = header
    inner = _read_header(data, start)
    plausible_start = inner is not None and inner[0] in (SEQUENCE, INTEGER, OID)
    return plausible_start and (length is None or start + length > len(data))


def sniff(data: bytes) -> Shape:
    """Classify a DER blob by its outer structure alone."""
    outer = read_tlv(data, 0)
    if outer is None:
        return Shape.UNKNOWN
    if outer.tag == OID:  # a named curve on its own, as `openssl ecparam -outform DER` writes
        return Shape.EC_PARAMETERS if oid(data, outer).startswith(_CURVE_ARCS) else Shape.UNKNOWN
    kids = children(data, outer) if outer.tag == SEQUENCE else None
    if not kids:
        return Shape.UNKNOWN
    tags = tuple(kid.tag for kid in kids)
    if tags == (SEQUENCE, SEQUENCE, BIT_STRING):
        return _signed_shape(data, kids[0])
    return _envelope_shape(data, kids, tags) or _key_shape(data, kids, tags) or Shape.UNKNOWN


def _first_oid(data: bytes, tlv: Tlv) -> str:
    kids = children(data, tlv, limit=1) if tlv.tag == SEQUENCE else None
    return oid(data, kids[0]) if kids else ""


def _envelope_shape(data: bytes, kids: list[Tlv], tags: tuple[int, ...]) -> Shape | None:
    """PKCS#12 PFX (version 3 + ContentInfo), a PKCS#7/CMS ContentInfo or an OCSP response."""
    if tags[0] == ENUMERATED:
        return Shape.OCSP_RESPONSE  # responseStatus
    version = small_int(data, kids[0])
    if (
        tags[:2] == (INTEGER, SEQUENCE)
        and version == 3
        and _first_oid(data, kids[1]).startswith(_PKCS7)
    ):
        return Shape.PKCS12
    content_type = oid(data, kids[0])
    if content_type == _PKCS7_SIGNED_DATA:
        return Shape.PKCS7
    if content_type.startswith((_PKCS7, "1.2.840.113549.1.9.16.1.")):
        return Shape.PKCS7_OTHER
    return None


def _key_shape(data: bytes, kids: list[Tlv], tags: tuple[int, ...]) -> Shape | None:
    """Private keys, public keys and domain parameters."""
    if tags == (SEQUENCE, OCTET_STRING):
        if _first_oid(data, kids[0]).startswith(_PASSWORD_BASED_ENCRYPTION):
            return Shape.ENCRYPTED_PKCS8
        return None
    if tags == (SEQUENCE, BIT_STRING):
        return Shape.PUBLIC_KEY
    if tags[:3] == (INTEGER, SEQUENCE, OCTET_STRING):
        return Shape.PKCS8
    version = small_int(data, kids[0])
    if tags[:2] == (INTEGER, OCTET_STRING) and version == 1:
        return Shape.EC_KEY
    if tags[:2] == (INTEGER, SEQUENCE) and version == 1:
        return Shape.EC_PARAMETERS if _first_oid(data, kids[1]) in _EC_FIELD_TYPES else None
    if all(tag == INTEGER for tag in tags):
        if len(tags) >= 9 and version in (0, 1):
            return Shape.RSA_KEY
        if len(tags) == 6 and version == 0:
            return Shape.DSA_KEY
        return Shape.INTEGERS
    return None


def _signed_shape(data: bytes, tbs: Tlv) -> Shape:
    """Certificate, request, CRL or attribute certificate: tell them apart by their TBS part."""
    parts = children(data, tbs, limit=4) or []
    tags = [part.tag for part in parts]
    if tags[:1] == [CONTEXT_0]:
        return Shape.CERTIFICATE  # the explicit version of a v2/v3 certificate
    if UTC_TIME in tags[2:4] or GENERALIZED_TIME in tags[2:4]:
        return Shape.CRL  # thisUpdate follows the signature algorithm and issuer
    if len(tags) == 4 and tags[0] == INTEGER and tags[3] == CONTEXT_0:
        return Shape.REQUEST  # version, subject, public key, [0] attributes
    if len(tags) >= 3 and tags[0] == INTEGER and tags[2] == CONTEXT_0:
        return Shape.ATTRIBUTE_CERTIFICATE  # version, holder, [0] v2Form issuer
    return Shape.CERTIFICATE
