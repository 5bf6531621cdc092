"""What a certificate says, read once from its DER into a frozen dataclass.

Pages, the CLI and the API show these fields under the guide's names (Issued To, Issued By,
Expiration, Alternative Name(s), Signature Type, Public Key, Authority Info Access...).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtensionOID, NameOID

from certgate.pki import der
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
    self_issued: bool  # subject matches issuer (a root, or a CA's key rollover certificate)
    subject_key_id: str | None
    authority_key_id: str | None
    authority_info_access: tuple[str, ...]
    subject_name_hash: str  # SHA-256 of the subject's DER: the index issuers are found by
    issuer_name_hash: str
    common_name: str | None
    parse_warnings: tuple[str, ...] = ()
    #: Self-issued and signed by its own key: a root. A self-issued certificate signed by
    #: another key (a CA's key rollover) is an intermediate and still has an issuer to find.
    self_signed: bool = False


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, lower-case hex: the certificate's identity in the store."""
    return cert.fingerprint(hashes.SHA256()).hex()


def name_hash(name: x509.Name) -> str:
    """SHA-256 of the name in the form RFC 5280 (7.1) compares names in: string values
    case-folded, white space trimmed and collapsed, the string type ignored. CAs do issue
    certificates whose issuer is "GOOD CA" or a UTF8String for their PrintableString
    "Good CA", and clients (OpenSSL's canonical encoding) accept them; issuers are found
    by this hash, so an exact DER hash would leave those chains incomplete."""
    canonical = [
        sorted(
            [attribute.oid.dotted_string, *_canonical_value(attribute.value)] for attribute in rdn
        )
        for rdn in name.rdns
    ]
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def _canonical_value(value: str | bytes) -> tuple[str, str]:
    if isinstance(value, bytes):  # x500UniqueIdentifier and the like: compared as bytes
        return "bytes", value.hex()
    return "text", " ".join(value.split()).casefold()


def names_match(one: x509.Name, other: x509.Name) -> bool:
    return name_hash(one) == name_hash(other)


def signature_verifies(cert: x509.Certificate, public_key: CertificatePublicKeyTypes) -> bool:
    """True when ``public_key`` made ``cert``'s signature.

    Names are not compared here (cryptography's ``verify_directly_issued_by`` wants them
    byte-identical, which RFC 5280 does not); DSA signatures are checked too.
    """
    signature, tbs = cert.signature, cert.tbs_certificate_bytes
    try:
        parameters = cert.signature_algorithm_parameters
        algorithm = cert.signature_hash_algorithm
        if isinstance(public_key, rsa.RSAPublicKey) and isinstance(
            parameters, padding.PKCS1v15 | padding.PSS
        ):
            if algorithm is None:
                return False
            public_key.verify(signature, tbs, parameters, algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(parameters, ec.ECDSA):
            public_key.verify(signature, tbs, parameters)
        elif isinstance(public_key, dsa.DSAPublicKey) and algorithm is not None:
            public_key.verify(signature, tbs, algorithm)
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, tbs)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


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
    public_key = _public_key(cert, problems)
    subject = _read_name(cert.subject)
    issuer = _read_issuer_name(cert.issuer)
    self_issued = subject.hash == issuer.hash  # names_match(subject, issuer)
    description = describe_public_key(public_key) if public_key else "unreadable public key"
    return CertInfo(
        fingerprint_sha256=fingerprint(cert),
        subject=subject.text,
        issuer=issuer.text,
        issued_to=subject.common_name or subject.text,
        issued_by=issuer.common_name or issuer.text,
        serial=str(serial),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=_read_sans(cert, problems),
        signature_type=_signature_type(cert),
        public_key=description,
        public_key_fingerprint=_spki_fingerprint(cert, public_key),
        public_key_bits=_key_bits(public_key),
        public_key_algorithm=description.split(" ")[0] if public_key else "unknown",
        signature_hash=_signature_hash(cert),
        is_ca=_is_ca(cert, problems),
        self_issued=self_issued,
        subject_key_id=_subject_key_id(cert, problems),
        authority_key_id=_authority_key_id(cert, problems),
        authority_info_access=_aia(cert, problems),
        subject_name_hash=subject.hash,
        issuer_name_hash=issuer.hash,
        common_name=subject.common_name,
        parse_warnings=tuple(problems),
        self_signed=self_issued and public_key is not None and signature_verifies(cert, public_key),
    )


@dataclass(frozen=True)
class _NameFields:
    text: str
    common_name: str | None
    hash: str


def _read_name(name: x509.Name) -> _NameFields:
    return _NameFields(format_name(name), common_name(name), name_hash(name))


#: A bundle names a few issuers thousands of times; their text and hash are worked out once
#: (equal Names give equal fields; a Name hashes and compares in well under a microsecond).
_read_issuer_name = functools.lru_cache(maxsize=1024)(_read_name)


def _public_key(cert: x509.Certificate, problems: list[str]) -> CertificatePublicKeyTypes | None:
    """The public key, or None when cryptography cannot read it (explicit curve parameters,
    inherited DSA parameters, a damaged key): the certificate is still shown and chained."""
    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as error:
        problems.append(f"the public key cannot be read: {str(error).split('.')[0]}")
        return None


def _spki_fingerprint(cert: x509.Certificate, public_key: CertificatePublicKeyTypes | None) -> str:
    """SHA-256 of the SubjectPublicKeyInfo; taken from the raw DER when the key is unreadable,
    so that two certificates for the same unreadable key still share it."""
    if public_key is not None:
        return public_key_fingerprint(public_key)
    tbs = cert.tbs_certificate_bytes
    top = der.read_tlv(tbs, 0)
    fields = der.children(tbs, top) if top is not None else None
    if fields:
        index = 6 if fields[0].tag == 0xA0 else 5  # [0] version, serial, alg, issuer, ...
        if len(fields) > index:
            start = fields[index - 1].after
            return hashlib.sha256(tbs[start : fields[index].after]).hexdigest()
    return hashlib.sha256(tbs).hexdigest()


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier, problems: list[str]) -> object:
    """The extension's value, or None when absent; an unparseable one becomes a warning."""
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    except (ValueError, TypeError, x509.DuplicateExtension) as error:
        # cryptography parses all extensions at once, so one bad extension fails every read:
        # say it once. TypeError: how it refuses some values (an IP name constraint without
        # a netmask).
        problem = f"the extensions cannot be read: {error}"
        if problem not in problems:
            problems.append(problem)
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
