"""The appliance's TLS as the best servers configure it, judged by sslyze against Mozilla's
profiles, plus what sslyze does not judge: the chain sent without its root, groups as a
setting, HSTS on every HTTPS answer.

sslyze pins cryptography below certgate's own pin, so it lives in a virtualenv of its own,
``.venv-sslyze``, made by ``scripts/setup --test``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.openssl import pem_subjects, s_client, served_chain
from tests.support.pki import TestChain, fingerprint, make_chain, pem
from tests.support.polling import eventually
from tests.support.server import RunningAppliance, run_cli, running_appliance

RSA_ADDRESS = "127.0.0.2"
ECDSA_ADDRESS = "127.0.0.3"
SSLYZE = Path(__file__).resolve().parents[2] / ".venv-sslyze" / "bin" / "sslyze"


def _import(app: RunningAppliance, directory: Path, chain: TestChain) -> int:
    """The leaf with its key, its intermediate and its root (so the automatic chain reaches
    the root); returns the leaf's id."""
    bundle = directory / f"{chain.leaf.serial_number}.pem"
    bundle.write_bytes(pem(chain.leaf, *chain.chain, chain.leaf_key))
    imported = run_cli(app.data_dir, "cert", "import", str(bundle), "--json", **app.env)
    entries = json.loads(imported.stdout)["entries"]
    [leaf] = [e for e in entries if e["fingerprint_sha256"] == fingerprint(chain.leaf)]
    return int(leaf["id"])


def _sent(address: str, port: int) -> list[str]:
    """The subjects of the certificates the server sends, leaf first."""
    return pem_subjects(served_chain(address, port))


def _accepts_group(address: str, port: int, group: str) -> bool:
    return s_client(address, port, "-groups", group).returncode == 0


NAMES = {RSA_ADDRESS: "rsa.site.test", ECDSA_ADDRESS: "p256.site.test"}


def _sslyze(address: str, port: int, profile: str, root: Path) -> subprocess.CompletedProcess[str]:
    """sslyze's judgement of ``address``, reached by its certificate's name (``name:port{ip}``:
    the name for SNI and validation, no DNS)."""
    assert SSLYZE.exists(), "sslyze is missing: run scripts/setup --test"
    return subprocess.run(
        [
            str(SSLYZE),
            f"--mozilla_config={profile}",
            f"--certinfo_ca_file={root}",
            f"{NAMES[address]}:{port}{{{address}}}",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAppliance]:
    """One ``certgate serve`` with a CA-signed RSA certificate on one address and a CA-signed
    ECDSA certificate on the other, every setting at its default."""
    directory = tmp_path_factory.mktemp("mozilla")
    with running_appliance(directory / "data", RSA_ADDRESS) as app:
        run_cli(app.data_dir, "ip", "add", ECDSA_ADDRESS)
        for address, kind in ((RSA_ADDRESS, "rsa"), (ECDSA_ADDRESS, "p256")):
            # 47 days: the lifetime CAs move to; Mozilla's "modern" wants under 90
            chain = make_chain(NAMES[address], kind, key_usage=True, days=47)
            (directory / f"{address}-root.pem").write_bytes(pem(chain.root))
            certificate = _import(app, directory, chain)
            run_cli(app.data_dir, "ip", "assign", address, "--cert", str(certificate))
            eventually(
                lambda a=address: NAMES[a] in _sent(a, app.port)[0],
                timeout=20,
                what=f"{address} presents its CA-signed certificate",
            )
        yield app


def _root(app: RunningAppliance, address: str) -> Path:
    return app.data_dir.parent / f"{address}-root.pem"


@pytest.mark.parametrize("address", [RSA_ADDRESS, ECDSA_ADDRESS])
def test_mozilla_intermediate_passes_with_the_defaults(
    appliance: RunningAppliance, address: str
) -> None:
    judged = _sslyze(address, appliance.port, "intermediate", _root(appliance, address))
    assert f"{NAMES[address]}:{appliance.port}: OK - Compliant." in judged.stdout, judged.stdout
    assert judged.returncode == 0


def test_the_chain_leaves_out_the_root_unless_asked(appliance: RunningAppliance) -> None:
    assert len(_sent(RSA_ADDRESS, appliance.port)) == 2  # leaf, intermediate
    run_cli(appliance.data_dir, "tls", "set", "--send-root")
    try:
        eventually(lambda: len(_sent(RSA_ADDRESS, appliance.port)) == 3)
        assert "Test Root" in _sent(RSA_ADDRESS, appliance.port)[2]
    finally:
        run_cli(appliance.data_dir, "tls", "set", "--no-send-root")
    eventually(lambda: len(_sent(RSA_ADDRESS, appliance.port)) == 2)


def test_groups_are_a_setting(appliance: RunningAppliance) -> None:
    assert not _accepts_group(RSA_ADDRESS, appliance.port, "X448")
    refused = run_cli(appliance.data_dir, "tls", "set", "--groups", "X25519:NOPE", check=False)
    assert refused.returncode != 0
    assert "TLS groups: 'X25519:NOPE' selects no group OpenSSL knows" in refused.stderr
    run_cli(appliance.data_dir, "tls", "set", "--groups", "X448:X25519")
    try:
        eventually(lambda: _accepts_group(RSA_ADDRESS, appliance.port, "X448"))
    finally:
        run_cli(appliance.data_dir, "tls", "set", "--groups", "X25519:P-256:P-384")
    eventually(lambda: not _accepts_group(RSA_ADDRESS, appliance.port, "X448"))


def test_a_weakening_cipher_string_is_refused_and_nothing_changes(
    appliance: RunningAppliance,
) -> None:
    refused = run_cli(
        appliance.data_dir, "tls", "set", "--ciphers", "NULL:@SECLEVEL=0", check=False
    )
    assert refused.returncode == 1
    assert "TLS 1.2 ciphers: lowers OpenSSL's security level to 0" in refused.stderr
    shown = json.loads(run_cli(appliance.data_dir, "tls", "show", "--json").stdout)
    assert shown["tls12_ciphers"] == "ECDHE+AESGCM:ECDHE+CHACHA20"


def test_every_https_answer_carries_hsts(appliance: RunningAppliance) -> None:
    with httpx.Client(verify=False, base_url=f"https://{RSA_ADDRESS}:{appliance.port}") as web:
        for path in ("/appliance/login", "/api/v1/status", "/no/such/page", "/"):
            answer = web.get(path)
            assert answer.headers["strict-transport-security"] == "max-age=63072000", path


def test_mozilla_modern_passes_with_tls_1_3_only_and_an_ecdsa_certificate(
    appliance: RunningAppliance,
) -> None:
    """Last: it changes the minimum version for the rest of the module's appliance."""
    run_cli(appliance.data_dir, "tls", "set", "--min-version", "1.3")
    eventually(lambda: s_client(ECDSA_ADDRESS, appliance.port, "-tls1_2").returncode != 0)
    judged = _sslyze(ECDSA_ADDRESS, appliance.port, "modern", _root(appliance, ECDSA_ADDRESS))
    assert 'against Mozilla\'s "modern" configuration' in judged.stdout
    assert f"{NAMES[ECDSA_ADDRESS]}:{appliance.port}: OK - Compliant." in judged.stdout, (
        judged.stdout
    )
    assert judged.returncode == 0
