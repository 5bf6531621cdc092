"""First start: the data directory, the schema, the appliance's identity and the factory
certificate (self-signed, the guide's "Appliance" certificate, never deletable)."""

from __future__ import annotations

import dataclasses
import os
import secrets
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from certgate.errors import (
    AlreadyInitialisedError,
    DataDirectoryError,
    NotInitialisedError,
    ValidationError,
)
from certgate.pki.builders import build_self_signed
from certgate.pki.certinfo import read_certificate
from certgate.pki.keys import KeySpec, generate_private_key
from certgate.pki.names import SubjectFields, build_subject, parse_san
from certgate.service import master_key
from certgate.service.appliance import (
    DATABASE_URL_ENV,
    GUID_SETTING,
    SERIAL_SETTING,
    Appliance,
    secure_data_dir,
    store_url,
)
from certgate.service.keystore import put_private_key
from certgate.service.linking import new_certificate_row
from certgate.service.networking import (
    add_address,
    check_address,
    list_addresses,
    normalise_address,
)
from certgate.service.users import create_user, list_users
from certgate.store import master_key as master_key_records
from certgate.store.audit import APPLIANCE, Actor, AuditAction, certificate_target
from certgate.store.database import default_url, describe_database
from certgate.store.repository import Repository, Store
from certgate.store.sealing import MASTER_KEY_FILE, Sealer, write_master_key

FACTORY_NAME = "certgate Appliance"
FACTORY_VALIDITY_DAYS = 3650


@dataclass(frozen=True)
class Initialised:
    data_dir: Path
    created: bool  # False when it was initialised already
    factory_certificate_id: int
    serial_number: str
    guid: str
    admin_password: str | None = None  # set only when init generated it: shown once
    address_added: str | None = None  # the first address, configured when there was none


def initialise(
    data_dir: Path,
    database_url: str | None = None,
    admin_password: str | None = None,
    actor: Actor = APPLIANCE,
    first_address: str | None = None,
) -> Initialised:
    """Idempotent: a second run changes nothing and reports what is there.

    The first administrator, ``admin``, gets ``admin_password`` or a generated one. When no
    IP address is configured, ``first_address`` is added (``certgate init`` gives the
    loopback address, so the first ``certgate serve`` answers at /appliance).
    """
    if first_address is not None:
        # checked before anything is made: a refused address must not cost the generated
        # admin password, which is shown only by the run that creates it
        first_address = normalise_address(first_address)
        check_address(first_address)
    app = Appliance.create(data_dir, database_url)
    try:
        master_key.settle(app)  # a key copied here by hand opens this store, or init stops
        generated = _ensure_admin(app, admin_password, actor)
        done = _ensure_factory(app, actor)
        added = None
        if first_address is not None and not list_addresses(app):
            added = add_address(app, first_address, actor).address
        return dataclasses.replace(done, admin_password=generated, address_added=added)
    finally:
        app.close()


def join(data_dir: Path, database_url: str | None, key_file: Path) -> Initialised:
    """A new node of a cluster (``certgate init --join``): the data directory gets a copy of
    the cluster's master key, once it is known to open the store at ``database_url``.

    Nothing is written, in the store or the data directory, before that is known: a store
    that is not initialised, a stale or a wrong key, a data directory holding another key
    are refused first.
    """
    url = store_url(data_dir, database_url)
    if url == default_url(data_dir):
        raise ValidationError(
            "database_url",
            "is required to join: the shared store's URL (--database-url or "
            f"${DATABASE_URL_ENV}), as the other nodes use it",
        )
    given = Sealer.from_file(key_file, todo=master_key.COPY_AGAIN)
    label = f"the master key file {key_file}"
    own = data_dir / MASTER_KEY_FILE
    if os.path.lexists(own) and Sealer.from_file(own).key_id != given.key_id:
        raise AlreadyInitialisedError(
            f"{data_dir} holds another master key already: join with an empty data directory"
        )
    store = Store(url)
    try:
        if not store.is_ready():
            raise NotInitialisedError(
                f"the store {describe_database(url)} is not initialised (or is older than "
                "this certgate): run 'certgate init --database-url URL' on its first node, "
                "then join the others"
            )
        with store.reading() as repository:
            factory = repository.factory_certificate()
            if factory is None:
                raise NotInitialisedError(
                    f"the store {describe_database(url)} is not initialised (its first "
                    "'certgate init' did not finish): run it again on the first node"
                )
            row = master_key.check(repository, given, label, then=master_key.JOIN)
            done = _initialised_already(data_dir, repository, factory.id)
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:
            raise DataDirectoryError(
                f"cannot make the data directory {data_dir}: {error.strerror}"
            ) from None
        secure_data_dir(data_dir)
        write_master_key(own, given.master_key)
        if row.key_id is None:
            with store.transaction() as repository:
                master_key_records.record_key_id(
                    repository, given.key_id, master_key.made_at(data_dir)
                )
    finally:
        store.close()
    return done


def _ensure_admin(app: Appliance, password: str | None, actor: Actor) -> str | None:
    """Create ``admin`` if there is no user yet; returns the password if it was generated."""
    if list_users(app):
        return None
    generated = None if password else secrets.token_urlsafe(15)
    create_user(app, "admin", password or str(generated), "admin", actor=actor)
    return generated


def _ensure_factory(app: Appliance, actor: Actor) -> Initialised:
    data_dir = app.data_dir
    with app.store.transaction(actor) as repository:
        factory = repository.factory_certificate()
        if factory is not None:
            return _initialised_already(data_dir, repository, factory.id)
        serial = "CG" + secrets.token_hex(6).upper()
        guid = uuid.uuid4().hex
        repository.set_setting(SERIAL_SETTING, serial)
        repository.set_setting(GUID_SETTING, guid)
        key = generate_private_key(KeySpec.RSA_2048)
        subject, _ = build_subject(SubjectFields(common_name=FACTORY_NAME))
        sans = _factory_sans()
        cert = build_self_signed(key, subject, sans, days=FACTORY_VALIDITY_DAYS, now=app.now())
        put_private_key(repository, app.sealer, key)
        row = new_certificate_row(cert, read_certificate(cert), FACTORY_NAME, is_factory=True)
        repository.add(row)
        repository.flush()
        repository.audit(
            AuditAction.APPLIANCE_INIT, certificate_target(FACTORY_NAME, row.fingerprint)
        )
        return Initialised(data_dir, True, row.id, serial, guid)


def _initialised_already(data_dir: Path, repository: Repository, factory_id: int) -> Initialised:
    """What a store that ``certgate init`` made holds: its factory certificate and the
    appliance's serial number and GUID."""
    return Initialised(
        data_dir,
        False,
        factory_id,
        repository.setting(SERIAL_SETTING),
        repository.setting(GUID_SETTING),
    )


def _factory_sans() -> list[x509.GeneralName]:
    """The host's name, when it is a usable DNS name, so a first connection can match it."""
    names: list[x509.GeneralName] = []
    for candidate in (socket.gethostname(), "localhost"):
        try:
            names.append(parse_san(candidate)[0])
        except ValidationError:
            continue
    return names
