"""pkilint on what it cannot read: one clear finding, never an exception through a page."""

from __future__ import annotations

from certgate.pki.lint import LintSeverity, lint_server_certificate


def test_a_certificate_pkilint_cannot_decode_is_one_error_not_a_crash() -> None:
    [finding] = lint_server_certificate(b"\x30\x03\x02\x01\x00")  # a SEQUENCE, not a certificate
    assert finding.severity is LintSeverity.ERROR
    assert finding.message.startswith("pkilint could not check this certificate")
