"""Issue 10, point 4: ``certgate cert replace OLD --with NEW`` against a running ``certgate
serve``: every address OLD secured presents NEW on the next handshake (seen on the wire on
each of them), an address of another certificate is left alone, OLD stays; every refusal
names its reason and changes nothing, on the wire either."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pki import fingerprint, make_chain, pem
from tests.support.served import served_fingerprint, wait_until_served
from tests.support.server import RunningAppliance, import_with_key, run_cli, running_appliance

MOVED = ("127.0.0.2", "127.0.0.3")
OTHER = "127.0.0.4"


@pytest.fixture
def appliance(tmp_path: Path) -> Iterator[RunningAppliance]:
    with running_appliance(tmp_path / "data", address=MOVED[0]) as running:
        for address in (MOVED[1], OTHER):
            run_cli(running.data_dir, "ip", "add", address)
        yield running


def cli_json(running: RunningAppliance, *args: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(run_cli(running.data_dir, *args, "--json").stdout)
    return result


def refused(running: RunningAppliance, *args: str) -> str:
    """A command that must fail with exit status 1 and one ``error:`` line; that line."""
    done = run_cli(running.data_dir, *args, check=False)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line


def test_every_address_moves_to_the_new_certificate_on_the_wire(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    old_chain, new_chain, other_chain = (
        make_chain(f"{n}.example.test") for n in ("old", "new", "other")
    )
    old = import_with_key(appliance, tmp_path, old_chain)
    new = import_with_key(appliance, tmp_path, new_chain)
    other = import_with_key(appliance, tmp_path, other_chain)
    run_cli(appliance.data_dir, "ip", "assign", *MOVED, "--cert", str(old), "--confirm")
    run_cli(appliance.data_dir, "ip", "assign", OTHER, "--cert", str(other), "--confirm")
    for address in MOVED:
        wait_until_served(address, appliance.port, fingerprint(old_chain.leaf))

    done = cli_json(appliance, "cert", "replace", str(old), "--with", str(new), "--confirm")
    assert done["addresses"] == list(MOVED)
    assert done["old"] == {
        "id": old,
        "friendly_name": "old.example.test",
        "fingerprint_sha256": fingerprint(old_chain.leaf),
    }
    for address in MOVED:
        wait_until_served(address, appliance.port, fingerprint(new_chain.leaf))
    assert served_fingerprint(OTHER, appliance.port) == fingerprint(other_chain.leaf)
    kept = cli_json(appliance, "cert", "show", str(old))
    assert kept["ip_addresses"] == [] and kept["has_private_key"]  # the old one stays
    events = cli_json(appliance, "audit", "list", "--action", "certificate.replace")["events"]
    assert isinstance(events, list) and len(events) == 1
    assert "may be removed and/or revoked" in events[0]["detail"]

    replace = ("cert", "replace", str(new), "--with", str(old), "--confirm")
    text = run_cli(appliance.data_dir, *replace).stdout
    assert text.splitlines() == [
        f"127.0.0.2, 127.0.0.3 now present 'old.example.test' (certificate {old}) instead of "
        "'new.example.test': live on the next handshake",
        f"'new.example.test' (certificate {new}) stays on the appliance and may be removed "
        "and/or revoked as necessary",
    ]
    for address in MOVED:
        wait_until_served(address, appliance.port, fingerprint(old_chain.leaf))


def test_refusals_name_the_reason_and_change_nothing(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    old_chain, spare_chain = make_chain("old.example.test"), make_chain("spare.example.test")
    old = import_with_key(appliance, tmp_path, old_chain)
    spare = import_with_key(appliance, tmp_path, spare_chain)
    run_cli(appliance.data_dir, "ip", "assign", *MOVED, "--cert", str(old), "--confirm")
    for address in MOVED:
        wait_until_served(address, appliance.port, fingerprint(old_chain.leaf))
    no_key = tmp_path / "no-key.pem"
    no_key.write_bytes(pem(make_chain("keyless.example.test").leaf))
    run_cli(appliance.data_dir, "cert", "import", str(no_key))
    ca_with_key = tmp_path / "ca.pem"
    ca_with_key.write_bytes(pem(old_chain.intermediate, old_chain.intermediate_key))
    run_cli(appliance.data_dir, "cert", "import", str(ca_with_key))
    listed = json.loads(run_cli(appliance.data_dir, "cert", "list", "--json").stdout)
    ids = {certificate["friendly_name"]: certificate["id"] for certificate in listed}

    assert refused(appliance, "cert", "replace", str(old), "--with", str(old)) == (
        "error: Replace with: 'old.example.test' is the certificate being replaced: choose another"
    )
    assert refused(
        appliance, "cert", "replace", str(old), "--with", str(ids["keyless.example.test"])
    ) == (
        "error: certificate 'keyless.example.test' cannot replace 'old.example.test': its "
        "Private Key is not Available. Import the private key (or the PKCS#12 file that holds "
        "it), or choose a certificate whose Private Key is Available"
    )
    assert refused(
        appliance, "cert", "replace", str(old), "--with", str(ids["Test Intermediate"])
    ) == (
        "error: Replace with: 'Test Intermediate' is an intermediate certificate authority's "
        "certificate, not a server certificate: choose the certificate issued for the "
        "appliance"
    )
    assert refused(appliance, "cert", "replace", str(spare), "--with", str(old)) == (
        "error: certificate 'spare.example.test' secures no IP address: there is nothing to "
        "replace. Assign 'old.example.test' to the addresses it should secure instead"
    )
    assert refused(appliance, "cert", "replace", str(old), "--with", "9999999") == (
        "error: no certificate with id 9999999"
    )
    for address in MOVED:
        assert served_fingerprint(address, appliance.port) == fingerprint(old_chain.leaf)
    assert cli_json(appliance, "cert", "show", str(old))["ip_addresses"] == list(MOVED)
    events = cli_json(appliance, "audit", "list", "--action", "certificate.replace")["events"]
    assert events == []
