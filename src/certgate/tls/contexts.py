"""Server contexts for served certificates, built once per (certificate, chain, policy).

Building a context costs about a millisecond (parsing PEM, checking the key against the
leaf); a handshake must never pay it, and a plan that changes one address must not rebuild
the others. Contexts are therefore cached and shared by every address that presents the same
certificate under the same policy.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from certgate.tls.plan import ServedCertificate
from certgate.tls.policy import TlsPolicy

if TYPE_CHECKING:
    from certgate.tls._front import Context

#: What identifies a context under one policy: the leaf and the exact chain sent with it.
ContextKey = tuple[str, bytes]


def context_key(certificate: ServedCertificate) -> ContextKey:
    # The chain is part of the identity: a changed chain keeps the leaf's fingerprint.
    return (certificate.fingerprint, certificate.chain_pem)


class ContextError(Exception):
    """A certificate could not be made into a context; the message never holds key material."""


def build_context(certificate: ServedCertificate, policy: TlsPolicy) -> Context:
    """A context presenting ``certificate`` under ``policy``.

    The front end reads the chain and key from memory (never a file); the key goes over in a
    copy that it wipes as soon as OpenSSL has parsed it.
    """
    what = f"certificate {certificate.fingerprint[:16]} cannot be served"
    try:
        return policy.new_context(certificate.chain_pem, bytearray(certificate.key_pem))
    except ValueError as error:
        reason = str(error).partition(": ")[2].lower()
        raise ContextError(f"{what}: OpenSSL cannot use its chain or key ({reason})") from None


class ContextCache:
    """The contexts of the current plan, plus a few retired ones, so that flipping an
    assignment back (an undo, a roll-back) does not load the certificate again.

    Keyed under one policy at a time (a new policy builds every context again): keys that
    held the policy made a plan of 1,000 addresses hash it 9,000 times, ~5 ms of every commit.
    """

    def __init__(self, retired: int = 32) -> None:
        self._policy: TlsPolicy | None = None
        self._contexts: dict[ContextKey, Context] = {}
        self._retired: OrderedDict[ContextKey, Context] = OrderedDict()
        self._retired_limit = retired

    async def prepare(
        self, certificates: Iterable[ServedCertificate], policy: TlsPolicy
    ) -> dict[ContextKey, Context | ContextError]:
        """The context (or why there is none) for each certificate of a plan.

        New ones are built in a worker thread so that handshakes on the event loop go on
        while a plan with many new certificates is loaded. The cache then keeps exactly the
        contexts of this plan.
        """
        if policy != self._policy:
            self.clear()
            self._policy = policy
        wanted = {context_key(c): c for c in certificates}
        known = {**self._retired, **self._contexts}
        missing = {key: c for key, c in wanted.items() if key not in known}
        built = await asyncio.to_thread(_build_all, missing, policy) if missing else {}
        result: dict[ContextKey, Context | ContextError] = {}
        for key in wanted:
            result[key] = known[key] if key in known else built[key]
        current = {k: v for k, v in result.items() if not isinstance(v, ContextError)}
        for key, context in self._contexts.items():
            if key not in current:
                self._retired[key] = context
        for key in current:
            self._retired.pop(key, None)
        while len(self._retired) > self._retired_limit:
            self._retired.popitem(last=False)
        self._contexts = current
        return result

    def clear(self) -> None:
        self._contexts.clear()
        self._retired.clear()


def _build_all(
    certificates: dict[ContextKey, ServedCertificate], policy: TlsPolicy
) -> dict[ContextKey, Context | ContextError]:
    built: dict[ContextKey, Context | ContextError] = {}
    for key, certificate in certificates.items():
        try:
            built[key] = build_context(certificate, policy)
        except ContextError as error:
            built[key] = error
    return built
