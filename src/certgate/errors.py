"""Every failure a user can cause, as one exception family with a stable code.

The faces (CLI, pages, API) show ``str(error)`` to the user and use ``code`` as the stable,
machine-readable type (the API's problem+json ``type``). Each class says its HTTP ``status``
here, so no face guesses: what the user can fix is 4xx, a fault of the server (the master key
does not open a key, no store) is 5xx. No message ever contains key material.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from certgate.fields import label


class CertgateError(Exception):
    """Base of every error certgate reports to a user.

    A subclass names its code and status in its header, ``class NotFoundError(CertgateError,
    code="not-found", status=HTTPStatus.NOT_FOUND)``; without them it keeps its parent's.
    """

    code: ClassVar[str] = "error"
    status: ClassVar[HTTPStatus] = HTTPStatus.BAD_REQUEST

    def __init_subclass__(
        cls, *, code: str | None = None, status: HTTPStatus | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status

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


class ValidationError(CertgateError, code="validation", status=HTTPStatus.UNPROCESSABLE_ENTITY):
    """A field of the user's input is not acceptable.

    ``field`` is the field's stable key (``subject.common_name``,
    ``subject_alternative_names[2]``, see ``fields.py``); the message names its label.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{label(field)}: {reason}")
        self.field = field
        self.label = label(field)
        self.reason = reason


class NotFoundError(CertgateError, code="not-found", status=HTTPStatus.NOT_FOUND):
    """The named certificate, request, address or user does not exist."""


class ConflictError(CertgateError, code="conflict", status=HTTPStatus.CONFLICT):
    """The operation would break a rule of the store (duplicate, protected object)."""


class InUseError(ConflictError, code="in-use"):
    """The object is still used (a certificate that secures IP addresses)."""


class NothingToReplaceError(ConflictError, code="nothing-to-replace"):
    """A replacement of a certificate that secures no address: there is nothing to move."""


class ProtectedError(ConflictError, code="protected"):
    """The factory certificate can never be deleted."""


class ConfirmationRequiredError(ConflictError, code="confirmation-required"):
    """The operation loses something that cannot be had back (the last address: access to
    the pages): it is done only when the caller confirms it."""


class UnknownNodeError(ConfirmationRequiredError, code="unknown-node"):
    """An address pinned to a node no ``certgate serve`` of this store has run as: a typing
    mistake would leave the address served by nobody, so it is pinned only when the caller
    confirms (a node provisioned before its first start). ``known``: the nodes that have run."""

    def __init__(self, message: str, known: Sequence[str]) -> None:
        super().__init__(message)
        self.known = tuple(known)


class UnconfirmedChangeError(
    ConfirmationRequiredError, code="unconfirmed-change", status=HTTPStatus.CONFLICT
):
    """An assignment or replacement clients may refuse (another root than an address presents
    now, a certificate expired, not yet valid, with an incomplete chain or not covering the
    address's hostnames): applied only when the caller confirms it. ``concerns``: each
    reason, per address (``service.guard.Concern``), for the faces to show."""

    def __init__(self, message: str, concerns: Sequence[object]) -> None:
        super().__init__(message)
        self.concerns = tuple(concerns)


class UnassignedCertificateError(ConflictError, code="certificate-unassigned"):
    """An ACME order issued its certificate, but the guard kept it off the addresses the
    order named (a concern the order could not foresee, not confirmed): the certificate is
    in the store, unassigned; assigning it is a change of its own. Not an
    :class:`UnconfirmedChangeError`: sending the order again with ``confirm`` would have the
    CA issue another certificate. ``concerns`` as there."""

    def __init__(self, message: str, concerns: Sequence[object], certificate_id: int) -> None:
        super().__init__(message)
        self.concerns = tuple(concerns)
        self.certificate_id = certificate_id


class AlreadyServingError(ConflictError, code="already-serving"):
    """A ``certgate serve`` already runs on this data directory, or as this node on another
    host."""


class KeyMissingError(CertgateError, code="key-missing", status=HTTPStatus.UNPROCESSABLE_ENTITY):
    """The operation needs a private key that the store does not hold."""


# --- errors while reading files -------------------------------------------------------------


class ImportFormatError(
    CertgateError, code="import-format", status=HTTPStatus.UNPROCESSABLE_ENTITY
):
    """A file could not be read as any supported certificate or key format."""


class PasswordRequiredError(ImportFormatError, code="password-required"):
    """The file is encrypted and no password was given."""


class WrongPasswordError(ImportFormatError, code="wrong-password"):
    """The file is encrypted and the password given does not open it."""


class NotACertificateError(ImportFormatError, code="not-a-certificate"):
    """The file holds a valid object of a kind certgate does not import (CRL, public key...)."""


class CorruptDataError(ImportFormatError, code="corrupt-data"):
    """The file looks like a supported format but is truncated or damaged."""


class FileTooLargeError(ImportFormatError, code="file-too-large"):
    """The file is larger than certgate accepts."""


class UnsupportedKeyError(ImportFormatError, code="unsupported-key"):
    """A private key of an algorithm certgate cannot use (e.g. DSA)."""


class ExcessiveWorkError(ImportFormatError, code="excessive-work"):
    """The file asks for more key derivation work than certgate does for one file."""


class BackupError(CertgateError, code="backup", status=HTTPStatus.UNPROCESSABLE_ENTITY):
    """A backup cannot be written, or a file cannot be restored (damaged, not a backup, a
    target that is not empty)."""


class WrongPassphraseError(BackupError, code="wrong-passphrase"):
    """The passphrase given does not open the backup."""


class MailError(CertgateError, code="mail", status=HTTPStatus.BAD_GATEWAY):
    """The mail relay could not be reached or refused a message (refused connection, failed
    TLS, wrong username or password, a refused sender or recipient, no answer in time). The
    message gives the relay's own answer verbatim; never the password."""


class MessageRefusedError(MailError):
    """The relay refused this message at the end of its conversation (a content filter, its
    size): another message may still go."""


class ExportError(CertgateError, code="export"):
    """The requested export cannot be produced (nothing included, no passphrase...)."""


# --- who is calling -------------------------------------------------------------------------


class AuthenticationError(CertgateError, code="unauthenticated", status=HTTPStatus.UNAUTHORIZED):
    """No valid credentials: no session or token, an expired session, a wrong password."""


class ThrottledError(AuthenticationError, code="throttled", status=HTTPStatus.TOO_MANY_REQUESTS):
    """Too many failed logins from this client or for this username; ``retry_after``: in
    how many seconds the next attempt is counted again (every face's ``Retry-After``)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ForbiddenError(CertgateError, code="forbidden", status=HTTPStatus.FORBIDDEN):
    """The caller's role does not allow this (an auditor changes nothing), or no CSRF token."""


# --- faults of the server, not of the request -------------------------------------------------


class NotInitialisedError(
    CertgateError, code="not-initialised", status=HTTPStatus.SERVICE_UNAVAILABLE
):
    """The data directory holds no store yet (``certgate init`` was not run)."""


class SchemaNewerError(CertgateError, code="schema-newer", status=HTTPStatus.SERVICE_UNAVAILABLE):
    """The store's schema is newer than this certgate's: a newer certgate (another node of
    the cluster, upgraded first) migrated it. Upgrading this one is the way out."""


class SealingError(CertgateError, code="sealing", status=HTTPStatus.INTERNAL_SERVER_ERROR):
    """The master key is unusable or does not open a sealed private key."""


class DamagedRowError(CertgateError, code="damaged", status=HTTPStatus.INTERNAL_SERVER_ERROR):
    """A row of the store no longer holds what was written (a failing disk, a hand edit):
    named, so that it can be deleted or restored from a backup; nothing else is touched."""


class DataDirectoryError(
    CertgateError, code="data-directory", status=HTTPStatus.SERVICE_UNAVAILABLE
):
    """The data directory cannot be made or written (the message names the path)."""


class MasterKeyMissingError(
    SealingError, code="master-key-missing", status=HTTPStatus.SERVICE_UNAVAILABLE
):
    """The data directory has no master key: the store's private keys cannot be opened."""


class WrongMasterKeyError(
    SealingError, code="wrong-master-key", status=HTTPStatus.UNPROCESSABLE_ENTITY
):
    """A master key given to join a store, or to install on a node, does not open it."""


class StaleMasterKeyError(
    SealingError, code="stale-master-key", status=HTTPStatus.SERVICE_UNAVAILABLE
):
    """This node's master key was replaced by ``certgate key rotate`` on another node: it
    opens none of the store's keys until the new one is installed."""


class AlreadyInitialisedError(ConflictError, code="already-initialised"):
    """``certgate init`` without ``--join`` on a store another node initialised."""


class ImportProcessError(
    CertgateError, code="import-process", status=HTTPStatus.INTERNAL_SERVER_ERROR
):
    """The process that ran a large import ended without an answer (killed, out of memory)."""


class StoreUnavailableError(
    CertgateError, code="store-unavailable", status=HTTPStatus.SERVICE_UNAVAILABLE
):
    """The database cannot be used: damaged, read-only, unreachable (a PostgreSQL server
    stopped or out of reach: every change is refused, while ``certgate serve`` goes on
    serving its last state). ``store.database.unavailable`` makes each one: "store
    unavailable:", then the database and what to do."""


class FrontEndMissingError(
    CertgateError, code="front-end-missing", status=HTTPStatus.SERVICE_UNAVAILABLE
):
    """The TLS front end (the C extension) is not built for this Python, or cannot be used."""


class NothingToServeError(
    CertgateError, code="nothing-to-serve", status=HTTPStatus.SERVICE_UNAVAILABLE
):
    """``certgate serve`` started and none of its addresses could be served."""


class AcmeError(CertgateError, code="acme", status=HTTPStatus.BAD_GATEWAY):
    """The ACME CA could not be reached, or refused what was asked (a 502: the fault is
    the CA's answer, quoted). ``document`` is the CA's problem document (RFC 7807 JSON, as
    it sent it) when there is one."""

    def __init__(self, message: str, document: str | None = None) -> None:
        super().__init__(message)
        self.document = document
        #: when the CA asked to be asked again (its ``Retry-After``), if it did
        self.retry_after: dt.datetime | None = None


def problem_type(document: str | None) -> str | None:
    """The ``type`` of a CA's problem document (RFC 7807 JSON), None if it has none."""
    try:
        parsed = json.loads(document or "null")
    except ValueError:
        return None
    return str(parsed.get("type")) if isinstance(parsed, dict) else None


class AcmeNotReadyError(CertgateError):
    """What an ACME order needs on the appliance is missing: no account, or no running
    ``certgate serve`` to answer the CA's challenges."""

    code = "acme-not-ready"
    status = HTTPStatus.CONFLICT


def internal_error(error: BaseException) -> str:
    """What a user is told of a fault that is no CertgateError: its kind only (its message
    could carry anything), the details left to the log."""
    return f"internal error ({type(error).__name__}); please report it"
