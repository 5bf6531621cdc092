"""The desired state the tls layer is handed, and what it reports back.

The service layer decides everything (which address presents which certificate, under which
policy); these value objects carry that decision down without any rule of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from certgate.tls.policy import TlsPolicy


@dataclass(frozen=True)
class ServedCertificate:
    """A certificate with its chain and key, ready to present.

    ``key_pem`` is unencrypted PKCS#8 PEM held in memory only: it is never written to disk,
    never logged, and kept out of ``repr`` so that no traceback or debug print shows it.
    """

    fingerprint: str  # SHA-256 of the leaf: how operators and the status name what is served
    chain_pem: bytes  # leaf first, then intermediates (and the root if given)
    key_pem: bytes = field(repr=False)


@dataclass(frozen=True)
class Deadlines:
    """How long each phase of a connection may last, in seconds, as nginx bounds them (its
    directive in brackets), so that no client can hold a connection by being slow.

    The front end times the TLS phases and every write to a client; the HTTP protocol
    (``web/http11.py``, handed these with each connection) times the requests.
    """

    handshake: float = 10.0  # the whole TLS handshake [ssl_handshake_timeout]
    #: the first data after the handshake, and each whole request header [client_header_timeout]
    header: float = 60.0
    body: float = 60.0  # between two reads of a request body [client_body_timeout]
    send: float = 60.0  # between two writes that reach the client, at any time [send_timeout]
    keepalive: float = 75.0  # an idle connection between two requests [keepalive_timeout]
    #: on stop, what requests in flight get before every connection is ended
    shutdown_grace: float = 10.0


@dataclass(frozen=True)
class ListenerPlan:
    """Everything the listeners must look like: one HTTPS port, one policy, the certificate
    of each address (IPv4 or IPv6 text), and the deadlines of every connection.

    ``refused`` holds the addresses that cannot be served as planned, each with the reason
    (its certificate's key cannot be unsealed, say): they are reported, never bound anew, and
    nothing else is held back because of them. ``freebind``: the addresses bound with
    ``IP_FREEBIND``, which may not be on this host yet (a failover pair's shared address,
    held by the other node until it moves here): bound anyway, served when it arrives.
    """

    port: int
    policy: TlsPolicy
    assignments: Mapping[str, ServedCertificate]
    refused: Mapping[str, str] = field(default_factory=dict)
    deadlines: Deadlines = Deadlines()
    #: the plain HTTP listeners' port on the same addresses (0: none; ``tls/plain.py``)
    http_port: int = 0
    #: TLS-ALPN-01 (RFC 8737) challenge certificates by SNI (a lower-case A-label DNS name;
    #: for an IP identifier its reverse-mapping name, RFC 8738 6): a client offering ALPN
    #: ``acme-tls/1`` with that name as SNI gets it, on every address
    challenges: Mapping[str, ServedCertificate] = field(default_factory=dict)
    freebind: frozenset[str] = frozenset()


#: Whether an address accepts connections (``failed``: it could not be bound).
ListenerState = Literal["listening", "failed"]


@dataclass(frozen=True)
class ListenerStatus:
    """What one address is doing now.

    ``state`` says whether the address accepts connections; ``fingerprint`` is the certificate
    it presents (``None`` when not listening). ``error`` is set whenever the plan could not be
    carried out for this address: a bind failure (``failed``), or a certificate that could not
    be loaded while the previous one goes on being served (``listening``, old fingerprint).
    """

    address: str
    port: int
    state: ListenerState
    error: str | None
    fingerprint: str | None
