"""TLS 1.3 session ticket keys: derived from a secret and the clock, so that every worker (and
every node sharing the master key) holds the same keys without talking to the others.

Time is cut into periods of ``TICKET_LIFETIME`` seconds; the key of a period encrypts the tickets
made in it, and the keys of the previous and next periods are accepted too (a ticket made just
before a rotation, a node whose clock is slightly ahead). A ticket is thus usable for at most
two periods, and a key is forgotten two periods after its own.
"""

from __future__ import annotations

import math

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from certgate.tls.policy import TICKET_LIFETIME

#: Key name (16 bytes), AES-256 key, HMAC-SHA256 key: the front end's ``ticket_key``.
KEY_SIZE = 16 + 32 + 32


def ticket_keys(secret: bytes, now: float) -> list[bytes]:
    """The keys for the time ``now`` (Unix seconds): the current one first."""
    period = math.floor(now / TICKET_LIFETIME)
    return [_key(secret, p) for p in (period, period - 1, period + 1)]


def next_rotation(now: float) -> float:
    """When the keys change next (Unix seconds)."""
    return (math.floor(now / TICKET_LIFETIME) + 1) * TICKET_LIFETIME


def _key(secret: bytes, period: int) -> bytes:
    info = b"certgate tls 1.3 session ticket key " + period.to_bytes(8, "big", signed=True)
    return HKDF(hashes.SHA256(), KEY_SIZE, salt=None, info=info).derive(secret)
