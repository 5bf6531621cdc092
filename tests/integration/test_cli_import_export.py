"""``cert import`` and ``cert export`` against the openssl CLI: the guide's CSR round trip with
a CA, "Import the Certificate" in every format a CA or another server hands over, "Export the
Certificate" read back by openssl, and the failover copy to a second appliance."""

from __future__ import annotations

import hashlib
import os
import pty
import re
import select
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import CERTGATE, Certgate
from tests.support import asn1
from tests.support.openssl import (
    OpensslCA,
    fingerprint,
    make_ca,
    openssl,
    pkcs7,
    pkcs12,
    subjects,
    to_der,
)

PASSWORD = "Corr3ct horse!"


def codes(view: dict[str, Any]) -> set[str]:
    return {warning["code"] for warning in view["warnings"]}


def imported(
    certgate: Certgate, *args: str | Path, expect: int = 0, env: dict[str, str] | None = None
) -> list[Any]:
    """``cert import --json`` with these files and options; the per-file entries."""
    result: list[Any] = certgate("cert", "import", "--json", *args, expect=expect, env=env).json()[
        "entries"
    ]
    return result


def certificate_entry(entries: list[Any], certificate: Path) -> dict[str, Any]:
    """The import entry of this certificate (found by fingerprint, as a file may hold many)."""
    wanted = fingerprint(certificate)
    (entry,) = [e for e in entries if e["fingerprint_sha256"] == wanted]
    assert entry["kind"] == "certificate"
    return dict(entry)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def secret_file(tmp_path: Path, secret: str, name: str = "secret.txt") -> Path:
    path = tmp_path / name
    path.write_text(secret + "\n")  # first line only: the newline is not part of it
    return path


def public_key_of_certificate(certificate: Path) -> str:
    return openssl("x509", "-in", certificate, "-noout", "-pubkey")


# --- the guide's round trip: request, CA, import ------------------------------------------------


def request_signed_by(
    certgate: Certgate, ca: OpensslCA, tmp_path: Path, name: str = "Support Portal 2026"
) -> tuple[int, Path]:
    """Create a request with certgate, have the openssl CA sign it; (request id, leaf file)."""
    created = certgate.json(
        "cert", "create", "--request", "--name", name, "--key", "rsa2048",
        "--cn", "Support Portal", "--country", "US", "--org", "Bomgar",
        "--san", "support.example.com", "--san", "remote.example.com",
    )  # fmt: skip
    csr = tmp_path / "request.csr"
    csr.write_text(certgate.json("request", "show", str(created["request"]["id"]))["pem"])
    return created["request"]["id"], ca.sign(csr, tmp_path / "signed.pem")


@pytest.mark.parametrize("order", ["intermediate, then root", "root, then intermediate"])
def test_signed_request_links_to_its_key_and_its_chain_completes(
    certgate: Certgate,
    certgate_exe: Certgate,
    openssl_ca: OpensslCA,
    tmp_path: Path,
    order: str,
) -> None:
    cli = certgate_exe if order.startswith("intermediate") else certgate
    request_id, leaf = request_signed_by(cli.reader, openssl_ca, tmp_path)
    before = len(cli.reader.certificates())

    (entry,) = imported(cli, leaf)

    assert (entry["status"], entry["kind"]) == ("linked", "certificate")
    view = cli.reader.show(entry["id"])
    assert view["friendly_name"] == "Support Portal 2026"  # the request's name, not the CN
    assert view["has_private_key"] is True
    assert view["chain"] == [fingerprint(leaf)]
    assert "chain-incomplete" in codes(view)
    assert view["sans"] == ["dNSName - support.example.com", "dNSName - remote.example.com"]
    assert cli.reader.json("request", "show", str(request_id))["certificate_ids"] == [entry["id"]]

    first, second = (openssl_ca.intermediate, openssl_ca.root)
    if order.startswith("root"):
        first, second = second, first
    assert [e["status"] for e in imported(cli, first)] == ["added"]
    assert "chain-incomplete" in codes(cli.reader.show(entry["id"]))
    assert [e["status"] for e in imported(cli, second)] == ["added"]

    view = cli.reader.show(entry["id"])
    assert view["chain"] == [
        fingerprint(p) for p in (leaf, openssl_ca.intermediate, openssl_ca.root)
    ]
    assert view["warnings"] == []
    assert view["has_private_key"] is True
    assert view["role"] == "server"
    roles = {v["fingerprint_sha256"]: v["role"] for v in cli.reader.certificates()}
    assert roles[fingerprint(openssl_ca.intermediate)] == "intermediate"
    assert roles[fingerprint(openssl_ca.root)] == "root"

    (again,) = imported(cli.reader, leaf)
    assert (again["status"], again["id"]) == ("present", entry["id"])
    assert len(cli.reader.certificates()) == before + 3


# --- import formats -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outside_leaf(
    openssl_ca: OpensslCA, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A certificate and RSA key made outside certgate (moved from another server); shared,
    read-only."""
    return openssl_ca.issue(
        "iis.example.com", ["iis.example.com"], tmp_path_factory.mktemp("iis") / "iis"
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["aes-256", "legacy-rc2"])
@pytest.mark.parametrize("source", ["password-file", "environment"])
def test_pkcs12_from_openssl_imports_with_its_password(
    certgate: Certgate,
    openssl_ca: OpensslCA,
    outside_leaf: tuple[Path, Path],
    tmp_path: Path,
    legacy: bool,
    source: str,
) -> None:
    leaf, key = outside_leaf
    chain = [openssl_ca.intermediate, openssl_ca.root]
    p12 = pkcs12(
        tmp_path / "iis.pfx", leaf, key, chain, password=PASSWORD, legacy=legacy,
        name="IIS site \u2013 2026",
    )  # fmt: skip
    before = certgate.certificates()

    wrong = secret_file(tmp_path, "not the password", "wrong.txt")
    (refused,) = imported(certgate, "--password-file", wrong, p12, expect=1)
    assert (refused["status"], refused["error_code"]) == ("error", "wrong-password")
    (missing,) = imported(certgate, p12, expect=1)  # no terminal: no prompt, a clear error
    assert (missing["status"], missing["error_code"]) == ("error", "password-required")
    assert certgate.certificates() == before

    if source == "password-file":
        entries = imported(certgate, "--password-file", secret_file(tmp_path, PASSWORD), p12)
    else:
        entries = imported(certgate, p12, env={"CERTGATE_IMPORT_PASSWORD": PASSWORD})

    assert sorted(e["kind"] for e in entries) == ["certificate"] * 3 + ["private-key"]
    entry = certificate_entry(entries, leaf)
    assert entry["status"] == "linked"
    view = certgate.show(entry["id"])
    assert view["has_private_key"] is True
    assert view["chain"] == [fingerprint(p) for p in (leaf, *chain)]
    assert view["warnings"] == []
    assert view["friendly_name"] == "IIS site \u2013 2026"  # the name the file gives it
    assert len(certgate.certificates()) == len(before) + 3


def test_a_file_that_needs_a_password_says_how_to_give_one(
    certgate: Certgate, outside_leaf: tuple[Path, Path], tmp_path: Path
) -> None:
    """With no terminal to ask on, "protected by a password; enter it" left the user to
    guess how."""
    leaf, key = outside_leaf
    p12 = pkcs12(tmp_path / "iis.pfx", leaf, key, [], password=PASSWORD)

    refused = certgate("cert", "import", p12, expect=1)

    assert "protected by a password" in refused.stdout
    assert refused.error_lines == [
        "give the password with --password-file FILE or CERTGATE_IMPORT_PASSWORD"
    ]


def on_a_terminal(argv: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """``certgate`` run on a terminal of its own (a pty), ``answer`` typed at its password
    prompt once it asks; its exit code and all it wrote."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: certgate, its stdin and stdout the terminal
        os.execve(str(CERTGATE), [str(CERTGATE), *argv], env)
    output, answered = b"", False
    try:
        while select.select([terminal], [], [], 60)[0]:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: certgate has exited and closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"Password:" in output:
                os.write(terminal, answer.encode() + b"\n")
                answered = True
    finally:
        os.close(terminal)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_a_password_typed_at_the_prompt_imports_the_other_files_once(
    certgate: Certgate,
    openssl_ca: OpensslCA,
    outside_leaf: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """On a terminal, a file that needs a password is asked for it after the others are
    imported; the others are not imported again (they were reported "present", as if an
    earlier command had added them)."""
    leaf, key = outside_leaf
    p12 = pkcs12(tmp_path / "iis.pfx", leaf, key, [], password=PASSWORD)
    plain = openssl_ca.intermediate
    environment = {"PATH": "/usr/bin:/bin", "CERTGATE_DATA_DIR": str(certgate.data_dir)}
    before = len(certgate.certificates())
    code, said = on_a_terminal(["cert", "import", str(plain), str(p12)], environment, PASSWORD)
    assert code == 0, said
    rows = [line for line in said.splitlines() if str(tmp_path) in line or "intermediate" in line]
    [plain_row] = [row for row in rows if str(plain) in row]
    assert " added " in plain_row, said  # not "present": this command added it
    assert sum(" present " in row for row in rows) == 0, said
    assert len(certgate.certificates()) == before + 2
    assert certgate.show(certificate_entry(imported(certgate, leaf), leaf)["id"])["has_private_key"]


def test_ctrl_c_at_the_password_prompt_exits_130_and_imports_nothing(
    certgate: Certgate, outside_leaf: tuple[Path, Path], tmp_path: Path
) -> None:
    """Ctrl-C exited 1, as a refused import does: a script could not tell the two apart."""
    leaf, key = outside_leaf
    p12 = pkcs12(tmp_path / "iis.pfx", leaf, key, [], password=PASSWORD)
    environment = {"PATH": "/usr/bin:/bin", "CERTGATE_DATA_DIR": str(certgate.data_dir)}
    before = certgate.certificates()

    code, said = on_a_terminal(["cert", "import", str(p12)], environment, "\x03")

    assert code == 130, said
    assert "aborted" in said and "Traceback" not in said, said
    assert certgate.certificates() == before


@pytest.mark.parametrize("legacy", [False, True], ids=["aes-256", "legacy-3des"])
def test_pkcs12_with_several_keys_imports_every_key(
    certgate: Certgate, openssl_ca: OpensslCA, tmp_path: Path, legacy: bool
) -> None:
    """Windows and Java export several certificates with their keys in one file; the
    library certgate reads PKCS#12 with returns the first key only."""
    pairs, leaves = [], []
    for host in ("one.example.com", "two.example.com"):
        leaf, key = openssl_ca.issue(host, [host], tmp_path / host)
        encrypted = tmp_path / f"{host}.p8"
        cipher = ["-v1", "PBE-SHA1-3DES"] if legacy else ["-v2", "aes-256-cbc"]
        openssl(
            "pkcs8", "-topk8", *cipher, "-in", key, "-outform", "DER", "-out", encrypted,
            "-passout", f"pass:{PASSWORD}",
        )  # fmt: skip
        der = to_der(leaf, tmp_path / f"{host}.der")
        pairs.append((der.read_bytes(), encrypted.read_bytes()))
        leaves.append(leaf)
    p12 = tmp_path / "both.pfx"
    p12.write_bytes(asn1.pfx_of_pairs(pairs))
    listed = openssl("pkcs12", "-in", p12, "-passin", f"pass:{PASSWORD}", "-nodes")
    assert listed.count("BEGIN PRIVATE KEY") == 2  # the file is what openssl says it is

    entries = imported(certgate, "--password-file", secret_file(tmp_path, PASSWORD), p12)

    assert sorted(e["kind"] for e in entries) == ["certificate"] * 2 + ["private-key"] * 2
    for leaf in leaves:
        entry = certificate_entry(entries, leaf)
        assert entry["status"] == "linked"
        assert certgate.show(entry["id"])["has_private_key"] is True


@pytest.mark.parametrize("der", [False, True], ids=["pem", "der"])
def test_pkcs7_bundle_imports_every_certificate(
    certgate: Certgate,
    openssl_ca: OpensslCA,
    outside_leaf: tuple[Path, Path],
    tmp_path: Path,
    der: bool,
) -> None:
    leaf, _ = outside_leaf
    everything = [leaf, openssl_ca.intermediate, openssl_ca.root]
    p7b = pkcs7(tmp_path / "bundle.p7b", everything, der=der)

    entries = [e for e in imported(certgate, p7b) if e["kind"] == "certificate"]

    assert {e["status"] for e in entries} == {"added"}, entries
    assert sorted(e["fingerprint_sha256"] for e in entries) == sorted(map(fingerprint, everything))
    view = certgate.show(fingerprint(leaf))
    assert view["chain"] == [fingerprint(p) for p in everything]
    assert view["has_private_key"] is False
    assert codes(view) == {"private-key-missing"}


def key_file(key: Path, form: str, tmp_path: Path) -> Path:
    """The RSA key as other servers store it."""
    out = tmp_path / f"key.{form}"
    if form == "traditional-pem":  # BEGIN RSA PRIVATE KEY
        openssl("rsa", "-in", key, "-traditional", "-out", out)
    elif form == "pkcs8-der":
        openssl("pkcs8", "-topk8", "-nocrypt", "-in", key, "-outform", "DER", "-out", out)
    else:  # encrypted PKCS#8 PEM, AES-256
        openssl(
            "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", key, "-out", out,
            "-passout", f"pass:{PASSWORD}",
        )  # fmt: skip
    return out


@pytest.mark.parametrize("cipher", ["aes128", "aes192", "aes256", "des3"])
def test_traditional_encrypted_key_of_each_genrsa_cipher_imports(
    certgate: Certgate, tmp_path: Path, cipher: str
) -> None:
    """``openssl genrsa -aes128|-aes192|-aes256|-des3``: BEGIN RSA PRIVATE KEY, DEK-Info."""
    key = tmp_path / "server.key"
    openssl("genrsa", f"-{cipher}", "-passout", f"pass:{PASSWORD}", "-traditional", "-out", key)
    assert "Proc-Type: 4,ENCRYPTED" in key.read_text()

    wrong = secret_file(tmp_path, "not the password", "wrong.txt")
    (refused,) = imported(certgate, "--password-file", wrong, key, expect=1)
    assert refused["error_code"] == "wrong-password"
    (entry,) = imported(certgate, key, env={"CERTGATE_IMPORT_PASSWORD": PASSWORD})
    assert (entry["kind"], entry["status"]) == ("private-key", "added")
    public = tmp_path / "server.pub"
    openssl("pkey", "-in", key, "-passin", f"pass:{PASSWORD}", "-pubout", "-outform", "DER",
            "-out", public)  # fmt: skip
    assert entry["fingerprint_sha256"] == hashlib.sha256(public.read_bytes()).hexdigest()


@pytest.mark.parametrize("form", ["traditional-pem", "pkcs8-der", "encrypted-pkcs8"])
@pytest.mark.parametrize("key_first", [True, False], ids=["key-first", "certificate-first"])
def test_key_and_certificate_link_in_either_order(
    certgate: Certgate,
    outside_leaf: tuple[Path, Path],
    tmp_path: Path,
    form: str,
    key_first: bool,
) -> None:
    leaf, key = outside_leaf
    key = key_file(key, form, tmp_path)
    env = {"CERTGATE_IMPORT_PASSWORD": PASSWORD} if form == "encrypted-pkcs8" else {}
    count = len(certgate.certificates())

    if key_first:
        (key_entry,) = imported(certgate, key, env=env)
        assert (key_entry["kind"], key_entry["status"]) == ("private-key", "added")
        assert len(certgate.certificates()) == count  # a key alone is not a certificate
        (cert_entry,) = imported(certgate, leaf)
        assert cert_entry["status"] == "linked"
    else:
        (cert_entry,) = imported(certgate, leaf)
        assert cert_entry["status"] == "added"
        assert "private-key-missing" in codes(certgate.show(cert_entry["id"]))
        (key_entry,) = imported(certgate, key, env=env)
        assert (key_entry["kind"], key_entry["status"]) == ("private-key", "linked")
        assert "iis.example.com" in key_entry["message"]

    view = certgate.show(cert_entry["id"])
    assert view["has_private_key"] is True
    assert "private-key-missing" not in codes(view)


@pytest.mark.parametrize("der", [False, True], ids=["pem", "der"])
def test_crl_is_refused_by_name(
    certgate: Certgate, openssl_ca: OpensslCA, tmp_path: Path, der: bool
) -> None:
    crl = openssl_ca.crl(tmp_path / "root.crl", der=der)
    before = certgate.certificates()

    run = certgate("cert", "import", crl, expect=1)

    assert re.search(rf"{re.escape(str(crl))}\s+error\s+file\s+.*\bCRL\b", run.stdout), run.stdout
    (entry,) = imported(certgate, crl, expect=1)
    assert (entry["status"], entry["error_code"]) == ("error", "not-a-certificate")
    assert certgate.certificates() == before


@pytest.mark.parametrize(
    "content",
    [b"hello, this is not a certificate\n", bytes(range(256)) * 4, b"\x30\x82\x05\x00\x02\x01"],
    ids=["text", "binary", "truncated-der"],
)
def test_garbage_is_refused(certgate: Certgate, tmp_path: Path, content: bytes) -> None:
    garbage = tmp_path / "garbage.cer"
    garbage.write_bytes(content)

    (entry,) = imported(certgate, garbage, expect=1)

    assert entry["status"] == "error" and entry["error_code"]
    assert entry["message"] and "\n" not in entry["message"]


def test_several_files_one_bad_the_good_ones_import(
    certgate_exe: Certgate,
    openssl_ca: OpensslCA,
    outside_leaf: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    leaf, key = outside_leaf
    garbage = tmp_path / "notes.txt"
    garbage.write_text("the root is attached\n")
    before = len(certgate_exe.reader.certificates())

    run = certgate_exe("cert", "import", leaf, garbage, key, openssl_ca.root, expect=1)

    assert run.stderr == ""  # the per-file outcome is the output; the exit code says "not all"
    status = {line.split()[0]: line.split()[1] for line in run.stdout.splitlines()[1:]}
    assert status.keys() == {str(leaf), str(garbage), str(key), str(openssl_ca.root)}
    assert status[str(leaf)] == "linked"
    assert status[str(garbage)] == "error"
    assert status[str(key)] in ("added", "linked")
    assert status[str(openssl_ca.root)] == "added"
    assert len(certgate_exe.reader.certificates()) == before + 2
    assert certgate_exe.reader.show(fingerprint(leaf))["has_private_key"] is True


# --- export, read back by openssl ---------------------------------------------------------------


@pytest.fixture
def installed(
    certgate: Certgate, openssl_ca: OpensslCA, outside_leaf: tuple[Path, Path], tmp_path: Path
) -> tuple[int, Path, Path]:
    """A CA-signed certificate with its key and full chain in the store: (id, leaf, key)."""
    leaf, key = outside_leaf
    imported(certgate, leaf, key, openssl_ca.intermediate, openssl_ca.root)
    return certgate.show(fingerprint(leaf))["id"], leaf, key


def test_manual_chain_must_link_and_automatic_restores(
    certgate: Certgate, openssl_ca: OpensslCA, installed: tuple[int, Path, Path], tmp_path: Path
) -> None:
    """The guide's Certificate Chain: Automatic, or Manually Specified (PEM only)."""
    certificate_id, leaf, _ = installed
    automatic = certgate.show(certificate_id)
    assert automatic["chain_mode"] == "automatic" and len(automatic["chain"]) == 3
    stranger = make_ca(tmp_path / "stranger", "Stranger")
    not_a_chain = tmp_path / "wrong.pem"
    not_a_chain.write_text(openssl_ca.root.read_text() + stranger.intermediate.read_text())
    as_der = to_der(openssl_ca.intermediate, tmp_path / "intermediate.cer")

    for wrong, says in ((not_a_chain, "did not sign"), (as_der, "PEM")):
        run = certgate("cert", "chain", str(certificate_id), "--manual", wrong, expect=1)
        assert run.error_lines[0].startswith("error: Manually Specified: ")
        assert says in run.error_lines[0]
        assert certgate.show(certificate_id) == automatic

    certgate("cert", "chain", str(certificate_id), "--manual", openssl_ca.intermediate)

    manual = certgate.show(certificate_id)
    assert manual["chain_mode"] == "manual"
    assert manual["chain"] == [fingerprint(leaf), fingerprint(openssl_ca.intermediate)]
    assert "chain-incomplete" in codes(manual)  # the administrator left the root out

    certgate("cert", "chain", str(certificate_id), "--automatic")

    assert certgate.show(certificate_id) == automatic


def test_certificate_alone_exports_as_der(
    certgate_exe: Certgate, openssl_ca: OpensslCA, outside_leaf: tuple[Path, Path], tmp_path: Path
) -> None:
    leaf, key = outside_leaf
    imported(certgate_exe.reader, leaf, key, openssl_ca.intermediate, openssl_ca.root)
    out = tmp_path / "export" / "support.cer"
    out.parent.mkdir()

    result = certgate_exe.json("cert", "export", fingerprint(leaf)[:20], "-o", out)

    assert result["format"] == "der"
    assert fingerprint(out, der=True) == fingerprint(leaf)
    assert mode(out) == 0o600
    assert "PRIVATE KEY" not in out.read_bytes().decode("latin-1")


def test_chain_exports_as_pkcs7_openssl_lists(
    certgate: Certgate, openssl_ca: OpensslCA, installed: tuple[int, Path, Path], tmp_path: Path
) -> None:
    certificate_id, leaf, _ = installed
    out = tmp_path / "chain.p7b"

    assert certgate.json("cert", "export", str(certificate_id), "--chain", "-o", out)["format"] == (
        "pkcs7"
    )

    listed = subjects(openssl("pkcs7", "-inform", "DER", "-in", out, "-print_certs"))
    expected = [openssl("x509", "-in", p, "-noout", "-subject").split("=", 1)[1].strip()
                for p in (leaf, openssl_ca.intermediate, openssl_ca.root)]  # fmt: skip
    assert sorted(listed) == sorted(expected)
    assert mode(out) == 0o600


@pytest.mark.parametrize("legacy", [False, True], ids=["aes-256", "legacy-3des"])
def test_key_and_chain_export_as_pkcs12_openssl_3_reads(
    certgate: Certgate, installed: tuple[int, Path, Path], tmp_path: Path, legacy: bool
) -> None:
    certificate_id, leaf, _ = installed
    passphrase = secret_file(tmp_path, PASSWORD)
    out = tmp_path / "failover.p12"
    out.write_bytes(b"old contents")
    out.chmod(0o644)  # an earlier export someone left readable

    certgate(
        "cert", "export", str(certificate_id), "--key", "--chain", "--passphrase-file",
        passphrase, "-o", out, *(["--legacy"] if legacy else []),
    )  # fmt: skip

    assert mode(out) == 0o600
    info = openssl("pkcs12", "-in", out, "-info", "-nokeys", "-passin", f"file:{passphrase}")
    assert len(subjects(info)) == 3
    structure = openssl(
        "pkcs12", "-in", out, "-info", "-noout", "-passin", f"file:{passphrase}", stderr=True
    )
    if legacy:  # what Windows Server 2016 reads; OpenSSL 3 still reads it without -legacy
        assert "MAC: sha1" in structure and "3-KeyTripleDES" in structure
    else:
        assert "MAC: sha256" in structure and "PBES2" in structure and "AES-256" in structure
    key_pem = openssl("pkcs12", "-in", out, "-nocerts", "-nodes", "-passin", f"file:{passphrase}")
    public = openssl("pkey", "-pubout", stdin=key_pem.encode())
    assert public == public_key_of_certificate(leaf)


def test_key_alone_exports_as_encrypted_pkcs8(
    certgate: Certgate, installed: tuple[int, Path, Path], tmp_path: Path
) -> None:
    certificate_id, leaf, _ = installed
    passphrase = secret_file(tmp_path, PASSWORD)
    out = tmp_path / "key.p8"

    result = certgate.json(
        "cert", "export", str(certificate_id), "--key", "--no-certificate",
        "--passphrase-file", passphrase, "-o", out,
    )  # fmt: skip

    assert result["format"] == "pkcs8"
    assert mode(out) == 0o600
    public = openssl("pkey", "-inform", "DER", "-in", out, "-passin", f"file:{passphrase}",
                     "-pubout")  # fmt: skip
    assert public == public_key_of_certificate(leaf)
    with pytest.raises(AssertionError, match="exited"):  # encrypted: the wrong passphrase fails
        openssl("pkey", "-inform", "DER", "-in", out, "-passin", "pass:wrong", "-noout")


def test_key_export_without_passphrase_is_refused_and_writes_nothing(
    certgate_exe: Certgate, outside_leaf: tuple[Path, Path], tmp_path: Path
) -> None:
    leaf, key = outside_leaf
    imported(certgate_exe.reader, leaf, key)
    out = tmp_path / "key.p12"

    run = certgate_exe("cert", "export", fingerprint(leaf), "--key", "-o", out, expect=1)

    assert run.error_lines[0].startswith("error: a private key is never exported unencrypted")
    assert len(run.error_lines) == 1
    assert not out.exists()
    empty = secret_file(tmp_path, "")
    certgate_exe.reader("cert", "export", fingerprint(leaf), "--key", "--passphrase-file", empty,
                 "-o", out, expect=1)  # fmt: skip
    assert not out.exists()


def test_a_short_export_passphrase_is_refused_and_writes_nothing(
    certgate: Certgate, installed: tuple[int, Path, Path], tmp_path: Path
) -> None:
    certificate_id, _, _ = installed
    out = tmp_path / "key.p12"
    short = secret_file(tmp_path, "1234567")

    run = certgate(
        "cert", "export", str(certificate_id), "--key", "--passphrase-file", short, "-o", out,
        expect=1,
    )  # fmt: skip

    assert run.error_lines == [
        "error: Passphrase: a passphrase needs at least 8 characters, or explicitly choose to "
        "export the private key without encryption"
    ]
    assert not out.exists()


def test_unencrypted_private_key_is_an_explicit_choice(
    certgate: Certgate, installed: tuple[int, Path, Path], tmp_path: Path
) -> None:
    certificate_id, leaf, _ = installed
    out = tmp_path / "plain.p8"

    certgate(
        "cert", "export", str(certificate_id), "--key", "--no-certificate",
        "--unencrypted-private-key", "-o", out,
    )  # fmt: skip

    assert mode(out) == 0o600
    public = openssl("pkey", "-inform", "DER", "-in", out, "-pubout", "-passin", "pass:")
    assert public == public_key_of_certificate(leaf)


def test_failover_copy_to_a_second_appliance(
    certgate_exe: Certgate, openssl_ca: OpensslCA, tmp_path: Path
) -> None:
    """The guide's "Copy the SSL Certificate to ... Failover": export certificate, key and
    chain with a passphrase on the primary, import the file on the backup."""
    _, leaf = request_signed_by(certgate_exe.reader, openssl_ca, tmp_path, "Primary site")
    imported(certgate_exe.reader, leaf, openssl_ca.intermediate, openssl_ca.root)
    primary = certgate_exe.reader.show(fingerprint(leaf))
    passphrase = secret_file(tmp_path, PASSWORD)
    copy = tmp_path / "copy.p12"
    certgate_exe(
        "cert", "export", str(primary["id"]), "--key", "--chain", "--passphrase-file",
        passphrase, "-o", copy,
    )  # fmt: skip
    backup = Certgate(tmp_path / "backup", subprocess=True)
    backup("init")

    entries = imported(backup, "--password-file", passphrase, copy)

    assert {e["status"] for e in entries} <= {"added", "linked"}
    copied = backup.reader.show(primary["fingerprint_sha256"])
    assert copied["fingerprint_sha256"] == primary["fingerprint_sha256"]
    assert copied["has_private_key"] is True
    assert copied["chain"] == primary["chain"]
    assert copied["friendly_name"] == primary["friendly_name"] == "Primary site"
    assert copied["warnings"] == []
    keys = [tmp_path / "primary.p8", tmp_path / "backup.p8"]
    for node, out in zip((certgate_exe.reader, backup.reader), keys, strict=True):
        node("cert", "export", primary["fingerprint_sha256"], "--key", "--no-certificate",
             "--unencrypted-private-key", "-o", out)  # fmt: skip
    assert keys[0].read_bytes() == keys[1].read_bytes()
    master_keys = [node.data_dir / "master.key" for node in (certgate_exe, backup)]
    assert master_keys[0].read_bytes() != master_keys[1].read_bytes()  # re-sealed, not copied


def test_manual_chain_root_first_as_the_guide_shows_it_is_put_in_order(
    certgate: Certgate, openssl_ca: OpensslCA, installed: tuple[int, Path, Path], tmp_path: Path
) -> None:
    certificate_id, leaf, _ = installed
    root_first = tmp_path / "root-first.pem"
    root_first.write_text(openssl_ca.root.read_text() + openssl_ca.intermediate.read_text())

    said = certgate("cert", "chain", str(certificate_id), "--manual", root_first)

    view = certgate.show(certificate_id)
    assert view["chain_mode"] == "manual"
    assert view["chain"] == [
        fingerprint(leaf),
        fingerprint(openssl_ca.intermediate),
        fingerprint(openssl_ca.root),
    ]
    assert "chain-incomplete" not in codes(view)
    assert "note: the chain was put in order, nearest issuer first: " in said.stdout
    again = certgate.json("cert", "chain", str(certificate_id), "--manual", root_first)
    assert again["chain"] == view["chain"]
    assert len(again["notices"]) == 1 and "put in order" in again["notices"][0]


# --- roles as the guide tells them apart ---------------------------------------------------------


def openssl_self_signed(tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    """``openssl req -x509`` as an administrator runs it: CA:TRUE by default, DNS SANs."""
    certificate, key = tmp_path / "self.pem", tmp_path / "self.key"
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", certificate, "-subj", "/CN=Intranet Portal", "-days", "90",
        "-addext", "subjectAltName=DNS:intranet.example.test,DNS:www.intranet.example.test",
        *extra,
    )  # fmt: skip
    assert "CA:TRUE" in openssl("x509", "-in", certificate, "-noout", "-ext", "basicConstraints")
    return certificate, key


def test_openssl_self_signed_with_its_key_and_server_names_is_a_server_certificate(
    certgate: Certgate, tmp_path: Path
) -> None:
    certificate, key = openssl_self_signed(tmp_path)

    (alone,) = imported(certgate, certificate)
    assert certgate.show(alone["id"])["role"] == "root"  # no key: nothing to serve it with
    (key_entry,) = imported(certgate, key)
    assert key_entry["status"] == "linked"

    view = certgate.show(alone["id"])
    assert view["role"] == "server"
    assert "self-signed" in codes(view)  # the guide's warning, which a root does not get
    (listed,) = [row for row in certgate.certificates() if row["id"] == alone["id"]]
    assert listed["role"] == "server"


def test_openssl_root_without_server_names_stays_a_root(certgate: Certgate, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca_key = tmp_path / "ca.key"
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", ca_key, "-out", ca, "-subj", "/CN=Lab Root CA", "-days", "90",
    )  # fmt: skip
    entries = imported(certgate, ca, ca_key)
    view = certgate.show(certificate_entry(entries, ca)["id"])
    assert (view["role"], view["has_private_key"]) == ("root", True)
    assert "self-signed" not in codes(view)
