"""Bad input never produces a traceback: the installed ``certgate`` answers every mistake with
one ``error:`` line (or click's usage message) and a non-zero exit code, and changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from certgate.limits import MANUAL_CHAIN_MAX
from tests.integration.conftest import Certgate, Run

NOT_FOUND = "/nonexistent/certgate-test/file.pem"
#: A file that is there and answers every read with an I/O error, even to root.
UNREADABLE = "/proc/self/mem"
#: A file that never ends.
ENDLESS = "/dev/zero"


def assert_one_clear_error(run: Run, *, says: str | None = None) -> None:
    """One ``error: ...`` line, or click's usage block ending in one ``Error: ...`` line."""
    assert run.returncode in (1, 2), run
    lines = run.error_lines
    if lines[0].startswith("Usage:"):
        assert run.returncode == 2
        assert lines[-1].startswith("Error: ") and len([ln for ln in lines if "Error" in ln]) == 1
    else:
        assert run.returncode == 1
        assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    if says is not None:
        assert re.search(says, lines[-1]), lines[-1]


#: Run by the installed executable (what a shell user sees); the rest run the same ``main()``
#: in-process, which is equivalent except for failures at import time, covered here.
BY_EXECUTABLE = [
    (["cert", "show", "999"], "no certificate with id 999"),
    (["cert", "show", "zzz"], "'zzz' is neither an id nor a fingerprint"),
    (["cert", "import", NOT_FOUND], "cannot read"),
    (["cert", "chain", "1", "--manual", NOT_FOUND], "cannot read"),
    (["certificate", "list"], "No such command"),
]
IN_PROCESS = [
    (["cert", "export", "1", "-o", "/nonexistent/dir/out.cer"], "cannot write"),
    (["cert", "show", "deadbeefdeadbeef"], "no certificate with fingerprint deadbeefdeadbeef"),
    (["cert", "delete", "999"], "no certificate with id 999"),
    (["cert", "rename", "zzz", "New name"], "neither an id nor a fingerprint"),
    (["cert", "rename", "1", "   "], "Certificate Friendly Name"),
    (["cert", "chain", "999", "--automatic"], "no certificate with id 999"),
    (["cert", "chain", "1"], "exactly one of --automatic or --manual"),
    (["cert", "export", "999", "-o", "out.cer"], "no certificate with id 999"),
    (["cert", "export", "1", "--key", "--passphrase-file", NOT_FOUND, "-o", "k"], "cannot"),
    (["cert", "import", "--password-file", NOT_FOUND, "."], None),
    (["cert", "create", "--name", "x", "--cn", "x", "--key", "dsa1024"], "dsa1024"),
    (["cert", "create", "--name", "x", "--cn", "x", "--days", "0"], "days"),
    (["cert", "create", "--name", "x", "--cn", "x", "--days", "many"], "many"),
    (["request", "show", "999"], "no certificate request with id 999"),
    (["request", "show", "zzz"], "neither an id nor a fingerprint"),
    (["request", "delete", "999"], "no certificate request with id 999"),
    (["ip", "add", "::"], "the wildcard address"),
    (["ip", "add", "255.255.255.255"], "the broadcast address"),
    # a file that exists and cannot be read (EIO): "internal error (OSError)", exit 70
    (
        ["acme", "account", "set", "--eab-kid", "k", "--eab-hmac-key-file", UNREADABLE],
        "cannot read",
    ),
    (["cert", "import", UNREADABLE], "cannot read"),
    # a file of no end: read whole until memory ran out ("internal error (MemoryError)")
    (["cert", "export", "1", "--key", "--passphrase-file", ENDLESS, "-o", "k"], "Passphrase"),
    (["user", "add", "zed", "--role", "auditor", "--password-file", ENDLESS], "password"),
    (["email", "set", "--ca-file", ENDLESS], "CA bundle"),
    (["acme", "account", "set", "--eab-kid", "k", "--eab-hmac-key-file", ENDLESS], None),
    # nothing to change: "saved", and a TLS settings change recorded in the audit trail
    (["tls", "set"], "give a setting to change"),
    (["email", "set"], "give a setting to change"),
    # an id no database column holds: "internal error (OverflowError)", exit 70
    (["token", "revoke", "99999999999999999999"], "99999999999999999999"),
    # a byte that is not UTF-8 (a lone surrogate to Python): "internal error", exit 70
    (["node", "remove", "node-\udcff"], "node name"),
]


@pytest.mark.parametrize(
    ("args", "says", "executable"),
    [pytest.param(a, s, True, id="exe: " + " ".join(a)) for a, s in BY_EXECUTABLE]
    + [pytest.param(a, s, False, id=" ".join(a)) for a, s in IN_PROCESS],
)
def test_bad_references_and_arguments(
    certgate_exe: Certgate, args: list[str], says: str | None, executable: bool
) -> None:
    before = certgate_exe.reader.certificates()

    run = (certgate_exe if executable else certgate_exe.reader)(*args, expect=None)

    assert_one_clear_error(run, says=says)
    assert run.stdout == ""
    assert certgate_exe.reader.certificates() == before


@pytest.mark.parametrize(
    "args",
    [
        ["cert", "list"],
        ["cert", "show", "1"],
        ["request", "list"],
        ["cert", "create", "--name", "x", "--cn", "x"],
    ],
    ids=" ".join,
)
def test_uninitialised_data_directory_says_run_init(tmp_path: Path, args: list[str]) -> None:
    certgate = Certgate(tmp_path / "never-initialised", subprocess=args == ["cert", "list"])

    run = certgate(*args, expect=1)

    assert_one_clear_error(
        run, says=r"not an initialised certgate data directory: run 'certgate init'"
    )
    assert not (tmp_path / "never-initialised").exists()  # reading does not create it


def test_broken_data_directories_are_explained(certgate_exe: Certgate) -> None:
    data_dir = certgate_exe.data_dir
    master = data_dir / "master.key"

    master.chmod(0o644)
    assert_one_clear_error(certgate_exe("cert", "list", expect=1), says="0600")
    in_process = certgate_exe.reader
    master.chmod(0o600)

    original = master.read_bytes()
    master.write_bytes(original[:16])
    assert_one_clear_error(in_process("cert", "list", expect=1), says="32 bytes")
    master.write_bytes(original)

    (data_dir / "certgate.db").rename(data_dir / "moved.db")
    assert_one_clear_error(in_process("cert", "list", expect=1), says="database is not initialised")


def test_a_users_username_and_password_are_not_the_smtp_relays(certgate: Certgate) -> None:
    """Adding a user with a short password said "SMTP password: ..." (the email settings'
    label of the same key)."""
    before = certgate.json("user", "list")
    short = {"CERTGATE_USER_PASSWORD": "short"}
    refused = certgate("user", "add", "bob", "--role", "auditor", env=short, expect=1)
    assert refused.error_lines == ["error: password: must be at least 10 characters"]

    long_enough = {"CERTGATE_USER_PASSWORD": "long enough password"}
    refused = certgate("user", "add", "bob smith", "--role", "auditor", env=long_enough, expect=1)
    assert refused.error_lines == ["error: username: use 1 to 64 letters, digits or . _ @ -"]
    assert certgate.json("user", "list") == before


def test_a_manual_chain_over_the_apis_limit_is_refused_by_its_size(
    certgate: Certgate, tmp_path: Path
) -> None:
    """The API refuses a manual chain over MANUAL_CHAIN_MAX characters; ``cert chain
    --manual`` read any file whole (/dev/zero until memory ran out)."""
    huge = tmp_path / "huge.pem"
    huge.write_bytes(b"x" * (MANUAL_CHAIN_MAX + 1))
    before = certgate.show(1)
    for source in (huge, Path("/dev/zero")):
        refused = certgate("cert", "chain", "1", "--manual", source, expect=1)
        assert refused.error_lines == [
            f"error: Manually Specified: is larger than {MANUAL_CHAIN_MAX} characters"
        ]
    assert certgate.show(1) == before


def test_a_database_url_libpq_cannot_parse_is_not_quoted_with_its_password(
    certgate: Certgate,
) -> None:
    """libpq quotes a URL it cannot parse; the error line (and serve's log) showed its
    password."""
    url = "postgresql://certgate:s3cret-pw@[::1/certgate"

    run = certgate("--database-url", url, "cert", "list", expect=1)

    assert_one_clear_error(run, says="store unavailable")
    assert "s3cret-pw" not in run.stderr and "certgate:***@" in run.stderr


def test_an_export_that_could_not_be_written_leaves_no_audit_event(certgate: Certgate) -> None:
    """The audit trail recorded the private key exported while no file was written."""
    before = certgate.json("audit", "list")["events"]
    out = "/nonexistent/certgate-test/factory.p12"

    run = certgate(
        "cert", "export", "1", "--key", "--unencrypted-private-key", "-o", out, expect=None
    )  # fmt: skip

    assert_one_clear_error(run, says=f"cannot write {out}")
    assert certgate.json("audit", "list")["events"] == before
