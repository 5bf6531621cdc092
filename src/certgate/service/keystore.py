"""Private keys in and out of the sealed store. Key material stays in memory only.

Every secret the store holds sealed (private keys here, the ACME account key, the SMTP
password) is sealed by ``seal`` and opened by ``unseal``: a seal first makes sure this node's
master key is the store's current one (``master_key.require_current``), and a row that does
not open says whether the key is stale rather than the row damaged.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update

from certgate.errors import KeyMissingError, SealingError
from certgate.pki.keys import (
    PrivateKey,
    describe_public_key,
    private_key_from_pkcs8_der,
    private_key_to_pkcs8_der,
    public_key_fingerprint,
)
from certgate.service import master_key
from certgate.store.models import CertificateRow, KeyRow
from certgate.store.repository import Repository
from certgate.store.sealing import Sealer

#: Re-seals one secret under a new master key: (associated data, sealed, what it is) -> sealed.
Reseal = Callable[[str, bytes, str], bytes]
#: Keys read and re-sealed at a time by a rotation: a few MiB of sealed keys in memory.
RESEAL_BATCH = 1000


def seal(repository: Repository, sealer: Sealer, associated: str, plaintext: bytes) -> bytes:
    """Seal a secret that this transaction stores (refused with a stale master key)."""
    master_key.require_current(repository, sealer)
    return sealer.seal(associated, plaintext)


def unseal(repository: Repository, sealer: Sealer, associated: str, sealed: bytes) -> bytes:
    """Open a stored secret; a stale or wrong master key is said as such."""
    try:
        return sealer.unseal(associated, sealed)
    except SealingError:
        problem = master_key.explain(repository, sealer)
        if problem is not None:
            raise problem from None
        raise


def put_private_key(repository: Repository, sealer: Sealer, key: PrivateKey) -> tuple[KeyRow, bool]:
    """Seal and store ``key`` unless it is there already; returns (row, added)."""
    fingerprint = public_key_fingerprint(key.public_key())
    existing = repository.key(fingerprint)
    if existing is not None:
        return existing, False
    row = KeyRow(
        public_key_fingerprint=fingerprint,
        algorithm=describe_public_key(key.public_key()),
        sealed=seal(repository, sealer, fingerprint, private_key_to_pkcs8_der(key)),
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
    return private_key_from_pkcs8_der(
        unseal(repository, sealer, row.public_key_fingerprint, row.sealed)
    )


def reseal_keys(repository: Repository, reseal: Reseal) -> int:
    """Every private key under the new master key (a rotation); returns how many. Read and
    written a batch at a time, by primary key: 100,000 keys took 20 s one flush each, while
    the store's write lock was held. Each batch is read locked (PostgreSQL): a key another
    transaction deletes meanwhile is waited for and left out, not updated after it is gone."""
    count = 0
    last_id = 0
    while batch := repository.session.execute(
        select(KeyRow.id, KeyRow.public_key_fingerprint, KeyRow.sealed)
        .where(KeyRow.id > last_id)
        .order_by(KeyRow.id)
        .limit(RESEAL_BATCH)
        .with_for_update()
    ).all():
        names = repository.certificate_names_by_public_key([row[1] for row in batch])
        values = [
            {"id": key_id, "sealed": reseal(fingerprint, sealed, _key_named(fingerprint, names))}
            for key_id, fingerprint, sealed in batch
        ]
        repository.session.execute(update(KeyRow), values)
        count += len(batch)
        last_id = batch[-1][0]
    return count


def _key_named(fingerprint: str, names: dict[str, str]) -> str:
    what = f"the private key {fingerprint[:16]}"
    if fingerprint in names:
        what += f" (of the certificate {names[fingerprint]!r})"
    return what


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
