"""What a certificate says, read once from its DER into a frozen dataclass.

Pages, the CLI and the API show these fields under the guide's names (Issued To, Issued By,
Expiration, Alternative Name(s), Signature Type, Public Key, Authority Info Access...).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from certgate.pki.keys import describe_public_key, public_key_fingerprint
from certgate.pki.names import SubjectAltName, describe_san


@dataclass(frozen=True)
class CertInfo:
    fingerprint_sha256: str
    subject: str  # RFC 4514, most specific first: "CN=..., OU=..., O=..., C=US"
    issuer: str
    issued_to: str  # the subject's Common Name, or the whole subject if it has none
    issued_by: str
    serial: str  # decimal, as the guide shows it
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime
    sans: tuple[SubjectAltName, ...]
    signature_type: str  # "RSA-SHA256", "ECDSA-SHA384", ...
    public_key: str  # "RSA (2048 Bits)"
    public_key_fingerprint: str
    public_key_bits: int
    public_key_algorithm: str  # "RSA", "ECDSA", "DSA", "Ed25519", "Ed448"
    signature_hash: str | None  # "sha256", "sha1"... None for EdDSA
    is_ca: bool
    self_issued: bool  # subject == issuer (a root candidate; signature not checked here)
    subject_key_id: str | None
    authority_key_id: str | None
    authority_info_access: tuple[str, ...]
    subject_name_hash: str  # SHA-256 of the subject's DER: the index issuers are found by
    issuer_name_hash: str
    common_name: str | None
    parse_warnings: tuple[str, ...] = ()


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, lower-case hex: the certificate's identity in the store."""
    return cert.fingerprint(hashes.SHA256()).hex()


def name_hash(name: x509.Name) -> str:
    return hashlib.sha256(name.public_bytes()).hexdigest()


def format_name(name: x509.Name) -> str:
    """RFC 4514 with a space after each comma, the way the guide prints names."""
    return ", ".join(rdn.rfc4514_string() for rdn in reversed(name.rdns))


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def read_certificate(cert: x509.Certificate) -> CertInfo:
    """Read every displayed field. Odd but parseable certificates give warnings, not errors."""
    problems: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        serial = cert.serial_number
    problems.extend(str(w.message) for w in caught)
    if serial <= 0:
        problems.append(f"unusual serial number {serial} (RFC 5280 requires a positive serial)")
    public_key = cert.public_key()
    subject_cn = common_name(cert.subject)
    issuer_cn = common_name(cert.issuer)
    subject_text = format_name(cert.subject)
    issuer_text = format_name(cert.issuer)
    return CertInfo(
        fingerprint_sha256=fingerprint(cert),
        subject=subject_text,
        issuer=issuer_text,
        issued_to=subject_cn or subject_text,
        issued_by=issuer_cn or issuer_text,
        serial=str(serial),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=_read_sans(cert, problems),
        signature_type=_signature_type(cert),
        public_key=describe_public_key(public_key),
        public_key_fingerprint=public_key_fingerprint(public_key),
        public_key_bits=_key_bits(public_key),
        public_key_algorithm=describe_public_key(public_key).split(" ")[0],
        signature_hash=_signature_hash(cert),
        is_ca=_is_ca(cert, problems),
        self_issued=cert.subject == cert.issuer,
        subject_key_id=_subject_key_id(cert, problems),
        authority_key_id=_authority_key_id(cert, problems),
        authority_info_access=_aia(cert, problems),
        subject_name_hash=name_hash(cert.subject),
        issuer_name_hash=name_hash(cert.issuer),
        common_name=subject_cn,
        parse_warnings=tuple(problems),
    )


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier, problems: list[str]) -> object:
    """The extension's value, or None when absent; an unparseable one becomes a warning."""
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension) as error:
        problems.append(f"unreadable extension {oid.dotted_string}: {error}")
        return None


def _read_sans(cert: x509.Certificate, problems: list[str]) -> tuple[SubjectAltName, ...]:
    value = _extension(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME, problems)
    if not isinstance(value, x509.SubjectAlternativeName):
        return ()
    return tuple(describe_san(general_name) for general_name in value)


def _is_ca(cert: x509.Certificate, problems: list[str]) -> bool:
    value = _extension(cert, ExtensionOID.BASIC_CONSTRAINTS, problems)
    if isinstance(value, x509.BasicConstraints):
        return value.ca
    # v1 certificates have no extensions: a self-issued one is a root by tradition.
    return cert.version is x509.Version.v1 and cert.subject == cert.issuer


def _subject_key_id(cert: x509.Certificate, problems: list[str]) -> str | None:
    value = _extension(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER, problems)
    return value.digest.hex() if isinstance(value, x509.SubjectKeyIdentifier) else None


def _authority_key_id(cert: x509.Certificate, problems: list[str]) -> str | None:
    value = _extension(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER, problems)
    if isinstance(value, x509.AuthorityKeyIdentifier) and value.key_identifier is not None:
        return value.key_identifier.hex()
    return None


def _aia(cert: x509.Certificate, problems: list[str]) -> tuple[str, ...]:
    value = _extension(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS, problems)
    if not isinstance(value, x509.AuthorityInformationAccess):
        return ()
    return tuple(
        f"{description.access_method._name}: {description.access_location.value}"
        for description in value
    )


def _key_bits(public_key: object) -> int:
    if isinstance(public_key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        return public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.curve.key_size
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return 256
    if isinstance(public_key, ed448.Ed448PublicKey):
        return 456
    return 0


def _signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except Exception:  # an unknown signature OID: cryptography raises UnsupportedAlgorithm
        return "unknown"
    return algorithm.name if algorithm is not None else None


def _signature_type(cert: x509.Certificate) -> str:
    """The guide's "Signature Type", e.g. RSA-SHA256."""
    name = cert.signature_algorithm_oid._name
    known = {
        "sha1WithRSAEncryption": "RSA-SHA1",
        "sha224WithRSAEncryption": "RSA-SHA224",
        "sha256WithRSAEncryption": "RSA-SHA256",
        "sha384WithRSAEncryption": "RSA-SHA384",
        "sha512WithRSAEncryption": "RSA-SHA512",
        "md5WithRSAEncryption": "RSA-MD5",
        "ecdsa-with-SHA1": "ECDSA-SHA1",
        "ecdsa-with-SHA224": "ECDSA-SHA224",
        "ecdsa-with-SHA256": "ECDSA-SHA256",
        "ecdsa-with-SHA384": "ECDSA-SHA384",
        "ecdsa-with-SHA512": "ECDSA-SHA512",
        "dsa-with-sha1": "DSA-SHA1",
        "dsa-with-sha256": "DSA-SHA256",
        "RSASSA-PSS": "RSA-PSS",
        "ed25519": "Ed25519",
        "ed448": "Ed448",
    }
    return known.get(name, name or cert.signature_algorithm_oid.dotted_string)
