"""Private keys in and out of the sealed store. Key material stays in memory only."""

from __future__ import annotations

from certgate.errors import KeyMissingError
from certgate.pki.keys import (
    PrivateKey,
    describe_public_key,
    private_key_from_pkcs8_der,
    private_key_to_pkcs8_der,
    public_key_fingerprint,
)
from certgate.store.models import CertificateRow, KeyRow
from certgate.store.repository import Repository
from certgate.store.sealing import Sealer


def put_private_key(repository: Repository, sealer: Sealer, key: PrivateKey) -> tuple[KeyRow, bool]:
    """Seal and store ``key`` unless it is there already; returns (row, added)."""
    fingerprint = public_key_fingerprint(key.public_key())
    existing = repository.key(fingerprint)
    if existing is not None:
        return existing, False
    row = KeyRow(
        public_key_fingerprint=fingerprint,
        algorithm=describe_public_key(key.public_key()),
        sealed=sealer.seal(fingerprint, private_key_to_pkcs8_der(key)),
    )
    repository.add(row)
    return row, True


def get_private_key(
    repository: Repository, sealer: Sealer, public_key_fingerprint: str
) -> PrivateKey:
    row = repository.key(public_key_fingerprint)
    if row is None:
        raise KeyMissingError(
            "the private key of this certificate is not available: import it, or the "
            "PKCS#12 file that holds it"
        )
    return private_key_from_pkcs8_der(sealer.unseal(row.public_key_fingerprint, row.sealed))


def remove_unused_key(repository: Repository, public_key_fingerprint: str) -> bool:
    """Delete a key that no certificate or request uses any more; True if deleted."""
    if repository.certificates_with_public_key(public_key_fingerprint):
        return False
    if repository.requests_with_public_key(public_key_fingerprint):
        return False
    row = repository.key(public_key_fingerprint)
    if row is None:
        return False
    repository.delete(row)
    return True


def require_key(
    repository: Repository, certificate: CertificateRow, refused: str, instead: str
) -> None:
    """Refuse what needs the certificate's private key when the store does not hold it:
    "certificate 'X' {refused}: its Private Key is not Available. Import ..., or {instead}"."""
    if repository.key(certificate.public_key_fingerprint) is None:
        raise KeyMissingError(
            f"certificate {certificate.friendly_name!r} {refused}: its Private Key is not "
            "Available. Import the private key (or the PKCS#12 file that holds it), or " + instead
        )
