"""Who signed whom in a PEM bundle of certificates, worked out apart from everything else.

A large import spends most of its time in two kinds of work: reading every certificate's
fields (Python, holding the GIL) and checking every issuer's signature (OpenSSL). Threads
cannot overlap them well (each check needs the GIL back, which the reading thread holds),
so the import runs this module as a process of its own: it parses the same bundle, pairs
each certificate with its issuer by the exact bytes of the names (as nearly every bundle
has them) and checks those signatures on another core while the import reads the fields.

Run as ``python -m certgate.pki.bundle_signatures``: the bundle on standard input; on
standard output, one line per pair checked: child fingerprint, issuer fingerprint, 1 or 0.
"""

from __future__ import annotations

import hashlib
import sys
from collections import defaultdict
from collections.abc import Iterator

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certgate.pki.chain import issued_by_key
from certgate.pki.der import certificate_parts

#: A name given to more certificates than this is left to the import: it stops at the first
#: candidate that verifies, and checking all of them here would waste the work.
MAX_TWINS = 2


def checked_pairs(bundle: bytes) -> Iterator[tuple[str, str, bool]]:
    """(child fingerprint, issuer fingerprint, signature verifies) for each pair found."""
    certificates = x509.load_pem_x509_certificates(bundle)
    read = []
    by_subject: dict[bytes, list[int]] = defaultdict(list)
    for index, certificate in enumerate(certificates):
        der = certificate.public_bytes(Encoding.DER)
        parts = certificate_parts(der)
        read.append((hashlib.sha256(der).hexdigest(), parts))
        if parts is not None:
            by_subject[parts.subject].append(index)
    for index, (fingerprint, parts) in enumerate(read):
        issuers = by_subject.get(parts.issuer, []) if parts is not None else []
        if parts is None or len(issuers) > MAX_TWINS:
            continue
        for issuer in issuers:
            if issuer != index:
                verifies = issued_by_key(certificates[index], certificates[issuer], parts.tbs)
                yield fingerprint, read[issuer][0], verifies


def main() -> None:
    bundle = sys.stdin.buffer.read()
    try:
        lines = [f"{child} {issuer} {int(ok)}\n" for child, issuer, ok in checked_pairs(bundle)]
    except ValueError:  # not a plain bundle after all: the import checks everything itself
        return
    sys.stdout.write("".join(lines))


if __name__ == "__main__":
    main()
