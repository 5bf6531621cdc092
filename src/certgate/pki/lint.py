"""The CA/Browser Forum Baseline Requirements findings for a server certificate (pkilint).

What a public CA would refuse to issue, or a browser may refuse to accept, told before either
does. pkilint is imported on first use: it costs about 0.4 s and 50 MiB, paid only by a
process that shows a certificate's own page, and its validators (0.2 s to build) are built
once per certificate type and reused, one certificate at a time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any

#: pkilint's own name for the rules it checks, shown with every finding.
RULES = "CA/Browser Forum Baseline Requirements (pkilint)"


class LintSeverity(StrEnum):
    ERROR = "error"  # a "MUST" broken: a public CA may not issue it, a browser may refuse it
    WARNING = "warning"  # a "SHOULD" broken


@dataclass(frozen=True)
class LintFinding:
    severity: LintSeverity
    code: str  # pkilint's, e.g. "cabf.serverauth.subscriber.authority_info_access_extension_absent"
    message: str  # the code in words, with pkilint's detail when it gives one
    where: str  # the part of the certificate, e.g. "certificate.tbsCertificate.extensions"


_LOCK = threading.Lock()  # pkilint's validators are not documented as thread-safe


@lru_cache(maxsize=1024)
def lint_server_certificate(der: bytes) -> tuple[LintFinding, ...]:
    """Errors and warnings (not notices) for the server certificate ``der``, errors first."""
    from pkilint import finding_filter, loader
    from pkilint.cabf import serverauth
    from pkilint.validation import ValidationFindingSeverity

    with _LOCK:
        try:
            document = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "leaf")
            certificate_type = serverauth.determine_certificate_type(document)
            results = _validator(certificate_type).validate(document.root)
            results, _ = finding_filter.filter_results(
                serverauth.create_serverauth_finding_filters(certificate_type), results
            )
        except Exception as error:
            return (
                LintFinding(
                    LintSeverity.ERROR,
                    "pkilint.failed",
                    f"pkilint could not check this certificate ({type(error).__name__})",
                    "certificate",
                ),
            )
    severities = {
        ValidationFindingSeverity.FATAL: LintSeverity.ERROR,
        ValidationFindingSeverity.ERROR: LintSeverity.ERROR,
        ValidationFindingSeverity.WARNING: LintSeverity.WARNING,
    }
    found = [
        LintFinding(
            severities[description.finding.severity],
            description.finding.code,
            _in_words(description.finding.code, description.message),
            str(result.node.path),
        )
        for result in results
        for description in result.finding_descriptions
        if description.finding.severity in severities
    ]
    found.sort(key=lambda finding: finding.severity is not LintSeverity.ERROR)
    return tuple(found)


@cache
def _validator(certificate_type: Any) -> Any:
    from pkilint.cabf import serverauth
    from pkilint.pkix import certificate

    return certificate.create_pkix_certificate_validator_container(
        serverauth.create_decoding_validators(),
        serverauth.create_validators(certificate_type),
    )


def _in_words(code: str, detail: str | None) -> str:
    """``...subscriber.key_usage_extension_absent`` -> ``Key usage extension absent``."""
    words = code.rsplit(".", 1)[-1].replace("_", " ")
    text = words[:1].upper() + words[1:]
    if not detail:
        return text
    return detail if detail.lower().startswith(words.lower()) else f"{text}: {detail}"
