"""The appliance: one data directory (master key, SQLite file) or a database URL.

Every face opens an ``Appliance`` and calls the service modules with it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certgate.errors import NotInitialisedError
from certgate.store.database import default_url
from certgate.store.repository import Store
from certgate.store.sealing import MASTER_KEY_FILE, Sealer

DATA_DIR_ENV = "CERTGATE_DATA_DIR"
DATABASE_URL_ENV = "CERTGATE_DATABASE_URL"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Appliance:
    data_dir: Path
    store: Store
    sealer: Sealer
    clock: Callable[[], dt.datetime] = field(default=_utcnow)
    #: Per-process caches keyed by the store's revision (see certificates.cached_...).
    cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, data_dir: Path, database_url: str | None = None) -> Appliance:
        """Open an initialised appliance, or say how to initialise it."""
        if not (data_dir / MASTER_KEY_FILE).exists():
            raise NotInitialisedError(
                f"{data_dir} is not an initialised certgate data directory: run 'certgate init'"
            )
        store = Store(database_url or os.environ.get(DATABASE_URL_ENV) or default_url(data_dir))
        if not store.is_ready():
            store.close()
            raise NotInitialisedError(
                "the database is not initialised or is older than this certgate: "
                "run 'certgate init'"
            )
        return cls(data_dir, store, Sealer.from_file(data_dir / MASTER_KEY_FILE))

    @classmethod
    def create(cls, data_dir: Path, database_url: str | None = None) -> Appliance:
        """Make the data directory, master key and schema (idempotent)."""
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        sealer = Sealer.from_file(data_dir / MASTER_KEY_FILE, create=True)
        store = Store(database_url or os.environ.get(DATABASE_URL_ENV) or default_url(data_dir))
        store.migrate()
        return cls(data_dir, store, sealer)

    def now(self) -> dt.datetime:
        return self.clock()

    def close(self) -> None:
        self.store.close()
