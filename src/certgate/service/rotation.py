"""``certgate key rotate``: a new master key, and every sealed secret of the store re-sealed
with it in one transaction (issue 12, point 5).

The order makes every crash safe. The new key is written beside the old one first
(``master.key.new``, 0600, flushed to disk); then one transaction locks the store's key record,
re-seals every private key, the ACME account key and the SMTP relay's password, and records the
new key; only after its commit does the new file replace ``master.key`` (and the keys of
``certgate serve``'s cached state become the store's, sealed with it). A crash before the
commit leaves the store and ``master.key`` as they were (the stray ``master.key.new`` is
overwritten by the next rotation); a crash after it leaves a store sealed with the key in
``master.key.new``, which the next command on this data directory puts in place
(``Appliance.open``; ``certgate serve`` likewise). A secret that does not open with the current
key (a damaged row) stops the rotation before its commit, naming it: nothing is changed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from certgate.errors import SealingError
from certgate.service import acme_account, email, keystore, master_key, served_state
from certgate.service.appliance import Appliance
from certgate.store import master_key as records
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.sealing import (
    MASTER_KEY_FILE,
    PENDING_KEY_FILE,
    Sealer,
    settle_pending,
    write_master_key,
)


@dataclass(frozen=True)
class Rotated:
    key_file: Path  # the new key: copy it to every other node
    generation: int  # the new key's
    private_keys: int
    other_secrets: int  # the ACME account key, the SMTP password
    made_at: str


class _Resealer:
    """Opens with the old key and seals with the new; a secret that does not open stops the
    rotation (its transaction is rolled back), naming the secret."""

    def __init__(self, old: Sealer, new: Sealer) -> None:
        self._old, self._new = old, new

    def __call__(self, associated: str, sealed: bytes, what: str) -> bytes:
        try:
            plaintext = self._old.unseal(associated, sealed)
        except SealingError:
            raise SealingError(
                f"the master key was not rotated: {what} does not open with the current master "
                "key (a damaged row). Delete it (or restore it from a backup) and rotate again; "
                "nothing was changed"
            ) from None
        return self._new.seal(associated, plaintext)


def rotate(app: Appliance, actor: Actor = APPLIANCE) -> Rotated:
    """A new master key for the whole store; this node's ``master.key`` becomes it."""
    new = Sealer.generate()
    pending = app.data_dir / PENDING_KEY_FILE
    made_at = master_key.made_at(app.data_dir)
    written = committing = False
    try:
        with app.store.transaction(actor) as repository:
            row = master_key.check(repository, app.sealer, lock="update")
            write_master_key(pending, new.master_key)
            written = True
            reseal = _Resealer(app.sealer, new)
            keys = keystore.reseal_keys(repository, reseal)
            others = acme_account.reseal_account_key(repository, reseal)
            others += email.reseal_password(repository, reseal)
            records.replace(repository, row, app.sealer.key_id, new.key_id, app.now(), made_at)
            repository.audit(
                AuditAction.MASTER_KEY_ROTATE,
                f"master key generation {row.generation}",
                f"{keys} private key(s) and {others} other secret(s) re-sealed; the new key is "
                f"{made_at}",
            )
            rotated = Rotated(
                (app.data_dir / MASTER_KEY_FILE).resolve(), row.generation, keys, others, made_at
            )
            committing = True
    except BaseException:
        # Rolled back for sure: the new key opens nothing. A rotation refused before it wrote
        # leaves master.key.new alone: it may be the key another one has just committed.
        if written and not committing:
            with contextlib.suppress(OSError):
                pending.unlink()
        # else the commit may have happened: master.key.new is kept, and settled by the
        # next command once the store says which key it holds
        raise
    settle_pending(app.data_dir, new.key_id)
    app.sealer = new
    with app.store.reading() as repository:
        served_state.replace_sealed(app.data_dir, repository.key)
    return rotated
