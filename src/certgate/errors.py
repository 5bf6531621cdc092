"""Every failure a user can cause, as one exception family with a stable code.

The faces (CLI, pages, API) show ``str(error)`` to the user and use ``code`` as the stable,
machine-readable type (the API's problem+json ``type``). Each class says its HTTP ``status``
here, so no face guesses: what the user can fix is 4xx, a fault of the server (the master key
does not open a key, no store) is 5xx. No message ever contains key material.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from certgate.fields import label


class CertgateError(Exception):
    """Base of every error certgate reports to a user."""

    code = "error"
    status = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled whole, whatever a subclass's ``__init__`` takes: an import run in a child
        process (``service/import_process.py``) raises its error in the parent as it was."""
        return (_rebuilt, (type(self), self.message, self.__dict__))


def _rebuilt(cls: type[CertgateError], message: str, state: dict[str, Any]) -> CertgateError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ValidationError(CertgateError):
    """A field of the user's input is not acceptable.

    ``field`` is the field's stable key (``subject.common_name``,
    ``subject_alternative_names[2]``, see ``fields.py``); the message names its label.
    """

    code = "validation"
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{label(field)}: {reason}")
        self.field = field
        self.label = label(field)
        self.reason = reason


class NotFoundError(CertgateError):
    """The named certificate, request, address or user does not exist."""

    code = "not-found"
    status = HTTPStatus.NOT_FOUND


class ConflictError(CertgateError):
    """The operation would break a rule of the store (duplicate, protected object)."""

    code = "conflict"
    status = HTTPStatus.CONFLICT


class InUseError(ConflictError):
    """The object is still used (a certificate that secures IP addresses)."""

    code = "in-use"


class NothingToReplaceError(ConflictError):
    """A replacement of a certificate that secures no address: there is nothing to move."""

    code = "nothing-to-replace"


class ProtectedError(ConflictError):
    """The factory certificate can never be deleted."""

    code = "protected"


class ConfirmationRequiredError(ConflictError):
    """The operation loses something that cannot be had back (the last address: access to
    the pages): it is done only when the caller confirms it."""

    code = "confirmation-required"


class UnconfirmedChangeError(ConfirmationRequiredError):
    """An assignment or replacement clients may refuse (another root than an address presents
    now, a certificate expired, not yet valid, with an incomplete chain or not covering the
    address's hostnames): applied only when the caller confirms it. ``concerns``: each
    reason, per address (``service.guard.Concern``), for the faces to show."""

    code = "unconfirmed-change"
    status = HTTPStatus.CONFLICT

    def __init__(self, message: str, concerns: Sequence[object]) -> None:
        super().__init__(message)
        self.concerns = tuple(concerns)


class AlreadyServingError(ConflictError):
    """A ``certgate serve`` already runs on this data directory."""

    code = "already-serving"


class KeyMissingError(CertgateError):
    """The operation needs a private key that the store does not hold."""

    code = "key-missing"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


# --- errors while reading files -------------------------------------------------------------


class ImportFormatError(CertgateError):
    """A file could not be read as any supported certificate or key format."""

    code = "import-format"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class PasswordRequiredError(ImportFormatError):
    """The file is encrypted and no password was given."""

    code = "password-required"


class WrongPasswordError(ImportFormatError):
    """The file is encrypted and the password given does not open it."""

    code = "wrong-password"


class NotACertificateError(ImportFormatError):
    """The file holds a valid object of a kind certgate does not import (CRL, public key...)."""

    code = "not-a-certificate"


class CorruptDataError(ImportFormatError):
    """The file looks like a supported format but is truncated or damaged."""

    code = "corrupt-data"


class FileTooLargeError(ImportFormatError):
    """The file is larger than certgate accepts."""

    code = "file-too-large"


class UnsupportedKeyError(ImportFormatError):
    """A private key of an algorithm certgate cannot use (e.g. DSA)."""

    code = "unsupported-key"


class ExcessiveWorkError(ImportFormatError):
    """The file asks for more key derivation work than certgate does for one file."""

    code = "excessive-work"


class BackupError(CertgateError):
    """A backup cannot be written, or a file cannot be restored (damaged, not a backup, a
    target that is not empty)."""

    code = "backup"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class WrongPassphraseError(BackupError):
    """The passphrase given does not open the backup."""

    code = "wrong-passphrase"


class MailError(CertgateError):
    """The mail relay could not be reached or refused a message (refused connection, failed
    TLS, wrong username or password, a refused sender or recipient, no answer in time). The
    message gives the relay's own answer verbatim; never the password."""

    code = "mail"
    status = HTTPStatus.BAD_GATEWAY


class ExportError(CertgateError):
    """The requested export cannot be produced (nothing included, no passphrase...)."""

    code = "export"


# --- who is calling -------------------------------------------------------------------------


class AuthenticationError(CertgateError):
    """No valid credentials: no session or token, an expired session, a wrong password."""

    code = "unauthenticated"
    status = HTTPStatus.UNAUTHORIZED


class ThrottledError(AuthenticationError):
    """Too many failed logins from this client or for this username."""

    code = "throttled"
    status = HTTPStatus.TOO_MANY_REQUESTS


class ForbiddenError(CertgateError):
    """The caller's role does not allow this (an auditor changes nothing), or no CSRF token."""

    code = "forbidden"
    status = HTTPStatus.FORBIDDEN


# --- faults of the server, not of the request -------------------------------------------------


class NotInitialisedError(CertgateError):
    """The data directory holds no store yet (``certgate init`` was not run)."""

    code = "not-initialised"
    status = HTTPStatus.SERVICE_UNAVAILABLE


class SealingError(CertgateError):
    """The master key is unusable or does not open a sealed private key."""

    code = "sealing"
    status = HTTPStatus.INTERNAL_SERVER_ERROR


class DataDirectoryError(CertgateError):
    """The data directory cannot be made or written (the message names the path)."""

    code = "data-directory"
    status = HTTPStatus.SERVICE_UNAVAILABLE


class MasterKeyMissingError(SealingError):
    """The data directory has no master key: the store's private keys cannot be opened."""

    code = "master-key-missing"
    status = HTTPStatus.SERVICE_UNAVAILABLE


class ImportProcessError(CertgateError):
    """The process that ran a large import ended without an answer (killed, out of memory)."""

    code = "import-process"
    status = HTTPStatus.INTERNAL_SERVER_ERROR


class StoreUnavailableError(CertgateError):
    """The database cannot be used: damaged, read-only, unreachable (a PostgreSQL server
    stopped or out of reach: every change is refused, while ``certgate serve`` goes on
    serving its last state). ``store.database.unavailable`` makes each one: "store
    unavailable:", then the database and what to do."""

    code = "store-unavailable"
    status = HTTPStatus.SERVICE_UNAVAILABLE


class FrontEndMissingError(CertgateError):
    """The TLS front end (the C extension) is not built for this Python, or cannot be used."""

    code = "front-end-missing"
    status = HTTPStatus.SERVICE_UNAVAILABLE


class NothingToServeError(CertgateError):
    """``certgate serve`` started and none of its addresses could be served."""

    code = "nothing-to-serve"
    status = HTTPStatus.SERVICE_UNAVAILABLE


class AcmeError(CertgateError):
    """The ACME CA could not be reached, or refused what was asked (a 502: the fault is
    the CA's answer, quoted). ``document`` is the CA's problem document (RFC 7807 JSON, as
    it sent it) when there is one."""

    code = "acme"
    status = HTTPStatus.BAD_GATEWAY

    def __init__(self, message: str, document: str | None = None) -> None:
        super().__init__(message)
        self.document = document
        #: when the CA asked to be asked again (its ``Retry-After``), if it did
        self.retry_after: dt.datetime | None = None


class AcmeNotReadyError(CertgateError):
    """What an ACME order needs on the appliance is missing: no account, or no running
    ``certgate serve`` to answer the CA's challenges."""

    code = "acme-not-ready"
    status = HTTPStatus.CONFLICT
