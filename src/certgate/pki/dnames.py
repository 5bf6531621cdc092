"""Distinguished names as certgate shows and compares them.

The text is RFC 4514 with a space after each comma (the guide's "Issued To"/"Issued By"); the
comparison is RFC 5280's (7.1), by a hash issuers are found by. Each distinct attribute is
worked out once: a bundle repeats its country and organisation in every name, and escaping
them was most of the cost of reading a name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class NameFields:
    """What certgate keeps of a name: its text, common name and comparison hash."""

    text: str
    common_name: str | None
    hash: str


def read_name(name: x509.Name) -> NameFields:
    """The three fields in one pass over the attributes."""
    texts: list[str] = []
    rdns: list[list[_Attribute]] = []
    common: str | None = None
    for rdn in name.rdns:
        attributes = []
        for attribute in rdn:
            attributes.append(_attribute(attribute))
            if common is None and attribute.oid == NameOID.COMMON_NAME:
                common = _text(attribute.value)
        texts.append("+".join(found.text for found in attributes))
        rdns.append(attributes)
    return NameFields(", ".join(reversed(texts)), common, _hash(rdns))


def format_name(name: x509.Name) -> str:
    """RFC 4514 with a space after each comma, the way the guide prints names."""
    return ", ".join(
        "+".join(_attribute(attribute).text for attribute in rdn) for rdn in reversed(name.rdns)
    )


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return _text(values[0].value) if values else None


def name_hash(name: x509.Name) -> str:
    """SHA-256 of the name in the form RFC 5280 (7.1) compares names in: string values
    case-folded, white space trimmed and collapsed, the string type ignored. CAs do issue
    certificates whose issuer is "GOOD CA" or a UTF8String for their PrintableString
    "Good CA", and clients (OpenSSL's canonical encoding) accept them; issuers are found
    by this hash, so an exact DER hash would leave those chains incomplete."""
    return _hash([[_attribute(attribute) for attribute in rdn] for rdn in name.rdns])


def names_match(one: x509.Name, other: x509.Name) -> bool:
    return name_hash(one) == name_hash(other)


@dataclass(frozen=True)
class _Attribute:
    text: str  # RFC 4514, as cryptography writes it
    key: tuple[str, str, str]  # (OID, "text" or "bytes", canonical value): how RFC 5280 compares
    key_json: str  # json.dumps(key)


_ATTRIBUTES: dict[tuple[x509.ObjectIdentifier, str | bytes], _Attribute] = {}
_MAX_ATTRIBUTES = 4096


def _attribute(attribute: x509.NameAttribute[str | bytes]) -> _Attribute:
    """The attribute's text and comparison key, worked out once per (OID, value)."""
    lookup = (attribute.oid, attribute.value)
    found = _ATTRIBUTES.get(lookup)
    if found is None:
        if len(_ATTRIBUTES) >= _MAX_ATTRIBUTES:
            _ATTRIBUTES.clear()
        key = (attribute.oid.dotted_string, *_canonical_value(attribute.value))
        found = _ATTRIBUTES[lookup] = _Attribute(attribute.rfc4514_string(), key, json.dumps(key))
    return found


def _canonical_value(value: str | bytes) -> tuple[str, str]:
    if isinstance(value, bytes):  # x500UniqueIdentifier and the like: compared as bytes
        return "bytes", value.hex()
    return "text", " ".join(value.split()).casefold()


def _hash(rdns: list[list[_Attribute]]) -> str:
    """SHA-256 of ``json.dumps`` of the RDNs' sorted keys, joined from each key's JSON (the
    same text: a list's JSON is its items' JSON joined by ", " in brackets)."""
    canonical = ", ".join(
        "[" + ", ".join(found.key_json for found in sorted(rdn, key=_by_key)) + "]" for rdn in rdns
    )
    return hashlib.sha256(f"[{canonical}]".encode()).hexdigest()


def _by_key(found: _Attribute) -> tuple[str, str, str]:
    return found.key


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
