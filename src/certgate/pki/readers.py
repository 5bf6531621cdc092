"""Turn one decoded object into certificates, keys or requests, or say what it is instead.

cryptography reports problems with ValueError, TypeError, UnsupportedAlgorithm and a few x509
exception classes, some only when a field is first read; this module is the one place that
knows which of those means a wrong password, a damaged file or an unsupported object.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certgate.errors import (
    CorruptDataError,
    ImportFormatError,
    PasswordRequiredError,
    UnsupportedKeyError,
    WrongPasswordError,
)
from certgate.limits import fitted_friendly_name
from certgate.pki import der, pbe, pem, traditional
from certgate.pki.captured import captured_warnings
from certgate.pki.der import Shape
from certgate.pki.foreign import (
    PKCS7_OTHER,
    Foreign,
    describe_pem_label,
    describe_shape,
    nothing_loaded_error,
)
from certgate.pki.keys import PrivateKey, as_supported_private_key, public_key_fingerprint

KEY_SHAPES = frozenset(
    {Shape.PKCS8, Shape.ENCRYPTED_PKCS8, Shape.RSA_KEY, Shape.EC_KEY, Shape.DSA_KEY}
)

# What cryptography raises when a field of an already-loaded object is first read.
_FIELD_ERRORS = (
    ValueError,
    TypeError,  # e.g. a malformed IP name constraint
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)
# Long runs of hex or base64 in a library message could be key bytes: never echo them.
_LONG_RUN = re.compile(r"[A-Za-z0-9+/=:]{40,}")


@dataclass
class Found:
    """What a file held so far, and what to tell the user about it."""

    certificates: list[x509.Certificate] = field(default_factory=list)
    private_keys: list[PrivateKey] = field(default_factory=list)
    requests: list[x509.CertificateSigningRequest] = field(default_factory=list)
    certificate_ders: list[bytes] = field(default_factory=list)  # see LoadedFile
    #: position in ``certificates`` -> the friendly name a PKCS#12 file gave it
    friendly_names: dict[int, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped: list[Foreign] = field(default_factory=list)
    #: The key derivation iterations its encrypted objects asked for (pbe bounds the total)
    iterations: int = 0

    def skip_pem_label(self, label: str) -> None:
        self.skipped.append(describe_pem_label(label))

    def skipped_warnings(self) -> list[str]:
        return [
            f"skipped {item.noun}: only certificates, private keys and requests are imported"
            for item in dict.fromkeys(self.skipped)
        ]

    def nothing_loaded_error(self) -> ImportFormatError:
        return nothing_loaded_error(self.skipped)


@contextmanager
def recorded_warnings() -> Iterator[list[str]]:
    """Collect Python warnings (cryptography's notes on odd-but-accepted input) as text.

    The list is filled when the block ends.
    """
    notes: list[str] = []
    with captured_warnings() as caught:
        yield notes
    notes.extend(_clean(str(item.message)) for item in caught)


def _clean(text: str) -> str:
    """A library message made safe and short enough to show to a user."""
    text = text.split(" Please file an issue")[0]  # cryptography's plea is not for our users
    text = _LONG_RUN.sub("...", " ".join(text.split()))
    return text if len(text) <= 300 else text[:297] + "..."


def _reason(exc: BaseException) -> str:
    return _asn1_reason(str(exc)) or _clean(str(exc)) or type(exc).__name__


# cryptography's ASN.1 parser speaks Rust: "error parsing asn1 value: ParseError { kind:
# ExtraData }". Its kinds in words; any other kind is a malformed structure.
_ASN1_ERROR = re.compile(r"ParseError \{ kind: (\w+)")
_ASN1_KINDS = {
    "ExtraData": "other data follows its end (is it two files in one?)",
    "InvalidLength": "a length is not in DER form (BER indefinite or padded lengths)",
    "ShortData": "it is cut short",
}


def _asn1_reason(message: str) -> str | None:
    """The words for a parse error of cryptography's ASN.1 parser, None for other messages."""
    match = _ASN1_ERROR.search(message)
    if match is None:
        return None
    return _ASN1_KINDS.get(match.group(1), "its structure is malformed")


def add_object(found: Found, blob: bytes, shape: Shape, password: bytes | None) -> None:
    """Load one DER object of the given shape into ``found``, or note it as skipped."""
    reader = _READERS.get(shape)
    if reader is None:
        found.skipped.append(describe_shape(blob, shape))
    else:
        reader(found, blob, password)


def _add_certificate(found: Found, blob: bytes, password: bytes | None) -> None:
    with recorded_warnings() as notes:
        try:
            certificate = x509.load_der_x509_certificate(blob)
        except (ValueError, x509.InvalidVersion) as exc:
            raise CorruptDataError(
                f"a certificate in the file cannot be read: {_reason(exc)}"
            ) from exc
    _accept_certificate(found, certificate, notes)


def add_certificate_if_readable(found: Found, blob: bytes) -> bool:
    """Load a block labelled as a certificate without sniffing its shape first; False (and
    nothing kept, warnings included) when it does not parse, so the caller can classify it.

    Sniffing took a tenth of a large bundle's load, and whatever cryptography parses as a
    certificate is sniffed as one, so the result is the same as :func:`add_object`'s.
    """
    with recorded_warnings() as notes:
        try:
            certificate = x509.load_der_x509_certificate(blob)
        except (ValueError, x509.InvalidVersion):
            return False
    _accept_certificate(found, certificate, notes)
    return True


def load_plain_certificates(text: bytes) -> list[tuple[x509.Certificate, bytes]] | None:
    """The certificates (and DER) of a PEM text made only of CERTIFICATE blocks, parsed in
    one call and each field read once as :func:`_accept_certificate` reads it; None (nothing
    kept) when the text is anything else or anything is odd (an error, a warning, a serial
    that is not positive), so that the caller loads it block by block, which gives the
    exact warnings and errors. Block by block cost a 10,000-certificate bundle twice the
    parsing itself.

    An issuer name is read once per distinct encoding: equal bytes read the same.
    """
    count = pem.plain_certificate_count(text)
    if not count:
        return None
    loaded: list[tuple[x509.Certificate, bytes]] = []
    issuers: set[bytes] = set()
    with captured_warnings() as caught:
        try:
            for certificate in _parsed_in_chunks(text):
                encoded = certificate.public_bytes(serialization.Encoding.DER)
                parts = der.certificate_parts(encoded)
                issuer = parts[1] if parts else encoded  # unique when the name is not found
                if issuer not in issuers:
                    _ = certificate.issuer
                    issuers.add(issuer)
                _ = (certificate.subject, certificate.not_valid_after_utc, certificate.extensions)
                _ = (certificate.public_key(), certificate.signature_hash_algorithm)
                if certificate.serial_number <= 0:
                    return None
                loaded.append((certificate, encoded))
        except Exception:  # whatever it is, the block-by-block path says it precisely
            return None
    return loaded if len(loaded) == count and not caught else None


#: Certificates parsed per cryptography call: one call holds the GIL throughout, and 25,000
#: took ~0.5 s during which every other request of the process waited; 1,000 take ~20 ms.
_PARSE_CHUNK = 1000


def _parsed_in_chunks(text: bytes) -> Iterator[x509.Certificate]:
    for chunk in pem.certificate_chunks(text, _PARSE_CHUNK):
        yield from x509.load_pem_x509_certificates(chunk)


def _accept_certificate(found: Found, certificate: x509.Certificate, notes: list[str]) -> None:
    """Keep a parsed certificate; anything odd about it becomes a warning, not a failure."""
    with recorded_warnings() as more:
        problems = _unreadable_fields(
            {
                "subject": lambda: certificate.subject,
                "issuer": lambda: certificate.issuer,
                "validity": lambda: certificate.not_valid_after_utc,
                "extensions": lambda: certificate.extensions,
                "public key": certificate.public_key,
                "signature algorithm": lambda: certificate.signature_hash_algorithm,
            }
        )
        serial = certificate.serial_number  # cryptography warns here, not when loading
    library_notes = notes + more
    if serial <= 0:
        sign = "zero" if serial == 0 else "negative"
        problems.append(
            f"its serial number is {sign}, which RFC 5280 forbids; clients may refuse it"
        )
        # cryptography says the same in words meant for developers
        library_notes = [note for note in library_notes if "serial number" not in note]
    index = len(found.certificates) + 1
    found.certificates.append(certificate)
    if library_notes or problems:
        name = _certificate_name(certificate, index)
        found.warnings.extend(f"{name}: {text}" for text in library_notes + problems)


def _certificate_name(certificate: x509.Certificate, index: int) -> str:
    """Only built for a certificate with warnings: rendering the subject of every certificate
    took a third of a large bundle's load. Warnings raised while rendering are dropped: the
    subject was already read (and its warnings kept) with the other fields."""
    with captured_warnings(keep=False):
        return _subject_label(certificate, index)


def _subject_label(certificate: x509.Certificate, index: int) -> str:
    try:
        subject = certificate.subject.rfc4514_string()[:80]
    except _FIELD_ERRORS:
        subject = ""
    return f"certificate {index} ({subject})" if subject else f"certificate {index}"


def _unreadable_fields(reads: dict[str, Callable[[], object]]) -> list[str]:
    """Read each field once now, so that a malformed one is reported here, not later."""
    problems = []
    for what, read in reads.items():
        try:
            read()
        except _FIELD_ERRORS as exc:
            problems.append(f"its {what} cannot be read ({_reason(exc)})")
    return problems


def _add_request(found: Found, blob: bytes, password: bytes | None) -> None:
    with recorded_warnings() as notes:
        try:
            request = x509.load_der_x509_csr(blob)
        except (ValueError, x509.InvalidVersion) as exc:
            raise CorruptDataError(f"a certificate request cannot be read: {_reason(exc)}") from exc
        problems = _unreadable_fields(
            {
                "subject": lambda: request.subject,
                "extensions": lambda: request.extensions,
                "public key": request.public_key,
                "signature algorithm": lambda: request.signature_hash_algorithm,
            }
        )
    found.requests.append(request)
    name = f"certificate request {len(found.requests)}"
    found.warnings.extend(f"{name}: {text}" for text in notes + problems)


def _add_pkcs7(found: Found, blob: bytes, password: bytes | None) -> None:
    try:
        certificates = pkcs7.load_der_pkcs7_certificates(blob)
    except UnsupportedAlgorithm:  # cryptography: "Only basic signed structures are supported"
        found.skipped.append(PKCS7_OTHER)
        return
    except ValueError as exc:
        raise CorruptDataError(f"the PKCS#7 data cannot be read: {_reason(exc)}") from exc
    if not certificates:
        found.skipped.append(Foreign("a PKCS#7 file without certificates"))
    for certificate in certificates:
        _accept_certificate(found, certificate, [])


def _add_pkcs12(found: Found, blob: bytes, password: bytes | None) -> None:
    found.iterations = pbe.check_pkcs12(blob, found.iterations)
    bundle = _open_pkcs12(found, blob, password)
    first = [as_supported_private_key(bundle.key)] if bundle.key is not None else []
    found.private_keys.extend(first)
    bags = pbe.pkcs12_key_bags(blob)
    if len(bags) > 1:
        _add_other_pkcs12_keys(found, bags, password, first)
    items = ([bundle.cert] if bundle.cert is not None else []) + list(bundle.additional_certs)
    for item in items:
        name = _friendly_name(item.friendly_name)
        if name:
            found.friendly_names[len(found.certificates)] = name
        _accept_certificate(found, item.certificate, [])
    if bundle.key is None and not items:
        found.skipped.append(Foreign("an empty PKCS#12 file"))


def _add_other_pkcs12_keys(
    found: Found, bags: list[tuple[bytes, bool]], password: bytes | None, first: list[PrivateKey]
) -> None:
    """The library returns a PKCS#12 file's first key only: the others (a file exported
    with several certificates and their keys) are read from their bags, each the PKCS#8
    it holds, so that no certificate of the file arrives without its key."""
    seen = {public_key_fingerprint(key.public_key()) for key in first}
    for bag, shrouded in bags:
        key = as_supported_private_key(
            _open_key(
                functools.partial(serialization.load_der_private_key, bag),
                password if shrouded else None,
                encrypted=shrouded,
            )
        )
        fingerprint = public_key_fingerprint(key.public_key())
        if fingerprint not in seen:
            seen.add(fingerprint)
            found.private_keys.append(key)


def _friendly_name(value: bytes | None) -> str:
    """A PKCS#12 bag's friendly name (how the exporting system called the certificate),
    printable and at most 200 characters; "" when there is none."""
    return fitted_friendly_name(value.decode("utf-8", errors="replace")) if value else ""


def _open_pkcs12(
    found: Found, blob: bytes, password: bytes | None
) -> pkcs12.PKCS12KeyAndCertificates:
    """Open a bundle whose outer PFX structure is intact: a failure is a password problem.

    cryptography raises the same ValueError for a wrong password and a damaged MAC or
    encrypted part; only "Could not deserialize" means the ASN.1 inside is broken.
    """
    try:
        if password is not None and b"\x00" in password:  # cryptography panics on one
            raise ValueError("no PKCS#12 password holds a NUL character")
        return pkcs12.load_pkcs12(blob, password)
    except TypeError as exc:  # cryptography 50 raises TypeError for a password that is not UTF-8
        raise WrongPasswordError("the password does not open the PKCS#12 file") from exc
    except UnsupportedAlgorithm as exc:
        raise UnsupportedKeyError(
            f"the PKCS#12 file uses an unsupported algorithm ({_reason(exc)})"
        ) from exc
    except ValueError as exc:
        if "deserialize" in str(exc):
            raise CorruptDataError(f"the PKCS#12 file is damaged: {_reason(exc)}") from exc
        if password is None:
            raise PasswordRequiredError(
                "the PKCS#12 file is protected by a password; enter it"
            ) from exc
    try:
        bundle = pkcs12.load_pkcs12(blob, None)  # the password may simply not be needed
    except ValueError as exc:
        raise WrongPasswordError("the password does not open the PKCS#12 file") from exc
    found.warnings.append("the PKCS#12 file has no password; the password given was not needed")
    return bundle


def _add_der_key(found: Found, blob: bytes, password: bytes | None) -> None:
    _add_key(
        found, lambda pw: serialization.load_der_private_key(blob, pw), password, encrypted=False
    )


def _add_encrypted_der_key(found: Found, blob: bytes, password: bytes | None) -> None:
    found.iterations = pbe.check_encrypted_pkcs8(blob, found.iterations)
    _add_key(
        found, lambda pw: serialization.load_der_private_key(blob, pw), password, encrypted=True
    )


def add_private_key_pem(found: Found, block: pem.PemBlock, password: bytes | None) -> None:
    """An OpenSSL traditional key with ``Proc-Type: 4,ENCRYPTED`` (only the PEM form exists)."""
    cipher = traditional.cipher_of(block.headers)
    if cipher is None:
        pem_block = block.to_pem()
        _add_key(
            found,
            lambda pw: serialization.load_pem_private_key(pem_block, pw),
            password,
            encrypted=True,
            cipher=traditional.cipher_name(block.headers),
        )
        return
    if password is None:
        raise PasswordRequiredError("the private key is encrypted; enter its password")
    plain = traditional.decrypt(*cipher, block.der(), password)
    if plain is None:
        raise WrongPasswordError("the password does not open the private key")
    _add_key(
        found, lambda _: serialization.load_der_private_key(plain, None), password, encrypted=True
    )


_KeyReader = Callable[[bytes | None], PrivateKeyTypes]


def _add_key(
    found: Found, load: _KeyReader, password: bytes | None, *, encrypted: bool, cipher: str = ""
) -> None:
    found.private_keys.append(
        as_supported_private_key(_open_key(load, password, encrypted=encrypted, cipher=cipher))
    )


def _open_key(
    load: _KeyReader, password: bytes | None, *, encrypted: bool, cipher: str = ""
) -> PrivateKeyTypes:
    """Map cryptography's key errors; a password given for a plain key is simply not used.
    ``cipher``: the one a traditional PEM key names, for when cryptography cannot read it."""
    try:
        return load(password)
    except TypeError as exc:  # "Password was not given but..." / "Password was given but..."
        if password is None:
            raise PasswordRequiredError("the private key is encrypted; enter its password") from exc
        return _open_key(load, None, encrypted=False)
    except UnsupportedAlgorithm as exc:
        raise UnsupportedKeyError(
            f"the private key is of an unsupported kind ({_reason(exc)})"
        ) from exc
    except ValueError as exc:
        # "Incorrect password, could not decrypt key"; other messages (a missing DEK-Info,
        # an unsupported cipher) mean the file itself is the problem. A wrong password can
        # also decrypt to garbage whose padding happens to be valid (about 1 in 256 times
        # for CBC): the key inside then "cannot be deserialized", and no test tells the two
        # apart, so a readable encrypted envelope with garbage inside is a password problem.
        if cipher and "unknown cipher" in str(exc).lower():  # e.g. openssl rsa -camellia256
            raise UnsupportedKeyError(
                f"the private key is encrypted with {cipher}, which certgate cannot read: "
                "convert it with `openssl pkcs8 -topk8 -in <file> -out <file>.p8` and import that"
            ) from exc
        if encrypted and password is not None:
            reason = str(exc).lower()
            if "password" in reason:
                raise WrongPasswordError("the password does not open the private key") from exc
            if "deserialize" in reason:
                raise WrongPasswordError(
                    "the password does not open the private key"
                    " (if the password is right, the key inside is damaged)"
                ) from exc
        raise CorruptDataError(f"the private key cannot be read: {_reason(exc)}") from exc


_Reader = Callable[[Found, bytes, bytes | None], None]
_READERS: dict[Shape, _Reader] = {
    Shape.CERTIFICATE: _add_certificate,
    Shape.REQUEST: _add_request,
    Shape.PKCS7: _add_pkcs7,
    Shape.PKCS12: _add_pkcs12,
    Shape.PKCS8: _add_der_key,
    Shape.ENCRYPTED_PKCS8: _add_encrypted_der_key,
    Shape.RSA_KEY: _add_der_key,
    Shape.EC_KEY: _add_der_key,
    Shape.DSA_KEY: _add_der_key,
}
