"""The certificates and requests the store holds, parsed again from their DER.

A row whose DER no longer parses (a failing disk, a hand edit) is said as such, naming the
row, instead of a bare parser error: the operation that needed it is refused and changes
nothing, and every other row goes on (the listeners refuse only its addresses).
"""

from __future__ import annotations

from cryptography import x509

from certgate.errors import DamagedRowError
from certgate.store.models import CertificateRow, RequestRow


def stored_certificate(row: CertificateRow) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(row.der)
    except ValueError:
        raise _damaged("certificate", row) from None


def stored_request(row: RequestRow) -> x509.CertificateSigningRequest:
    try:
        return x509.load_der_x509_csr(row.der)
    except ValueError:
        raise _damaged("request", row) from None


def _damaged(kind: str, row: CertificateRow | RequestRow) -> DamagedRowError:
    return DamagedRowError(
        f"{kind} {row.id} ({row.friendly_name!r}) is damaged in the store: its DER does not "
        f"parse. Delete it and import it again, or restore a backup"
    )
