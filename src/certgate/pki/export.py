"""Encode a certificate, its private key and its chain for export.

The guide's rules: DER for the server certificate alone, PKCS#8 for the private key alone,
PKCS#7 for several certificates, PKCS#12 for the certificate with its key (with or without the
chain); PEM variants on request. A private key never leaves unencrypted unless the
administrator opts in explicitly. Pure functions: the faces do the I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from certgate.errors import ExportError, KeyMissingError, ValidationError
from certgate.limits import EXPORT_PASSPHRASE_MAX, EXPORT_PASSPHRASE_MIN
from certgate.pki.keys import PrivateKey, spki_der

_PEM_MEDIA_TYPE = "application/x-pem-file"


class ExportFormat(enum.Enum):
    """The file formats an export can produce."""

    DER = "der"
    PEM = "pem"
    PKCS7 = "pkcs7"
    PKCS7_PEM = "pkcs7-pem"
    PKCS8 = "pkcs8"
    PKCS8_PEM = "pkcs8-pem"
    PKCS12 = "pkcs12"
    PEM_BUNDLE = "pem-bundle"

    @property
    def media_type(self) -> str:
        """The Content-Type a download of this format is served with."""
        return _MEDIA_TYPES[self]

    @property
    def file_extension(self) -> str:
        """The extension that makes operating systems open the file with the right tool."""
        return _EXTENSIONS[self]


_MEDIA_TYPES = {
    ExportFormat.DER: "application/pkix-cert",
    ExportFormat.PEM: _PEM_MEDIA_TYPE,
    ExportFormat.PKCS7: "application/x-pkcs7-certificates",
    ExportFormat.PKCS7_PEM: _PEM_MEDIA_TYPE,
    ExportFormat.PKCS8: "application/pkcs8",
    ExportFormat.PKCS8_PEM: _PEM_MEDIA_TYPE,
    ExportFormat.PKCS12: "application/x-pkcs12",
    ExportFormat.PEM_BUNDLE: _PEM_MEDIA_TYPE,
}

_EXTENSIONS = {
    ExportFormat.DER: ".cer",
    ExportFormat.PEM: ".pem",
    ExportFormat.PKCS7: ".p7b",
    ExportFormat.PKCS7_PEM: ".p7b",
    ExportFormat.PKCS8: ".p8",
    ExportFormat.PKCS8_PEM: ".key",
    ExportFormat.PKCS12: ".p12",
    ExportFormat.PEM_BUNDLE: ".pem",
}


@dataclass(frozen=True)
class ExportOptions:
    """What the administrator asked to export, and how to protect the private key."""

    include_certificate: bool = True
    include_private_key: bool = False
    include_chain: bool = False
    # Empty counts as none. repr=False: options reach logs and tracebacks, the passphrase must not.
    passphrase: bytes | None = field(default=None, repr=False)
    # PEM variants instead of binary files.
    pem: bool = False
    # 3DES and a SHA-1 MAC, for Windows releases that cannot read AES-encrypted PKCS#12.
    legacy_pkcs12: bool = False
    # The explicit, named opt-in to export a private key without encryption.
    unencrypted_private_key: bool = False


@dataclass(frozen=True)
class ExportedFile:
    """The bytes to download, with what the faces need to name and serve them."""

    data: bytes
    format: ExportFormat
    media_type: str
    file_extension: str


def choose_format(options: ExportOptions, chain_length: int) -> ExportFormat:
    """The format the guide's rules pick, so pages can show it before the export runs.

    Certificates are counted: a certificate "with its chain" whose chain is empty (a
    self-signed certificate) is one certificate, hence DER.
    """
    if chain_length < 0:
        raise ValueError("chain_length cannot be negative")
    if options.include_private_key:
        if not options.include_certificate:
            if options.include_chain:
                raise ExportError(
                    "the chain can be exported with the private key only together with "
                    "the certificate"
                )
            return ExportFormat.PKCS8_PEM if options.pem else ExportFormat.PKCS8
        return ExportFormat.PEM_BUNDLE if options.pem else ExportFormat.PKCS12
    certificates = int(options.include_certificate) + (chain_length if options.include_chain else 0)
    if certificates == 0:
        raise ExportError(
            "nothing to export: include the certificate, its private key or its chain"
        )
    if certificates == 1:
        return ExportFormat.PEM if options.pem else ExportFormat.DER
    return ExportFormat.PKCS7_PEM if options.pem else ExportFormat.PKCS7


def export(
    certificate: x509.Certificate,
    private_key: PrivateKey | None,
    chain: Sequence[x509.Certificate],
    options: ExportOptions,
    friendly_name: str | None = None,
) -> ExportedFile:
    """Produce the file the options ask for.

    ``chain`` is kept in the order given (the leaf's issuer first, up to the root).
    ``friendly_name`` labels the certificate and key inside a PKCS#12 file (what Windows
    shows after import); other formats have no place for it.
    """
    export_format = choose_format(options, len(chain))
    certificates = _selected_certificates(certificate, chain, options)
    if options.include_private_key:
        key = _key_of(certificate, private_key, options)
        data = _encode_with_key(export_format, key, certificates, options, friendly_name)
    else:
        data = _encode_certificates(export_format, certificates)
    return ExportedFile(
        data=data,
        format=export_format,
        media_type=export_format.media_type,
        file_extension=export_format.file_extension,
    )


def _selected_certificates(
    certificate: x509.Certificate, chain: Sequence[x509.Certificate], options: ExportOptions
) -> list[x509.Certificate]:
    """The certificates to write, leaf first, then the chain as given."""
    selected = [certificate] if options.include_certificate else []
    if options.include_chain:
        selected.extend(chain)
    return selected


def _key_of(
    certificate: x509.Certificate, private_key: PrivateKey | None, options: ExportOptions
) -> PrivateKey:
    """The key to export, refusing a missing key or one that does not match the certificate."""
    if private_key is None:
        raise KeyMissingError("the private key of this certificate is not available")
    if options.include_certificate and spki_der(private_key.public_key()) != spki_der(
        certificate.public_key()
    ):
        # A failover node given a mismatched pair would fail every TLS handshake.
        raise ExportError("the private key does not belong to this certificate")
    return private_key


def _require_protection(options: ExportOptions) -> bytes | None:
    """The passphrase to encrypt the key with, None for an opted-in plain key, or refuse.

    An empty passphrase protects nothing, so it counts as none.
    """
    passphrase = options.passphrase or None
    if passphrase is None and not options.unencrypted_private_key:
        raise ExportError(
            "a private key is never exported unencrypted by default: give a passphrase, "
            "or explicitly choose to export the private key without encryption"
        )
    if passphrase is None:
        return None
    length = len(passphrase.decode("utf-8", errors="replace"))
    if length < EXPORT_PASSPHRASE_MIN:
        raise ValidationError(
            "passphrase",
            f"a passphrase needs at least {EXPORT_PASSPHRASE_MIN} characters, "
            "or explicitly choose to export the private key without encryption",
        )
    if length > EXPORT_PASSPHRASE_MAX:
        raise ValidationError("passphrase", f"is longer than {EXPORT_PASSPHRASE_MAX} characters")
    return passphrase


def _encode_certificates(
    export_format: ExportFormat, certificates: Sequence[x509.Certificate]
) -> bytes:
    """DER or PEM for one certificate, PKCS#7 for several.

    PKCS#7 holds its certificates in a DER ``SET OF``, which cryptography writes sorted:
    the file holds every certificate, but not in the order given.
    """
    if export_format is ExportFormat.DER:
        return certificates[0].public_bytes(serialization.Encoding.DER)
    if export_format is ExportFormat.PEM:
        return certificates[0].public_bytes(serialization.Encoding.PEM)
    encoding = (
        serialization.Encoding.PEM
        if export_format is ExportFormat.PKCS7_PEM
        else serialization.Encoding.DER
    )
    return pkcs7.serialize_certificates(list(certificates), encoding)


def _encode_with_key(
    export_format: ExportFormat,
    key: PrivateKey,
    certificates: Sequence[x509.Certificate],
    options: ExportOptions,
    friendly_name: str | None,
) -> bytes:
    """PKCS#8 for the key alone, PKCS#12 or a PEM bundle for the key with certificates."""
    passphrase = _require_protection(options)
    if export_format is ExportFormat.PKCS8:
        return _pkcs8(key, passphrase, serialization.Encoding.DER)
    if export_format is ExportFormat.PKCS8_PEM:
        return _pkcs8(key, passphrase, serialization.Encoding.PEM)
    if export_format is ExportFormat.PEM_BUNDLE:
        pem_certificates = b"".join(
            cert.public_bytes(serialization.Encoding.PEM) for cert in certificates
        )
        return pem_certificates + _pkcs8(key, passphrase, serialization.Encoding.PEM)
    leaf, *cas = certificates
    return pkcs12.serialize_key_and_certificates(
        name=friendly_name.encode() if friendly_name else None,
        key=key,
        cert=leaf,
        cas=cas or None,
        encryption_algorithm=_pkcs12_encryption(passphrase, legacy=options.legacy_pkcs12),
    )


def _pkcs8(key: PrivateKey, passphrase: bytes | None, encoding: serialization.Encoding) -> bytes:
    """PKCS#8, encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC) unless opted out."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(encoding, serialization.PrivateFormat.PKCS8, encryption)


def _pkcs12_encryption(
    passphrase: bytes | None, *, legacy: bool
) -> serialization.KeySerializationEncryption:
    """AES-256 + SHA-256 MAC (OpenSSL 3 without -legacy), or 3DES + SHA-1 for old Windows."""
    if passphrase is None:
        return serialization.NoEncryption()
    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if legacy:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(
            hashes.SHA1()
        )
    else:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(
            hashes.SHA256()
        )
    return builder.build(passphrase)
