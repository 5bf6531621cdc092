"""What a certificate says, read once from its DER into a frozen dataclass.

Pages, the CLI and the API show these fields under the guide's names (Issued To, Issued By,
Expiration, Alternative Name(s), Signature Type, Public Key, Authority Info Access...).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID

from certgate.pki import der
from certgate.pki.captured import captured_warnings
from certgate.pki.der import certificate_parts
from certgate.pki.dnames import NameFields, read_name
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


def sha1_fingerprint(der: bytes) -> str:
    """SHA-1 of the DER, lower-case hex: what CA portals and Windows ("thumbprint") show,
    for matching only; the store identifies everything by SHA-256."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def signature_verifies(
    cert: x509.Certificate, public_key: CertificatePublicKeyTypes, tbs: bytes | None = None
) -> bool:
    """True when ``public_key`` made ``cert``'s signature.

    Names are not compared here (cryptography's ``verify_directly_issued_by`` wants them
    byte-identical, which RFC 5280 does not); DSA signatures are checked too. ``tbs`` is
    the signed part when the caller has it (see :func:`der.certificate_parts`).
    """
    signature = cert.signature
    tbs = cert.tbs_certificate_bytes if tbs is None else tbs
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


def read_certificate(
    cert: x509.Certificate, encoded: bytes | None = None, *, warning_free: bool = False
) -> CertInfo:
    """Read every displayed field. Odd but parseable certificates give warnings, not errors.

    ``encoded`` is ``cert``'s DER when the caller has it already (an import stores it):
    cryptography re-encodes the certificate for each fingerprint or TBS part it is asked for.
    ``warning_free``: every field was read already and none warned (the loader's bulk path),
    so the serial number, which warns when negative, is read without recording warnings.
    """
    problems: list[str] = []
    if warning_free:
        serial = cert.serial_number
    else:
        with captured_warnings() as caught:
            serial = cert.serial_number
        problems.extend(str(w.message) for w in caught)
    if serial <= 0:
        problems.append(f"unusual serial number {serial} (RFC 5280 requires a positive serial)")
    public_key = _public_key(cert, problems)
    if encoded is None:
        encoded = cert.public_bytes(Encoding.DER)
    parts = certificate_parts(encoded)
    subject = read_name(cert.subject)
    issuer = _issuer_fields(cert, parts[1] if parts else None)
    self_issued = subject.hash == issuer.hash  # names_match(subject, issuer)
    description = describe_public_key(public_key) if public_key else "unreadable public key"
    extensions = _extension_values(cert, problems)
    return CertInfo(
        fingerprint_sha256=hashlib.sha256(encoded).hexdigest(),
        subject=subject.text,
        issuer=issuer.text,
        issued_to=subject.common_name or subject.text,
        issued_by=issuer.common_name or issuer.text,
        serial=str(serial),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=_read_sans(extensions),
        signature_type=_signature_type(cert),
        public_key=description,
        public_key_fingerprint=_spki_fingerprint(cert, public_key),
        public_key_bits=_key_bits(public_key),
        public_key_algorithm=description.split(" ")[0] if public_key else "unknown",
        signature_hash=_signature_hash(cert),
        is_ca=_is_ca(cert, extensions),
        self_issued=self_issued,
        subject_key_id=_subject_key_id(extensions),
        authority_key_id=_authority_key_id(extensions),
        authority_info_access=_aia(extensions),
        subject_name_hash=subject.hash,
        issuer_name_hash=issuer.hash,
        common_name=subject.common_name,
        parse_warnings=tuple(problems),
        self_signed=self_issued
        and public_key is not None
        and signature_verifies(cert, public_key, parts[0] if parts else None),
    )


#: A bundle names a few issuers thousands of times; their text and hash are worked out once
#: per encoding (equal bytes are equal names), without building the Name to look it up.
_ISSUERS: dict[bytes, NameFields] = {}
_MAX_ISSUERS = 1024


def _issuer_fields(cert: x509.Certificate, encoded: bytes | None) -> NameFields:
    if encoded is None:
        return read_name(cert.issuer)
    fields = _ISSUERS.get(encoded)
    if fields is None:
        if len(_ISSUERS) >= _MAX_ISSUERS:
            _ISSUERS.clear()
        fields = _ISSUERS[encoded] = read_name(cert.issuer)
    return fields


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


_Extensions = dict[x509.ObjectIdentifier, x509.ExtensionType]


def _extension_values(cert: x509.Certificate, problems: list[str]) -> _Extensions:
    """Each extension's value by OID (empty when they cannot be read: a warning)."""
    try:
        return {extension.oid: extension.value for extension in cert.extensions}
    except (ValueError, TypeError, x509.DuplicateExtension) as error:
        # cryptography parses all extensions at once, so one bad extension fails every read:
        # say it once. TypeError: how it refuses some values (an IP name constraint without
        # a netmask).
        problems.append(f"the extensions cannot be read: {error}")
        return {}


def _read_sans(extensions: _Extensions) -> tuple[SubjectAltName, ...]:
    value = extensions.get(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if not isinstance(value, x509.SubjectAlternativeName):
        return ()
    return tuple(describe_san(general_name) for general_name in value)


def _is_ca(cert: x509.Certificate, extensions: _Extensions) -> bool:
    value = extensions.get(ExtensionOID.BASIC_CONSTRAINTS)
    if isinstance(value, x509.BasicConstraints):
        return value.ca
    # v1 certificates have no extensions: a self-issued one is a root by tradition.
    return cert.version is x509.Version.v1 and cert.subject == cert.issuer


def _subject_key_id(extensions: _Extensions) -> str | None:
    value = extensions.get(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    return value.digest.hex() if isinstance(value, x509.SubjectKeyIdentifier) else None


def _authority_key_id(extensions: _Extensions) -> str | None:
    value = extensions.get(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    if isinstance(value, x509.AuthorityKeyIdentifier) and value.key_identifier is not None:
        return value.key_identifier.hex()
    return None


def derived_key_id(der_bytes: bytes) -> str | None:
    """The key identifier RFC 5280 (4.2.1.2) makes first, the SHA-1 of the public key: how
    OpenSSL and cryptography name an issuer that carries no subject key identifier. None
    when the key cannot be read."""
    try:
        public_key = x509.load_der_x509_certificate(der_bytes).public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest.hex()


def _aia(extensions: _Extensions) -> tuple[str, ...]:
    value = extensions.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
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


#: The guide's "Signature Type" names, by cryptography's name of the signature algorithm.
_SIGNATURE_TYPES = {
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


def _signature_type(cert: x509.Certificate) -> str:
    """The guide's "Signature Type", e.g. RSA-SHA256."""
    name = cert.signature_algorithm_oid._name
    return _SIGNATURE_TYPES.get(name, name or cert.signature_algorithm_oid.dotted_string)
