"""Would a browser accept this chain for this name? pyca/cryptography's verifier (the Web PKI
profile: RFC 5280 and the CA/Browser Forum's rules) against a set of roots, and the
hostname match on its own, so an administrator sees which of the two fails.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from certgate.pki.captured import captured_warnings


def subject_for(name: str) -> x509.DNSName | x509.IPAddress:
    """The name a client connects with, as the verifier's subject."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def verify(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    name: str,
    at: dt.datetime,
) -> str | None:
    """None if ``leaf`` (with the ``intermediates`` sent) chains to one of ``roots`` and is
    valid for ``name`` at ``at``; otherwise the verifier's reason."""
    if not roots:
        return "no root certificate to check against"
    try:
        verifier = (
            PolicyBuilder()
            .store(Store(list(roots)))
            .time(at)
            .build_server_verifier(subject_for(name))
        )
        verifier.verify(leaf, list(intermediates))
    except (VerificationError, ValueError) as error:
        return str(error)
    return None


def names_of(leaf: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses of the leaf's subject alternative names."""
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    dns = [str(value) for value in sans.get_values_for_type(x509.DNSName)]
    return dns + [str(value) for value in sans.get_values_for_type(x509.IPAddress)]


def covers(leaf: x509.Certificate, name: str) -> bool:
    """Whether a subject alternative name of ``leaf`` matches ``name`` as browsers match it."""
    return matches_any(names_of(leaf), name)


def matches_any(patterns: Iterable[str], name: str) -> bool:
    """Whether one of ``patterns`` (a certificate's DNS names and IP addresses) matches
    ``name`` as browsers match it (RFC 6125: a wildcard stands for the whole leftmost label
    only; the Common Name is ignored)."""
    subject = subject_for(name)
    if isinstance(subject, x509.IPAddress):
        return any(_same_ip(value, subject.value) for value in patterns)
    wanted = name.rstrip(".").lower().split(".")
    for pattern in patterns:
        labels = pattern.rstrip(".").lower().split(".")
        if len(labels) != len(wanted):
            continue
        if labels == wanted or (labels[0] == "*" and labels[1:] == wanted[1:]):
            return True
    return False


def _same_ip(text: str, ip: object) -> bool:
    try:
        return ipaddress.ip_address(text) == ip
    except ValueError:
        return False


@cache
def system_roots() -> tuple[x509.Certificate, ...]:
    """The operating system's trust store (OpenSSL's default CA file), read once; a
    certificate in it that cryptography cannot read is left out."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return _read_bundle(Path(candidate).read_bytes())
    return ()


def _read_bundle(data: bytes) -> tuple[x509.Certificate, ...]:
    roots = []
    marker = b"-----BEGIN CERTIFICATE-----"
    with captured_warnings(keep=False):
        for block in data.split(marker)[1:]:
            try:
                roots.append(x509.load_pem_x509_certificate(marker + block))
            except ValueError:
                continue
    return tuple(roots)
