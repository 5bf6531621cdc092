"""Private keys: the kinds certgate uses, generation, fingerprints and descriptions."""

from __future__ import annotations

import enum
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)

from certgate.errors import UnsupportedKeyError, ValidationError

#: The private keys certgate can hold and serve TLS with.
PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


class KeySpec(enum.StrEnum):
    """The choices of the guide's **Key** dropdown."""

    RSA_2048 = "rsa2048"
    RSA_3072 = "rsa3072"
    RSA_4096 = "rsa4096"
    EC_P256 = "p256"
    EC_P384 = "p384"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, value: str) -> KeySpec:
        """Accept the value (``rsa2048``) or the label (``RSA 2048 bits``), case-insensitively."""
        wanted = value.strip().lower()
        for spec in cls:
            if wanted in (spec.value, spec.label.lower()):
                return spec
        choices = ", ".join(spec.value for spec in cls)
        raise ValidationError("key", f"unknown key type {value!r}; choose one of {choices}")


_LABELS = {
    KeySpec.RSA_2048: "RSA 2048 bits",
    KeySpec.RSA_3072: "RSA 3072 bits",
    KeySpec.RSA_4096: "RSA 4096 bits",
    KeySpec.EC_P256: "ECDSA P-256",
    KeySpec.EC_P384: "ECDSA P-384",
}

DEFAULT_KEY_SPEC = KeySpec.RSA_2048


def generate_private_key(spec: KeySpec) -> PrivateKey:
    """Make a new private key of the chosen kind."""
    if spec is KeySpec.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if spec is KeySpec.EC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    bits = {KeySpec.RSA_2048: 2048, KeySpec.RSA_3072: 3072, KeySpec.RSA_4096: 4096}[spec]
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def as_supported_private_key(key: PrivateKeyTypes) -> PrivateKey:
    """Narrow any loaded private key to the kinds certgate can serve, or say why not."""
    if isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        return key
    if isinstance(key, dsa.DSAPrivateKey):
        raise UnsupportedKeyError("this is a DSA private key; DSA keys cannot secure TLS today")
    raise UnsupportedKeyError(f"unsupported private key type {type(key).__name__}")


def spki_der(public_key: CertificatePublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo, the identity that links keys, requests and certificates."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_fingerprint(public_key: CertificatePublicKeyTypes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, lower-case hex."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def describe_public_key(public_key: CertificatePublicKeyTypes) -> str:
    """The guide's "Public Key" field, e.g. ``RSA (2048 Bits)`` or ``ECDSA P-256 (256 Bits)``."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA ({public_key.key_size} Bits)"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = _CURVE_NAMES.get(public_key.curve.name, public_key.curve.name)
        return f"ECDSA {curve} ({public_key.curve.key_size} Bits)"
    if isinstance(public_key, dsa.DSAPublicKey):
        return f"DSA ({public_key.key_size} Bits)"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519 (256 Bits)"
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "Ed448 (456 Bits)"
    return type(public_key).__name__


_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def private_key_to_pkcs8_der(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 DER: only ever handed to the sealer or an explicit opt-in export."""
    return _pkcs8(key, serialization.Encoding.DER)


def private_key_to_pkcs8_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: only ever handed to the TLS front end, in memory."""
    return _pkcs8(key, serialization.Encoding.PEM)


def _pkcs8(key: PrivateKey, encoding: serialization.Encoding) -> bytes:
    return key.private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_key_from_pkcs8_der(data: bytes) -> PrivateKey:
    """Inverse of :func:`private_key_to_pkcs8_der`, for keys unsealed from the store.

    RSA validation is skipped: it costs ~25 ms per key and would delay every listener
    change; these bytes were validated when the key was imported or generated, and AES-GCM
    proves they are unchanged since.
    """
    key = serialization.load_der_private_key(
        data, password=None, unsafe_skip_rsa_key_validation=True
    )
    return as_supported_private_key(key)
