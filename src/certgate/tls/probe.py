"""A TLS client's view of an address: connect, handshake with a server name, and keep what
was presented (the whole chain, in the order sent), the protocol and the cipher agreed.

Nothing is verified here (the client accepts whatever is sent); judging the chain is
``certgate.pki.trust``'s. A failure to connect or to complete the handshake is a
:class:`ProbeFailure` with a sentence an administrator can act on, never an exception.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

#: ``_ssl.ENCODING_DER``: the format argument of ``_ssl.Certificate.public_bytes``.
_ENCODING_DER = 2


@dataclass(frozen=True)
class Presented:
    """A completed handshake."""

    chain: tuple[bytes, ...]  # DER, leaf first, as the server sent it
    protocol: str  # "TLSv1.3"
    cipher: str  # OpenSSL's name: "TLS_AES_256_GCM_SHA384"
    alpn: str | None = None  # the application protocol selected, when some were offered


@dataclass(frozen=True)
class ProbeFailure:
    """No handshake: ``reason`` says why, as a sentence; ``reached``: whether the TCP
    connection was made (so the server name sent may matter)."""

    reason: str
    reached: bool = True


def probe(
    address: str,
    port: int,
    server_name: str | None,
    timeout: float,
    alpn: Sequence[str] = (),
) -> Presented | ProbeFailure:
    """One handshake with ``address:port`` sending ``server_name`` as SNI (none if None),
    offering the ALPN protocols ``alpn`` (none if empty).

    Blocking: call it from a thread. ``timeout`` bounds the connection and each read.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    where = f"{address} port {port}"
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except ConnectionRefusedError:
        return ProbeFailure(f"nothing is listening on {where} (connection refused)", False)
    except TimeoutError:
        return ProbeFailure(f"{where} did not answer within {timeout:g} s", False)
    except OSError as error:
        return ProbeFailure(f"cannot connect to {where}: {error.strerror or error}", False)
    try:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return Presented(
                _chain(tls),
                tls.version() or "",
                (tls.cipher() or ("",))[0],
                tls.selected_alpn_protocol(),
            )
    except TimeoutError:
        return ProbeFailure(f"{where} accepted the connection but the TLS handshake timed out")
    except ssl.SSLError as error:
        if error.reason == "WRONG_VERSION_NUMBER":  # the answer was no TLS record at all
            return ProbeFailure(
                f"{where} refused the TLS handshake: what answers there does not speak TLS "
                "(another program on the port?)"
            )
        return ProbeFailure(f"{where} refused the TLS handshake: {error.reason or error}")
    except OSError as error:
        return ProbeFailure(
            f"{where} closed the connection during the TLS handshake: {error.strerror or error}"
        )
    finally:
        raw.close()


def _chain(tls: ssl.SSLSocket) -> tuple[bytes, ...]:
    """Every certificate sent. Python 3.13 has ``get_unverified_chain()``; 3.10-3.12 have it
    on the underlying ``_ssl`` object only."""
    public = getattr(tls, "get_unverified_chain", None)
    if public is not None:
        return tuple(public())
    inner = getattr(tls, "_sslobj", None)
    chain = getattr(inner, "get_unverified_chain", None)
    if chain is not None:
        return tuple(certificate.public_bytes(_ENCODING_DER) for certificate in chain() or ())
    leaf = tls.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()
