"""Every failure a user can cause, as one exception family with a stable code.

The faces (CLI, pages, API) show ``str(error)`` to the user and use ``code`` as the stable,
machine-readable type (the API's problem+json ``type``). No message ever contains key material.
"""

from __future__ import annotations


class CertgateError(Exception):
    """Base of every error certgate reports to a user."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ValidationError(CertgateError):
    """A field of the user's input is not acceptable."""

    code = "validation"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFoundError(CertgateError):
    """The named certificate, request, address or user does not exist."""

    code = "not-found"


class ConflictError(CertgateError):
    """The operation would break a rule of the store (duplicate, protected object)."""

    code = "conflict"


class InUseError(ConflictError):
    """The object is still used (a certificate that secures IP addresses)."""

    code = "in-use"


class ProtectedError(ConflictError):
    """The factory certificate can never be deleted."""

    code = "protected"


class KeyMissingError(CertgateError):
    """The operation needs a private key that the store does not hold."""

    code = "key-missing"


# --- errors while reading files -------------------------------------------------------------


class ImportFormatError(CertgateError):
    """A file could not be read as any supported certificate or key format."""

    code = "import-format"


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


class ExportError(CertgateError):
    """The requested export cannot be produced (nothing included, no passphrase...)."""

    code = "export"
