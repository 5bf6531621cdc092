"""Names are text, not terminal commands: a certificate whose subject holds escape sequences
is listed and shown with them made visible, never raw; a name typed on any face with a
control character is refused, the same way on each."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from certgate.cli.output import VisibleFormatter
from certgate.errors import ValidationError
from certgate.service import auth, certificates
from certgate.service.appliance import Appliance
from tests.integration.conftest import Certgate
from tests.support.pki import issue, new_key

HOSTILE = "esc\x1b]0;PWNED\x07\x1b[2J"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def _hostile_certificate(path: Path) -> Path:
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTILE)])
    organization = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "right\u202eleft\x9b")
    issuer = x509.Name([organization, x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    certificate = issue(subject, key.public_key(), issuer, key, ca=False)
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def _no_raw_control(text: str) -> None:
    for character in RAW:
        assert character not in text, repr(text)


def test_a_subject_with_escape_sequences_never_reaches_the_terminal_raw(
    certgate_exe: Certgate, tmp_path: Path
) -> None:
    certgate_exe("cert", "import", _hostile_certificate(tmp_path / "hostile.pem"))
    listed = certgate_exe("cert", "list")
    _no_raw_control(listed.stdout + listed.stderr)
    assert "esc\\x1b]0;PWNED\\x07\\x1b[2J" in listed.stdout  # visible, not obeyed
    [found] = [c for c in json.loads(certgate_exe("cert", "list", "--json").stdout) if c["id"] > 1]
    assert found["friendly_name"] == "esc\\x1b]0;PWNED\\x07\\x1b[2J"  # stored as text
    for args in (("cert", "show", str(found["id"])), ("cert", "show", str(found["id"]), "--json")):
        shown = certgate_exe(*args)
        _no_raw_control(shown.stdout + shown.stderr)
    shown_json = json.loads(certgate_exe("cert", "show", str(found["id"]), "--json").stdout)
    assert "\x1b" in shown_json["subject"]  # the certificate itself is what it is


def test_names_stored_before_the_rule_are_printed_visibly(certgate: Certgate) -> None:
    app = Appliance.open(certgate.data_dir)
    try:
        with app.store.transaction("test") as repository:  # as an older version stored it
            [row] = [row for row in repository.all_certificates() if row.is_factory]
            row.friendly_name = HOSTILE
    finally:
        app.close()
    for args in (("cert", "list"), ("cert", "show", "1"), ("ip", "list")):
        _no_raw_control(certgate(*args).stdout)


@pytest.mark.parametrize("name", ["line\nbreak", "carriage\rreturn", "nul\x00", "esc\x1b[2J"])
def test_a_typed_name_with_a_control_character_is_refused_on_the_cli(
    certgate: Certgate, name: str
) -> None:
    refused = certgate("cert", "rename", "1", name, expect=1)
    assert "control character" in refused.stderr
    created = certgate(
        "cert", "create", "--name", name, "--cn", "x.example.test", "--key", "p256", expect=1
    )
    assert "control character" in created.stderr
    assert certgate.show(1)["friendly_name"] != name
    token = certgate("token", "create", "--name", name, expect=1)
    assert "control character" in token.stderr


def test_the_service_rule_is_the_same_for_every_face(certgate: Certgate) -> None:
    app = Appliance.open(certgate.data_dir)
    try:
        for bad in ("a\x1bb", "a\x85b", "a\u202eb", "a\u2028b", "\t"):
            with pytest.raises(ValidationError, match=r"control character|required"):
                certificates.rename(app, 1, bad)
            with pytest.raises(ValidationError, match=r"control character|required"):
                auth.create_token(app, bad, "auditor")
        certificates.rename(app, 1, "  Zürich 证书  ")
        assert certificates.show_certificate(app, 1).friendly_name == "Zürich 证书"
    finally:
        app.close()


def test_serve_log_lines_show_control_characters_visibly() -> None:
    record = logging.LogRecord(
        "certgate.serve", logging.ERROR, __file__, 1, "cannot serve %s", (HOSTILE,), None
    )
    line = VisibleFormatter("%(levelname)s %(message)s").format(record)
    _no_raw_control(line)
    assert line == "ERROR cannot serve esc\\x1b]0;PWNED\\x07\\x1b[2J"
