"""Read certificates, private keys and requests from a file in any supported format.

The admin uploads whatever the CA sent, so the format is found from the content, never from the
file name, and every failure is a CertgateError that says what the file is instead of a trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509

from certgate.errors import CorruptDataError, FileTooLargeError, ImportFormatError
from certgate.pki import der, pem
from certgate.pki.der import Shape
from certgate.pki.foreign import UNREADABLE, describe_text, nothing_loaded_error
from certgate.pki.keys import PrivateKey
from certgate.pki.readers import (
    KEY_SHAPES,
    Found,
    add_certificate_if_readable,
    add_object,
    add_private_key_pem,
    load_plain_certificates,
    recorded_warnings,
)

#: Files larger than this are refused with FileTooLargeError before any parsing.
MAX_FILE_SIZE = 32 * 1024 * 1024  # a 10,000-certificate RSA bundle is ~15 MiB


@dataclass(frozen=True)
class LoadedFile:
    """Everything one file held, in file order within each kind."""

    format: str  # what was recognised, e.g. "PEM", "DER X.509 certificate", "PKCS#7 (DER)"
    certificates: tuple[x509.Certificate, ...] = ()
    private_keys: tuple[PrivateKey, ...] = ()
    requests: tuple[x509.CertificateSigningRequest, ...] = ()
    warnings: tuple[str, ...] = ()  # unusual-but-accepted content, skipped PEM blocks...
    #: The DER of each certificate when the bulk path loaded them (a PEM file of nothing but
    #: certificates, every field read without a warning), else ().
    certificate_ders: tuple[bytes, ...] = field(default=(), compare=False, repr=False)
    #: The friendly name a PKCS#12 file gave each certificate ("" for none), else ().
    friendly_names: tuple[str, ...] = ()


_DER_FORMATS = {
    Shape.CERTIFICATE: "DER X.509 certificate",
    Shape.REQUEST: "certificate request (DER)",
    Shape.PKCS7: "PKCS#7 (DER)",
    Shape.PKCS12: "PKCS#12",
    Shape.PKCS8: "PKCS#8 private key (DER)",
    Shape.ENCRYPTED_PKCS8: "encrypted PKCS#8 private key (DER)",
    Shape.RSA_KEY: "OpenSSL legacy private key (DER)",
    Shape.EC_KEY: "OpenSSL legacy private key (DER)",
    Shape.DSA_KEY: "OpenSSL legacy private key (DER)",
}

# What each supported PEM label should hold; the content still decides if it disagrees.
_PEM_LABELS = {
    "CERTIFICATE": Shape.CERTIFICATE,
    "X509 CERTIFICATE": Shape.CERTIFICATE,
    "TRUSTED CERTIFICATE": Shape.CERTIFICATE,
    "PKCS7": Shape.PKCS7,
    "PKCS #7 SIGNED DATA": Shape.PKCS7,
    "CMS": Shape.PKCS7,
    "PRIVATE KEY": Shape.PKCS8,
    "ENCRYPTED PRIVATE KEY": Shape.ENCRYPTED_PKCS8,
    "RSA PRIVATE KEY": Shape.RSA_KEY,
    "EC PRIVATE KEY": Shape.EC_KEY,
    "DSA PRIVATE KEY": Shape.DSA_KEY,
    "CERTIFICATE REQUEST": Shape.REQUEST,
    "NEW CERTIFICATE REQUEST": Shape.REQUEST,
}

_BLANK = b" \t\r\n\x00"


def load_file(data: bytes, password: bytes | None = None) -> LoadedFile:
    """Everything a certificate, key, request, PKCS#7 or PKCS#12 file holds.

    ``password`` opens encrypted keys and PKCS#12 files; an empty password counts as none.
    Raises an ImportFormatError subclass that says what is wrong with the file.
    """
    _check_size(data)
    password = password or None
    found = Found()
    with recorded_warnings() as notes:
        format_name = _load_into(found, data, password)
    found.warnings.extend(notes)
    return _result(format_name, found)


def _check_size(data: bytes) -> None:
    """Refuse before parsing: parsers must never see huge or empty input."""
    if len(data) > MAX_FILE_SIZE:
        limit = MAX_FILE_SIZE // (1024 * 1024)
        raise FileTooLargeError(
            f"the file is {len(data):,} bytes; certgate accepts up to {limit} MiB"
        )
    if not pem.as_text(data).strip(_BLANK):
        raise ImportFormatError("the file is empty")


def _load_into(found: Found, data: bytes, password: bytes | None) -> str:
    """Pick PEM or DER from the content and load; returns the format's name."""
    trimmed = _trim_der(data)
    whole_der = trimmed[:1] == b"\x30" and der.outer_end(trimmed) == len(trimmed)
    if not whole_der and pem.has_markers(data):
        return _load_pem(found, data, password)
    if trimmed[:1] in (b"\x30", b"\x06"):
        return _load_der(found, trimmed, password)
    foreign = describe_text(data)
    raise nothing_loaded_error([foreign]) if foreign else ImportFormatError(UNREADABLE)


def _trim_der(data: bytes) -> bytes:
    """Drop the newline or NUL padding some tools append after a complete DER structure."""
    end = der.outer_end(data)
    if end is not None and end < len(data) and not data[end:].strip(_BLANK):
        return data[:end]
    return data


def _load_der(found: Found, data: bytes, password: bytes | None) -> str:
    shape = der.sniff(data)
    if shape not in _DER_FORMATS and der.outer_end(data) != len(data):
        shape = Shape.UNKNOWN  # name a foreign object only when it is all the file holds
    if shape is Shape.UNKNOWN:
        if der.looks_truncated(data):
            raise CorruptDataError("the file is cut short: its DER structure is incomplete")
        raise ImportFormatError(UNREADABLE)
    add_object(found, data, shape, password)
    return _DER_FORMATS.get(shape, "DER")  # foreign shapes raise NotACertificateError anyway


def _load_pem(found: Found, data: bytes, password: bytes | None) -> str:
    plain = load_plain_certificates(pem.as_text(data))
    if plain is not None:
        found.certificates.extend(certificate for certificate, _ in plain)
        found.certificate_ders.extend(encoded for _, encoded in plain)
        return "PEM"
    shapes = [_load_pem_block(found, block, password) for block in pem.scan(data)]
    loaded = [shape for shape in shapes if shape is not None]
    return "PKCS#7 (PEM)" if loaded and set(loaded) == {Shape.PKCS7} else "PEM"


def _load_pem_block(found: Found, block: pem.PemBlock, password: bytes | None) -> Shape | None:
    """Load one block; unsupported labels are noted as skipped. Returns what was loaded."""
    expected = _PEM_LABELS.get(block.label)
    if expected is None:
        found.skip_pem_label(block.label)
        return None
    if block.defect:
        raise CorruptDataError(f"the PEM block '{block.label}' is damaged: {block.defect}")
    if block.encrypted and expected in KEY_SHAPES:
        add_private_key_pem(found, block, password)
        return expected
    blob = block.der()
    if block.label == "TRUSTED CERTIFICATE":
        blob = _without_trust_settings(found, blob)
    if expected is Shape.CERTIFICATE and add_certificate_if_readable(found, blob):
        return expected
    shape = der.sniff(blob)
    if shape in (Shape.UNKNOWN, Shape.INTEGERS):  # the label knows better than an ambiguous shape
        shape = expected
    add_object(found, blob, shape, password)
    return shape


def _without_trust_settings(found: Found, blob: bytes) -> bytes:
    """OpenSSL's TRUSTED CERTIFICATE appends trust settings that certgate does not use."""
    end = der.outer_end(blob)
    if end is None or end == len(blob):
        return blob
    found.warnings.append("OpenSSL trust settings after a TRUSTED CERTIFICATE were ignored")
    return blob[:end]


def _result(format_name: str, found: Found) -> LoadedFile:
    """The LoadedFile, or the error explaining why the file held nothing certgate imports."""
    if not (found.certificates or found.private_keys or found.requests):
        raise found.nothing_loaded_error()
    return LoadedFile(
        format=format_name,
        certificates=tuple(found.certificates),
        private_keys=tuple(found.private_keys),
        requests=tuple(found.requests),
        certificate_ders=tuple(found.certificate_ders),
        friendly_names=tuple(
            found.friendly_names.get(i, "") for i in range(len(found.certificates))
        )
        if found.friendly_names
        else (),
        warnings=tuple(dict.fromkeys(found.warnings + found.skipped_warnings())),
    )
