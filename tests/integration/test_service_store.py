"""The store under the service layer, on SQLite and PostgreSQL: private keys never reach the
database in the clear, sealing is bound to the key, refused operations change nothing, and
chains re-link when a certificate goes (the guide's delete, Manually Specified chain)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import Engine, event, inspect, text

from certgate.errors import CertgateError, InUseError, ProtectedError, ValidationError
from certgate.pki.export import ExportOptions
from certgate.pki.keys import KeySpec
from certgate.pki.names import SubjectFields
from certgate.service import audit, certificates, exports, imports
from certgate.service.appliance import Appliance
from certgate.store.audit import AuditAction, AuditFilter
from certgate.store.sealing import MASTER_KEY_FILE
from tests.support.pki import Key, fingerprint, issue, make_chain, name, new_key, pem

if TYPE_CHECKING:
    from tests.support.pki import TestChain

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


# --- helpers ------------------------------------------------------------------------------------


def import_ok(app: Appliance, *files: tuple[str, bytes]) -> list[imports.ImportEntry]:
    entries = imports.import_files(app, list(files))
    assert all(entry.status != "error" for entry in entries), entries
    return entries


def import_chain(app: Appliance, chain: TestChain) -> int:
    """Root, intermediate, leaf and the leaf's key; returns the leaf's id."""
    import_ok(
        app,
        ("root.pem", pem(chain.root)),
        ("intermediate.pem", pem(chain.intermediate)),
        ("leaf.pem", pem(chain.leaf, chain.leaf_key)),
    )
    return certificates.show_certificate(app, fingerprint(chain.leaf)).id


def private_pkcs8(app: Appliance, certificate_id: int) -> bytes:
    """The key as certgate hands it out on explicit request (unencrypted PKCS#8 DER)."""
    options = ExportOptions(
        include_certificate=False, include_private_key=True, unencrypted_private_key=True
    )
    return exports.export_certificate(app, certificate_id, options).data


def key_needles(pkcs8_der: bytes) -> dict[str, bytes]:
    """Every form in which a careless store could hold this key."""
    key = serialization.load_der_private_key(pkcs8_der, password=None)
    body = base64.b64encode(pkcs8_der)
    needles = {
        "PKCS#8 DER": pkcs8_der,
        "PKCS#8 PEM body": body,
        "PKCS#8 PEM line": body[64:128],
        "PKCS#8 hex": pkcs8_der.hex().encode(),
    }
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        needles["PKCS#1 DER"] = key.private_bytes(
            DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        for label, value in (("d", numbers.d), ("p", numbers.p), ("q", numbers.q)):
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            needles[f"RSA {label}"] = raw
            needles[f"RSA {label} hex"] = raw.hex().encode()
            needles[f"RSA {label} decimal"] = str(value).encode()
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        value = key.private_numbers().private_value
        needles["EC private value"] = value.to_bytes((key.curve.key_size + 7) // 8, "big")
        needles["EC private value hex"] = needles["EC private value"].hex().encode()
    return needles


def database_bytes(app: Appliance, data_dir: Path, database_url: str | None) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or every PostgreSQL row."""
    if database_url is None:
        files = [data_dir / "certgate.db", data_dir / "certgate.db-wal"]
        return b"".join(path.read_bytes() for path in files if path.exists())
    out = b""
    with app.store.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        out += bytes(value)
                    else:
                        out += json.dumps(value, default=str).encode()
    return out


def snapshot(app: Appliance) -> dict[str, list[str]]:
    """Every row of every table (revision counter and audit log included)."""
    with app.store.engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        return {
            table: sorted(
                repr(tuple(row)) for row in connection.execute(text(f"SELECT * FROM {table}"))
            )
            for table in tables
        }


def create_self_signed(app: Appliance, label: str, key: KeySpec = KeySpec.EC_P256) -> int:
    form = certificates.CreateForm(
        label, SubjectFields(common_name=f"{label}.example.com"), key=key
    )
    return certificates.create(app, form, "self-signed").id


# --- private keys at rest -----------------------------------------------------------------------


def test_database_holds_no_private_key_material(
    appliance: Appliance, data_dir: Path, database_url: str | None
) -> None:
    created = create_self_signed(appliance, "created", KeySpec.RSA_2048)
    imported = make_chain(kind="rsa")
    imported_id = import_chain(appliance, imported)
    ec_id = create_self_signed(appliance, "p256")
    keys = {
        "created RSA": private_pkcs8(appliance, created),
        "imported RSA": private_pkcs8(appliance, imported_id),
        "created P-256": private_pkcs8(appliance, ec_id),
    }
    factory = certificates.list_certificates(appliance)[0]
    assert factory.is_factory
    keys["factory RSA"] = private_pkcs8(appliance, factory.id)
    imported_pkcs8 = imported.leaf_key.private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert keys["imported RSA"] == imported_pkcs8  # the export gives back the key we gave

    stored_while_open = database_bytes(appliance, data_dir, database_url)
    appliance.close()  # SQLite: checkpoint the WAL into the main file
    stored_after_close = database_bytes(appliance, data_dir, database_url)

    for key_name, pkcs8 in keys.items():
        for form, needle in key_needles(pkcs8).items():
            assert needle not in stored_while_open, f"{key_name}: {form} is in the database"
            assert needle not in stored_after_close, f"{key_name}: {form} is in the database"


def test_sealed_keys_are_bound_to_their_row(appliance: Appliance) -> None:
    """AES-GCM with the public-key fingerprint as associated data: a sealed blob copied onto
    another key's row does not open (and does not hand out the wrong key)."""
    first = create_self_signed(appliance, "first")
    second = create_self_signed(appliance, "second")
    first_key = private_pkcs8(appliance, first)
    with appliance.store.engine.begin() as connection:
        query = text("SELECT public_key_fingerprint, sealed FROM private_keys")
        rows: dict[str, bytes] = {fp: bytes(sealed) for fp, sealed in connection.execute(query)}
        assert len(rows) == 3  # factory, first, second
        for sealed in rows.values():
            assert first_key not in sealed
        second_fp = _public_key_fingerprint(appliance, second)
        first_fp = _public_key_fingerprint(appliance, first)
        connection.execute(
            text("UPDATE private_keys SET sealed = :sealed WHERE public_key_fingerprint = :fp"),
            {"sealed": rows[first_fp], "fp": second_fp},
        )
    before = snapshot(appliance)

    with pytest.raises(CertgateError, match="could not be unsealed"):
        private_pkcs8(appliance, second)

    assert snapshot(appliance) == before  # the failed export wrote no audit event
    assert private_pkcs8(appliance, first) == first_key


def _public_key_fingerprint(app: Appliance, certificate_id: int) -> str:
    with app.store.reading() as repository:
        row = repository.certificate(certificate_id)
        assert row is not None
        return row.public_key_fingerprint


def test_master_key_file_is_private_and_checked(appliance: Appliance, data_dir: Path) -> None:
    master = data_dir / MASTER_KEY_FILE
    assert stat.S_IMODE(master.stat().st_mode) == 0o600
    assert len(master.read_bytes()) == 32
    assert stat.S_IMODE(data_dir.stat().st_mode) & 0o077 == 0
    os.chmod(master, 0o644)
    try:
        with pytest.raises(CertgateError, match="0600"):
            Appliance.open(data_dir, appliance.store.url)
    finally:
        os.chmod(master, 0o600)


# --- one transaction per operation --------------------------------------------------------------


def test_refused_deletes_change_nothing(appliance: Appliance) -> None:
    chain = make_chain()
    leaf_id = import_chain(appliance, chain)
    certificates.set_manual_chain(appliance, leaf_id, pem(chain.intermediate, chain.root))
    before = snapshot(appliance)
    intermediate = fingerprint(chain.intermediate)

    with pytest.raises(InUseError, match=re.escape("manual chain of 'www.example.com'")):
        certificates.delete_certificate(appliance, intermediate)
    with pytest.raises(InUseError, match="manual chain"):
        certificates.delete_certificate(appliance, fingerprint(chain.root))
    with pytest.raises(ProtectedError):
        certificates.delete_certificate(appliance, certificates.list_certificates(appliance)[0].id)

    assert snapshot(appliance) == before
    view = certificates.show_certificate(appliance, leaf_id)
    assert view.chain_mode == "manual"
    assert view.chain == [fingerprint(c) for c in (chain.leaf, chain.intermediate, chain.root)]


def test_manual_chain_root_first_is_put_in_order_and_said(appliance: Appliance) -> None:
    """The guide's screenshots list a chain root first: accepted, put nearest issuer first."""
    chain = make_chain()
    leaf_id = import_chain(appliance, chain)

    notices = certificates.set_manual_chain(
        appliance, leaf_id, pem(chain.root, chain.root, chain.intermediate)
    )

    view = certificates.show_certificate(appliance, leaf_id)
    assert view.chain == [fingerprint(c) for c in (chain.leaf, chain.intermediate, chain.root)]
    assert notices == [
        "the chain was put in order, nearest issuer first: "
        f"{chain.intermediate.subject.rfc4514_string()}; {chain.root.subject.rfc4514_string()}"
    ]
    in_order = certificates.set_manual_chain(appliance, leaf_id, pem(chain.intermediate))
    assert in_order == []


def test_refused_manual_chain_changes_nothing(appliance: Appliance) -> None:
    chain = make_chain()
    other = make_chain("other.example.com")
    leaf_id = import_chain(appliance, chain)
    before = snapshot(appliance)

    wrong = [
        pem(other.intermediate, other.root),  # somebody else's chain
        pem(chain.root, other.intermediate, chain.intermediate),  # one that does not belong
        pem(chain.intermediate, other.root),  # first link right, second wrong
        chain.intermediate.public_bytes(DER),  # the guide: PEM only
        pem(chain.intermediate, chain.root, chain.leaf_key),  # a key is not a chain
    ]
    for given in wrong:
        with pytest.raises(ValidationError, match="Manually Specified"):
            certificates.set_manual_chain(appliance, leaf_id, given)

    assert snapshot(appliance) == before  # none of other's certificates was added either


# --- chains: delete re-links, manual and automatic ----------------------------------------------


def cross_signed(host: str = "www.example.com") -> dict[str, Any]:
    """One intermediate (one subject, one key) certified by two roots; the cross-certificate
    from root B expires later, so the automatic chain prefers it."""
    root_a_key, root_b_key, intermediate_key, leaf_key = (new_key() for _ in range(4))
    root_a = issue(name("Root A"), root_a_key.public_key(), name("Root A"), root_a_key, ca=True)
    root_b = issue(name("Root B"), root_b_key.public_key(), name("Root B"), root_b_key, ca=True)
    subject = name("Shared Intermediate")
    via_a = issue(subject, intermediate_key.public_key(), root_a.subject, root_a_key, ca=True)
    via_b = issue(
        subject, intermediate_key.public_key(), root_b.subject, root_b_key, ca=True, days=730
    )
    leaf = issue(
        name(host), leaf_key.public_key(), subject, intermediate_key, ca=False, sans=[host]
    )
    return {"root_a": root_a, "root_b": root_b, "via_a": via_a, "via_b": via_b, "leaf": leaf}


def chain_of(app: Appliance, cert: x509.Certificate) -> list[str]:
    return certificates.show_certificate(app, fingerprint(cert)).chain


def test_delete_relinks_children_to_another_issuer(appliance: Appliance) -> None:
    pki = cross_signed()
    import_ok(appliance, *((f"{k}.pem", pem(c)) for k, c in pki.items()))
    fp = {k: fingerprint(c) for k, c in pki.items()}
    assert chain_of(appliance, pki["leaf"]) == [fp["leaf"], fp["via_b"], fp["root_b"]]

    assert certificates.chains_broken_by_deletion(appliance, fp["via_b"]) == []
    deleted = certificates.delete_certificate(appliance, fp["via_b"])
    assert deleted.chains_incomplete == []  # the leaf found its other issuer

    assert chain_of(appliance, pki["leaf"]) == [fp["leaf"], fp["via_a"], fp["root_a"]]
    leaf = certificates.show_certificate(appliance, fp["leaf"])
    assert "chain-incomplete" not in {w.code for w in leaf.warnings}

    leaf_name = certificates.show_certificate(appliance, fp["leaf"]).friendly_name
    assert certificates.chains_broken_by_deletion(appliance, fp["via_a"]) == [leaf_name]
    deleted = certificates.delete_certificate(appliance, fp["via_a"])
    assert deleted.chains_incomplete == [leaf_name]

    leaf = certificates.show_certificate(appliance, fp["leaf"])
    assert leaf.chain == [fp["leaf"]]
    assert "chain-incomplete" in {w.code for w in leaf.warnings}

    import_ok(appliance, ("again.pem", pem(pki["via_a"])))  # the waiting leaf links on arrival

    assert chain_of(appliance, pki["leaf"]) == [fp["leaf"], fp["via_a"], fp["root_a"]]


class _RenewingCa:
    """A root and its intermediate twice: expired, and renewed (same name and key, valid
    longer)."""

    def __init__(self, label: str) -> None:
        self.root_key, self.key = new_key(), new_key()
        root_name, self.subject = name(f"{label} Root"), name(f"{label} Intermediate")
        self.root = issue(root_name, self.root_key.public_key(), root_name, self.root_key,
                          ca=True, days=3650)  # fmt: skip
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
        self.expired = self.intermediate(not_before=long_ago, days=300)
        self.renewed = self.intermediate(days=1000)

    def intermediate(self, **validity: Any) -> x509.Certificate:
        public_key = self.key.public_key()
        return issue(self.subject, public_key, self.root.subject, self.root_key, ca=True,
                     **validity)  # fmt: skip

    def leaf(self, host: str, key: Key) -> x509.Certificate:
        return issue(name(host), key.public_key(), self.subject, self.key, ca=False,
                     sans=[host])  # fmt: skip


def test_a_renewed_intermediate_takes_over_the_chains_of_the_expired_one(
    appliance: Appliance,
) -> None:
    """The guide: a warning under a certificate means the CA's intermediate is missing;
    importing the CA's renewed intermediate (same name and key, valid longer) clears the
    chain-expired warning: the leaf's chain goes through the new copy, under the same root."""
    ca = _RenewingCa("Renewing")
    root, expired, renewed = ca.root, ca.expired, ca.renewed
    leaf_key = new_key()
    leaf = ca.leaf("renewing.example.test", leaf_key)
    import_ok(
        appliance, ("r.pem", pem(root)), ("i.pem", pem(expired)), ("l.pem", pem(leaf, leaf_key))
    )
    before = certificates.show_certificate(appliance, fingerprint(leaf))
    assert before.chain[1] == fingerprint(expired)
    assert "chain-expired" in {w.code for w in before.warnings}

    import_ok(appliance, ("renewed.pem", pem(renewed)))

    after = certificates.show_certificate(appliance, fingerprint(leaf))
    assert after.chain == [fingerprint(leaf), fingerprint(renewed), fingerprint(root)]
    assert "chain-expired" not in {w.code for w in after.warnings}

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    ahead = ca.intermediate(not_before=later, days=2000)
    import_ok(appliance, ("ahead.pem", pem(ahead)))  # not valid yet: clients would refuse it
    assert certificates.show_certificate(appliance, fingerprint(leaf)).chain == after.chain


def test_a_renewed_intermediate_imported_with_many_leaves_reads_no_row_per_leaf(
    appliance: Appliance,
) -> None:
    """The renewed copy takes over the stored leaf's chain, and the new leaves are linked to
    it, in statements that do not grow with the leaves (each leaf's row was read back to
    learn it was no CA: 2,000 leaves took 1.7 s instead of 1.0 s)."""
    ca = _RenewingCa("Busy")
    root, expired, renewed, leaf_key = ca.root, ca.expired, ca.renewed, new_key()
    leaves = [ca.leaf(f"busy{index}.example.test", leaf_key) for index in range(41)]
    import_ok(appliance, ("old.pem", pem(root) + pem(expired) + pem(leaves[0])))
    statements: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        import_ok(appliance, ("new.pem", pem(renewed) + b"".join(map(pem, leaves[1:]))))
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert len(statements) < len(leaves) - 1, statements
    for leaf in (leaves[0], leaves[-1]):
        chain = certificates.show_certificate(appliance, fingerprint(leaf)).chain
        assert chain == [fingerprint(leaf), fingerprint(renewed), fingerprint(root)]


def test_manual_chain_overrides_and_automatic_restores(appliance: Appliance) -> None:
    pki = cross_signed()
    fp = {k: fingerprint(c) for k, c in pki.items()}
    import_ok(appliance, *((f"{k}.pem", pem(pki[k])) for k in ("root_b", "via_b", "leaf")))
    count = len(certificates.list_certificates(appliance))
    leaf_id = certificates.show_certificate(appliance, fp["leaf"]).id

    certificates.set_manual_chain(appliance, leaf_id, pem(pki["via_a"], pki["root_a"]))

    view = certificates.show_certificate(appliance, leaf_id)
    assert view.chain_mode == "manual"
    assert view.chain == [fp["leaf"], fp["via_a"], fp["root_a"]]
    assert "chain-incomplete" not in {w.code for w in view.warnings}
    assert len(certificates.list_certificates(appliance)) == count + 2  # the chain was stored
    exported = exports.export_certificate(appliance, leaf_id, ExportOptions(include_chain=True))
    in_file = {fingerprint(c) for c in pkcs7.load_der_pkcs7_certificates(exported.data)}
    assert in_file == {fp["leaf"], fp["via_a"], fp["root_a"]}

    certificates.set_automatic_chain(appliance, leaf_id)

    view = certificates.show_certificate(appliance, leaf_id)
    assert view.chain_mode == "automatic"
    assert view.chain == [fp["leaf"], fp["via_b"], fp["root_b"]]


def test_expired_chain_certificate_is_warned_about(appliance: Appliance) -> None:
    root_key, leaf_key = new_key(), new_key()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=800)
    root = issue(
        name("Old Root"), root_key.public_key(), name("Old Root"), root_key, ca=True,
        days=400, not_before=long_ago,
    )  # fmt: skip
    leaf = issue(
        name("w.example.com"), leaf_key.public_key(), root.subject, root_key, ca=False,
        sans=["w.example.com"],
    )  # fmt: skip
    import_ok(appliance, ("chain.pem", pem(leaf, root, leaf_key)))
    codes = {w.code for w in certificates.show_certificate(appliance, fingerprint(leaf)).warnings}
    assert "chain-expired" in codes
    assert "private-key-missing" not in codes


def test_a_key_imported_with_its_certificate_says_it_linked(appliance: Appliance) -> None:
    chain = make_chain()
    entries = import_ok(appliance, ("site.pem", pem(chain.leaf, chain.leaf_key)))
    by_kind = {entry.kind: entry for entry in entries}
    assert by_kind["private-key"].status == "linked"
    assert "www.example.com" in by_kind["private-key"].message
    assert by_kind["certificate"].status == "linked"


def test_a_file_name_with_a_nul_imports_and_is_recorded_visibly(appliance: Appliance) -> None:
    """An upload's name is the client's to choose: one holding a NUL failed the whole import
    on PostgreSQL as 'store unavailable: ... text fields cannot contain NUL (0x00) bytes'."""
    chain = make_chain()
    entries = import_ok(appliance, ("site\x00.pem", pem(chain.leaf)), ("root.pem", pem(chain.root)))
    assert [entry.status for entry in entries] == ["added", "added"]
    (event,) = audit.list_events(appliance, AuditFilter(action=AuditAction.IMPORT)).events
    assert event.target == "site\\x00.pem, root.pem"
