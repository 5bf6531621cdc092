"""Name what a file holds when it is not a certificate, key or request.

The admin should learn "this is a CRL" or "this is an OpenSSH key, convert it like so", not
"unrecognised format": these descriptions feed NotACertificateError and the skipped-block
warnings of mixed PEM files.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from certgate.errors import ImportFormatError, NotACertificateError
from certgate.pki.der import Shape

UNREADABLE = "not a recognised certificate, key or request format"


@dataclass(frozen=True)
class Foreign:
    """Something that is not a certificate, key or request, described for the user."""

    noun: str  # e.g. "a certificate revocation list (CRL)"
    advice: str | None = None  # how to convert it, when there is a way
    recognised: bool = True  # False for PEM labels certgate has never heard of


_CRL = Foreign("a certificate revocation list (CRL)")
_PUBLIC_KEY = Foreign("a public key")
_DH_PARAMETERS = Foreign("Diffie-Hellman (DH) parameters")
PKCS7_OTHER = Foreign("a PKCS#7 message without certificates (e.g. an encrypted message)")
_PEM_FOREIGN = {
    "X509 CRL": _CRL,
    "PUBLIC KEY": _PUBLIC_KEY,
    "RSA PUBLIC KEY": _PUBLIC_KEY,
    "DSA PUBLIC KEY": _PUBLIC_KEY,
    "EC PUBLIC KEY": _PUBLIC_KEY,
    "DSA PARAMETERS": Foreign("DSA parameters"),
    "DH PARAMETERS": _DH_PARAMETERS,
    "X9.42 DH PARAMETERS": _DH_PARAMETERS,
    "EC PARAMETERS": Foreign("EC parameters"),
    "ATTRIBUTE CERTIFICATE": Foreign("an attribute certificate"),
    "SSL SESSION PARAMETERS": Foreign("TLS session parameters"),
    "OPENSSH PRIVATE KEY": Foreign(
        "an OpenSSH private key",
        "certgate reads PKCS#8 and PEM keys: convert it with `ssh-keygen -p -m PKCS8 -f <file>`",
    ),
}
_SHAPE_FOREIGN = {
    Shape.CRL: _CRL,
    Shape.ATTRIBUTE_CERTIFICATE: _PEM_FOREIGN["ATTRIBUTE CERTIFICATE"],
    Shape.PKCS7_OTHER: PKCS7_OTHER,
    Shape.PUBLIC_KEY: _PUBLIC_KEY,
    Shape.EC_PARAMETERS: _PEM_FOREIGN["EC PARAMETERS"],
    Shape.OCSP_RESPONSE: Foreign("an OCSP response"),
}
_TEXT_SIGNATURES = (
    ((b"ssh-", b"ecdsa-sha2-", b"sk-ssh-", b"sk-ecdsa-"), Foreign("an OpenSSH public key")),
    ((b"---- BEGIN SSH2 PUBLIC KEY",), Foreign("an SSH2 public key")),
    (
        (b"PuTTY-User-Key-File-",),
        Foreign("a PuTTY private key", "convert it with `puttygen <file> -O private-openssl`"),
    ),
    (
        (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce"),
        Foreign(
            "a Java keystore (JKS)",
            "convert it with `keytool -importkeystore -srckeystore <file> "
            "-destkeystore <file>.p12 -deststoretype PKCS12`",
        ),
    ),
)


def describe_pem_label(label: str) -> Foreign:
    """What a PEM block that certgate does not load holds, judged by its label."""
    if label in _PEM_FOREIGN:
        return _PEM_FOREIGN[label]
    if label.startswith("PGP "):
        return Foreign("a PGP (OpenPGP) block")
    return Foreign(f"a PEM block labelled '{label[:60]}'", recognised=False)


def describe_shape(blob: bytes, shape: Shape) -> Foreign:
    """What a DER object that certgate does not load holds, judged by its structure."""
    if shape is Shape.INTEGERS:  # a PKCS#1 RSA public key and DH parameters look alike
        try:
            serialization.load_der_public_key(blob)
        except (ValueError, UnsupportedAlgorithm):
            return Foreign("DSA or Diffie-Hellman (DH) parameters")
        return _PUBLIC_KEY
    return _SHAPE_FOREIGN.get(shape, Foreign("an unknown ASN.1 structure", recognised=False))


def describe_text(data: bytes) -> Foreign | None:
    """Name a file that is neither PEM nor DER (SSH keys, Java keystores...), if we can."""
    start = data.lstrip()
    if b"-cert-v01@openssh.com" in start.split(b"\n", 1)[0]:
        return Foreign("an OpenSSH certificate", "certgate needs X.509 certificates")
    for prefixes, foreign in _TEXT_SIGNATURES:
        if start.startswith(prefixes):
            return foreign
    return None


def nothing_loaded_error(skipped: list[Foreign]) -> ImportFormatError:
    """Why a file gave nothing: name what it holds instead when we know."""
    items = list(dict.fromkeys(skipped))
    known = [item for item in items if item.recognised]
    if not known:
        seen = f" (it holds {_and_join([item.noun for item in items])})" if items else ""
        return ImportFormatError(UNREADABLE + seen)
    if len(known) == 1 and known[0].advice:
        return NotACertificateError(f"this is {known[0].noun}; {known[0].advice}")
    nouns = _and_join([item.noun for item in known])
    return NotACertificateError(f"this is {nouns}, not a certificate or private key")


def _and_join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
