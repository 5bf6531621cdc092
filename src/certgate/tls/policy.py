"""The appliance's SSL CONFIGURATION as the OpenSSL settings of one server context.

Every context a listener serves is made here, so that the version range, the TLS 1.2 cipher
list and the fixed hardening options can never differ between the contexts of one plan.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import StrEnum

from certgate.errors import ValidationError


class TlsVersionName(StrEnum):
    """The TLS versions the SSL configuration names, as the guide writes them."""

    TLS_1_0 = "1.0"
    TLS_1_1 = "1.1"
    TLS_1_2 = "1.2"
    TLS_1_3 = "1.3"

    @property
    def version(self) -> ssl.TLSVersion:
        return _SSL_VERSIONS[self]


_SSL_VERSIONS = {
    TlsVersionName.TLS_1_0: ssl.TLSVersion.TLSv1,
    TlsVersionName.TLS_1_1: ssl.TLSVersion.TLSv1_1,
    TlsVersionName.TLS_1_2: ssl.TLSVersion.TLSv1_2,
    TlsVersionName.TLS_1_3: ssl.TLSVersion.TLSv1_3,
}
#: The versions a policy may name (the sentinels MINIMUM/MAXIMUM_SUPPORTED are not versions).
VERSIONS = tuple(_SSL_VERSIONS.values())

#: ECDHE key exchange with an AEAD cipher only: the six ECDHE-{ECDSA,RSA} AES-GCM and
#: ChaCha20-Poly1305 suites. TLS 1.3 suites are all AEAD and are not configured.
DEFAULT_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


@dataclass(frozen=True)
class TlsPolicy:
    """Which TLS versions and TLS 1.2 ciphers every listener accepts.

    Hashable, so that it is part of the identity of a cached context: a policy change builds
    new contexts instead of mutating live ones.
    """

    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    maximum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    tls12_ciphers: str = DEFAULT_TLS12_CIPHERS

    def __post_init__(self) -> None:
        for field, version in (
            ("minimum_version", self.minimum_version),
            ("maximum_version", self.maximum_version),
        ):
            if version not in VERSIONS:
                raise ValidationError(field, f"{version!r} is not a TLS version")
        if self.minimum_version > self.maximum_version:
            raise ValidationError("minimum_version", "must not be above the maximum version")
        # Fail here, where the caller can tell which setting is wrong, not at bind time.
        self.new_context()

    def new_context(self) -> ssl.SSLContext:
        """A server context with this policy and no certificate yet."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.minimum_version
        context.maximum_version = self.maximum_version
        try:
            context.set_ciphers(self.tls12_ciphers)
        except ssl.SSLError:
            raise ValidationError(
                "tls12_ciphers", f"{self.tls12_ciphers!r} selects no cipher OpenSSL knows"
            ) from None
        # No TLS 1.3 session tickets: making them costs CPU on every full handshake. TLS 1.2
        # session IDs stay in this context's cache; a changed certificate or policy gets a new
        # context, so no session is ever resumed under a state other than its own.
        context.options |= ssl.OP_NO_TICKET | ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
        context.num_tickets = 0
        return context
