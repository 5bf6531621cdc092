"""What the listeners are built from, and the copy of it ``certgate serve`` keeps in its data
directory so that a node started while the database is away serves its last state.

``ServedState`` is read from the store in one transaction (``serving.read_state``): the TLS
settings, each address's certificate ready to present, the refused addresses, and the sealed
key of each served certificate as the store holds it. ``plan`` turns it into the listeners'
``ListenerPlan``, the one way a plan is made, from the store or from the cache.

After each revision that changes what is served, the first worker saves it to
``served-state.json`` (written beside, fsynced, renamed over the old one, 0600): the
chains, and the private keys **still sealed** exactly as in the store — the cache holds no
key the store does not hold the same way; the master key beside it opens them, as it opens
the store's. A serve that cannot reach the store when it starts loads it, unseals the keys
and serves that state until the store answers again.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from certgate.errors import CertgateError
from certgate.pki.keys import private_key_from_pkcs8_der, private_key_to_pkcs8_pem
from certgate.service.appliance import STATE_FILE
from certgate.service.tls_settings import TlsSettings, settings_from
from certgate.store.models import KeyRow
from certgate.store.sealing import Sealer
from certgate.tls import ListenerPlan, ServedCertificate

log = logging.getLogger("certgate.serve")
#: The layout of ``served-state.json``; a file of another format is not read.
FORMAT = 1


@dataclass(frozen=True)
class SealedKey:
    """A served certificate's private key as the store holds it: sealed under the master
    key, with its public-key fingerprint (the sealing's associated data)."""

    key_id: str
    sealed: bytes = field(repr=False)


@dataclass(frozen=True)
class ServedState:
    """Everything the listeners need, from one read of the store (or from the cache)."""

    settings: TlsSettings
    served: Mapping[str, ServedCertificate]  # address -> what it presents
    refused: Mapping[str, str]  # address -> why it cannot be served
    sealed: Mapping[str, SealedKey]  # leaf fingerprint -> its key, sealed (for the cache)
    #: TLS-ALPN-01 challenge certificates by name, while orders wait for their CA: never
    #: cached (a node started from the cache answers none until it reaches the store)
    challenges: Mapping[str, ServedCertificate] = field(default_factory=dict)
    #: the floating addresses among them (no node: every node binds them with IP_FREEBIND)
    floating: frozenset[str] = frozenset()

    def plan(self, port: int | None = None, http_port: int | None = None) -> ListenerPlan:
        """The listeners' plan; ``port`` and ``http_port`` as given to ``certgate serve``
        (None: the settings')."""
        settings = self.settings
        return ListenerPlan(
            port or settings.https_port,
            settings.policy(),
            self.served,
            self.refused,
            settings.deadlines(),
            settings.http_port if http_port is None else http_port,
            self.challenges,
            freebind=self.floating,
        )


@dataclass(frozen=True)
class CachedState:
    """A state loaded from ``served-state.json``: of which revision, saved when."""

    revision: int
    saved_at: dt.datetime
    state: ServedState


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def save(
    data_dir: Path,
    state: ServedState,
    revision: int,
    saved_at: dt.datetime,
    node: str | None = None,
) -> None:
    """Replace the cached state with ``state`` at once: a crash leaves the old file or the
    new one, never half of either. ``node``: the node it was read for (the addresses pinned
    to it, none pinned to another)."""
    certificates: dict[str, dict[str, str]] = {}
    for served in state.served.values():
        sealed = state.sealed[served.fingerprint]
        certificates[served.fingerprint] = {
            "chain_pem": served.chain_pem.decode("ascii"),
            "key_id": sealed.key_id,
            "sealed_key": base64.b64encode(sealed.sealed).decode("ascii"),
        }
    document = {
        "format": FORMAT,
        "revision": revision,
        "saved_at": saved_at.isoformat(),
        "node": node,
        "settings": asdict(state.settings),
        "certificates": certificates,
        "addresses": {address: served.fingerprint for address, served in state.served.items()},
        "refused": dict(state.refused),
        "floating": sorted(state.floating),
    }
    _write_atomically(state_path(data_dir), json.dumps(document, indent=1).encode())


def replace_sealed(data_dir: Path, stored: Callable[[str], KeyRow | None]) -> None:
    """After this node's master key changed ('certgate key rotate', 'certgate key install'):
    each cached key replaced by the store's, ``stored(fingerprint)``, sealed with the new
    key; else a serve started while the store is away would open none of them and refuse
    every address. A cache that cannot be read is left for serve to replace (logged)."""
    path = state_path(data_dir)
    try:
        document = json.loads(path.read_bytes())
        for entry in document["certificates"].values():
            row = stored(entry["key_id"])
            if row is not None:
                entry["sealed_key"] = base64.b64encode(row.sealed).decode("ascii")
        _write_atomically(path, json.dumps(document, indent=1).encode())
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.error("cannot re-seal the cached state %s: %s", path, error)


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def load(data_dir: Path, sealer: Sealer, node: str | None = None) -> CachedState | None:
    """The cached state, its keys unsealed; None when there is none or it cannot be read
    (said in the log), or when it was read for another node than ``node`` (it would bind
    the addresses pinned to that node's name). A key that does not unseal (the master key
    was rotated since) refuses the addresses of its certificate only, as a plan read from
    the store would."""
    path = state_path(data_dir)
    try:
        document = json.loads(path.read_bytes())
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, not {FORMAT}")
        saved_for = document.get("node")  # None: saved before it was recorded
        if node is not None and saved_for is not None and saved_for != node:
            raise ValueError(f"it was saved for node {saved_for!r}; this serve runs as {node!r}")
        revision = int(document["revision"])
        saved_at = dt.datetime.fromisoformat(document["saved_at"])
        settings = settings_from(document["settings"])
        ready = {
            fingerprint: _ready(sealer, fingerprint, entry)
            for fingerprint, entry in document["certificates"].items()
        }
        served: dict[str, ServedCertificate] = {}
        refused = {str(address): str(reason) for address, reason in document["refused"].items()}
        for address, fingerprint in document["addresses"].items():
            outcome = ready[fingerprint]
            if isinstance(outcome, str):
                refused[address] = outcome
            else:
                served[address] = outcome
        sealed = {
            fingerprint: SealedKey(entry["key_id"], base64.b64decode(entry["sealed_key"]))
            for fingerprint, entry in document["certificates"].items()
        }
        # Saved before addresses had nodes: every address was bound by every node.
        floating = frozenset(document.get("floating", [*document["addresses"], *refused]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, CertgateError) as error:
        # AttributeError: JSON of another shape (a list or null where a map belongs)
        log.error("cannot use the cached state %s: %s", path, error)
        return None
    state = ServedState(settings, served, refused, sealed, floating=floating)
    return CachedState(revision, saved_at, state)


def _ready(sealer: Sealer, fingerprint: str, entry: dict[str, Any]) -> ServedCertificate | str:
    """The certificate ready to present, or why it cannot be (naming it, never its key)."""
    sealed = base64.b64decode(entry["sealed_key"], validate=True)
    try:
        key = private_key_from_pkcs8_der(sealer.unseal(entry["key_id"], sealed))
    except (CertgateError, ValueError) as error:
        return f"certificate {fingerprint[:16]} (cached) cannot be presented: {error}"
    chain_pem = entry["chain_pem"].encode("ascii")
    return ServedCertificate(fingerprint, chain_pem, private_key_to_pkcs8_pem(key))
