"""The data plane: one TLS listener per appliance address, each presenting the certificate
assigned to it, reconciled to a plan without restart and without dropping connections."""

from certgate.tls.plan import Deadlines, ListenerPlan, ListenerStatus, ServedCertificate
from certgate.tls.policy import DEFAULT_TLS12_CIPHERS, TlsPolicy
from certgate.tls.server import TlsServer

__all__ = [
    "DEFAULT_TLS12_CIPHERS",
    "Deadlines",
    "ListenerPlan",
    "ListenerStatus",
    "ServedCertificate",
    "TlsPolicy",
    "TlsServer",
]
