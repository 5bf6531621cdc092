"""Loading the front end (the C extension ``certgate.tls._front``), with a failure in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from certgate.errors import FrontEndMissingError

if TYPE_CHECKING:
    from certgate.tls._front import Context, Front


def _load() -> tuple[type[Front], type[Context]]:
    try:
        from certgate.tls._front import Context, Front
    except ImportError as error:
        raise FrontEndMissingError(
            f"the TLS front end cannot be loaded ({error}); run scripts/setup to build it"
        ) from None
    return Front, Context


def front_class() -> type[Front]:
    """``_front.Front``, or :class:`FrontEndMissingError` saying how to build it."""
    return _load()[0]


def context_class() -> type[Context]:
    """``_front.Context``, or :class:`FrontEndMissingError` saying how to build it."""
    return _load()[1]


def front_openssl_version() -> str:
    """The OpenSSL the front end was built against, or why it cannot be loaded."""
    try:
        from certgate.tls._front import OPENSSL_VERSION
    except ImportError:
        return "not built (run scripts/setup)"
    return OPENSSL_VERSION
