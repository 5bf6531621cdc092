"""The appliance's SSL CONFIGURATION as the values of one server context.

This is the one definition of the TLS policy: every context a listener serves is built by the
front end (``_front.Context``) from these values, so that the versions, ciphers, groups and
options can never differ between the contexts of one plan. A policy is checked when it is made,
by building a context with the very OpenSSL that will serve it and reading back what that
context would negotiate.
"""

from __future__ import annotations

import dataclasses
import functools
import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from certgate.errors import ValidationError
from certgate.tls.native import context_class

if TYPE_CHECKING:
    from certgate.tls._front import Context


class TlsVersionName(StrEnum):
    """The TLS versions the SSL configuration may name, as the guide writes them.

    TLS 1.0 and 1.1 are not among them: OpenSSL 3 allows them only at security level 0 (their
    handshakes sign with SHA-1/MD5), and a level below 2 is refused (``MINIMUM_SECURITY_LEVEL``);
    they are also below Mozilla's "intermediate" profile.
    """

    TLS_1_2 = "1.2"
    TLS_1_3 = "1.3"

    @property
    def version(self) -> ssl.TLSVersion:
        return _SSL_VERSIONS[self]


_SSL_VERSIONS = {
    TlsVersionName.TLS_1_2: ssl.TLSVersion.TLSv1_2,
    TlsVersionName.TLS_1_3: ssl.TLSVersion.TLSv1_3,
}
#: The versions a policy may name (the sentinels MINIMUM/MAXIMUM_SUPPORTED are not versions).
VERSIONS = tuple(_SSL_VERSIONS.values())

#: ECDHE key exchange with an AEAD cipher only: the six ECDHE-{ECDSA,RSA} AES-GCM and
#: ChaCha20-Poly1305 suites (Mozilla's "intermediate" TLS 1.2 list).
DEFAULT_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

#: Every TLS 1.3 suite, in Mozilla's order.
DEFAULT_TLS13_CIPHERSUITES = (
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
)

#: Mozilla's groups: X448 and P-521 are left out (no client needs them; they cost more).
DEFAULT_GROUPS = "X25519:P-256:P-384"

#: OpenSSL's level 2: 112-bit security, no SHA-1 signatures, no TLS below 1.2.
MINIMUM_SECURITY_LEVEL = 2

#: The protocols offered by ALPN. A client offering only others is refused
#: (``no_application_protocol``), so that no HTTP/1.1 bytes reach an h2-only client.
ALPN = ("http/1.1",)

#: The protocol an ACME CA offers to validate a name by TLS-ALPN-01 (RFC 8737). A client
#: offering it gets the challenge certificate of the name it sends, or is refused; the
#: front end (``_front.c``, ``ACME_TLS``) knows it too.
ACME_TLS_ALPN = "acme-tls/1"

#: TLS 1.3 session tickets sent after each full handshake (a client may open two
#: connections at once and resume both).
SESSION_TICKETS = 2

#: How long a ticket may be used (seconds): the rotation period of the ticket keys
#: (``tls/tickets.py``), so that a ticket is never older than the oldest key still accepted.
TICKET_LIFETIME = 3600


@dataclass(frozen=True)
class TlsPolicy:
    """Which TLS versions, ciphers and groups every listener accepts.

    Hashable, so that it is part of the identity of a cached context: a policy change builds
    new contexts instead of mutating live ones. ``prefer_server_ciphers`` stays off: the client
    knows best which cipher is fast on its hardware (Mozilla's advice), and every cipher allowed
    here is strong.
    """

    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    maximum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    tls12_ciphers: str = DEFAULT_TLS12_CIPHERS
    tls13_ciphersuites: str = DEFAULT_TLS13_CIPHERSUITES
    groups: str = DEFAULT_GROUPS
    alpn: tuple[str, ...] = ALPN
    session_tickets: int = SESSION_TICKETS
    prefer_server_ciphers: bool = False

    def __post_init__(self) -> None:
        for field, version in (
            ("minimum_version", self.minimum_version),
            ("maximum_version", self.maximum_version),
        ):
            if version not in VERSIONS:
                raise ValidationError(field, f"{version!r} cannot be chosen: use TLS 1.2 or 1.3")
        if self.minimum_version > self.maximum_version:
            raise ValidationError("minimum_version", "must not be above the maximum version")
        for field, text in (
            ("tls12_ciphers", self.tls12_ciphers),
            ("tls13_ciphersuites", self.tls13_ciphersuites),
            ("groups", self.groups),
        ):
            if not text.isascii() or not text.isprintable() or not text.strip():
                raise ValidationError(field, "use an OpenSSL list (printable ASCII)")
        # Fail here, where the caller can tell which setting is wrong, not at bind time.
        _check(self.new_context())

    def for_challenges(self) -> TlsPolicy:
        """The policy of the TLS-ALPN-01 challenge contexts: this one, with ``acme-tls/1``
        the only protocol and no session tickets (the connection ends after its handshake)."""
        return _challenge_policy(self)

    def new_context(
        self, chain_pem: bytes | None = None, key_pem: bytearray | None = None
    ) -> Context:
        """A server context with this policy, presenting ``chain_pem`` (leaf first) with
        ``key_pem`` if given. ``key_pem`` is wiped (zeroed) once OpenSSL has read it.

        Raises ``ValueError`` naming the value OpenSSL refused, in OpenSSL's words.
        """
        try:
            return context_class()(
                minimum_version=int(self.minimum_version),
                maximum_version=int(self.maximum_version),
                ciphers=self.tls12_ciphers,
                ciphersuites=self.tls13_ciphersuites,
                groups=self.groups,
                alpn=b"".join(bytes([len(p)]) + p.encode() for p in self.alpn),
                tickets=self.session_tickets,
                ticket_lifetime=TICKET_LIFETIME,
                prefer_server_ciphers=self.prefer_server_ciphers,
                chain=chain_pem,
                key=key_pem,
            )
        except ValueError as error:
            if chain_pem is not None:
                raise
            field, _, reason = str(error).partition(": ")
            raise ValidationError(field, _explain(field, reason, self)) from None


@functools.lru_cache(maxsize=8)
def _challenge_policy(policy: TlsPolicy) -> TlsPolicy:
    """Made once per policy: making one builds a context to check it."""
    return dataclasses.replace(policy, alpn=(ACME_TLS_ALPN,), session_tickets=0)


def _explain(field: str, reason: str, policy: TlsPolicy) -> str:
    value = {
        "tls12_ciphers": policy.tls12_ciphers,
        "tls13_ciphersuites": policy.tls13_ciphersuites,
        "groups": policy.groups,
    }.get(field)
    if value is None:
        return reason
    what = "group" if field == "groups" else "cipher"
    return f"{value!r} selects no {what} OpenSSL knows ({reason})"


def _check(context: Context) -> None:
    """Refuse what the cipher strings let through that a server must never offer."""
    if context.security_level < MINIMUM_SECURITY_LEVEL:
        raise ValidationError(
            "tls12_ciphers",
            f"lowers OpenSSL's security level to {context.security_level}; "
            f"it must stay at {MINIMUM_SECURITY_LEVEL} or above",
        )
    for name, authentication, encryption in context.ciphers():
        if not encryption:
            raise ValidationError(
                "tls12_ciphers", f"enables {name}, which does not encrypt (add !eNULL)"
            )
        if authentication == "AuthNULL":
            raise ValidationError(
                "tls12_ciphers",
                f"enables {name}, which does not authenticate the server (add !aNULL)",
            )
