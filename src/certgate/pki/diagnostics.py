"""Warnings about a certificate, derived when it is read (never stored).

Each warning has a stable code (for scripts, filters and the API) and a message for people.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from certgate.errors import ValidationError
from certgate.pki.certinfo import CertInfo
from certgate.pki.chain import Role, role_of
from certgate.pki.names import dns_name_to_ascii
from certgate.pki.trust import matches_any

EXPIRING_SOON = dt.timedelta(days=30)
_WEAK_HASHES = {"sha1", "md5", "md2", "md4"}


class WarningCode(StrEnum):
    """Every warning certgate derives: stable, for scripts, filters and the API."""

    SELF_SIGNED = "self-signed"
    CHAIN_INCOMPLETE = "chain-incomplete"
    CHAIN_EXPIRED = "chain-expired"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRING_SOON = "expiring-soon"
    WEAK_KEY = "weak-key"
    WEAK_SIGNATURE = "weak-signature"
    NO_SAN = "no-san"
    CN_NOT_IN_SAN = "cn-not-in-san"
    IP_SAN = "ip-san"
    HOSTNAME_NOT_COVERED = "hostname-not-covered"
    PRIVATE_KEY_MISSING = "private-key-missing"
    UNUSUAL_CONTENT = "unusual-content"

    @property
    def label(self) -> str:
        """The name of the warning in the Certificates page's filter."""
        return _WARNING_LABELS.get(self, self.value.replace("-", " ").capitalize())


_WARNING_LABELS = {
    WarningCode.SELF_SIGNED: "Self-signed",
    WarningCode.NO_SAN: "No subject alternative name",
    WarningCode.CN_NOT_IN_SAN: "Common Name not among the SANs",
    WarningCode.IP_SAN: "IP address SAN",
    WarningCode.HOSTNAME_NOT_COVERED: "Hostname of an address not covered",
}


@dataclass(frozen=True)
class Warning:
    code: WarningCode
    message: str


@dataclass(frozen=True)
class ChainState:
    """What chain building found above a certificate."""

    issuers: Sequence[CertInfo]  # nearest first
    complete: bool  # ends at a self-signed root (or the certificate is one)


def derive_warnings(
    info: CertInfo,
    chain: ChainState,
    *,
    has_private_key: bool,
    now: dt.datetime,
    hostnames: Mapping[str, Sequence[str]] | None = None,
    presented: bool = False,
) -> list[Warning]:
    """``hostnames``: the hostnames of each address the certificate secures (address ->
    the DNS names clients use to reach it). ``presented``: an address presents it, so it is
    judged as a server certificate whatever its flags (``openssl req -x509`` without a SAN
    makes a CA:TRUE certificate that ``role_of`` takes for a root)."""
    role = Role.SERVER if presented else role_of(info, has_private_key=has_private_key)
    found: list[Warning] = []
    found += _chain_warnings(info, chain, role)
    found += validity_warnings(info, now)
    found += _chain_validity_warnings(chain, now)
    found += _strength_warnings(info)
    if role is Role.SERVER:
        found += _name_warnings(info)
        if not has_private_key:
            found.append(
                Warning(
                    WarningCode.PRIVATE_KEY_MISSING,
                    "the private key of this certificate is not available: it cannot be "
                    "assigned to an IP address until its key is imported",
                )
            )
    found += _coverage_warnings(info, hostnames or {})
    found += [Warning(WarningCode.UNUSUAL_CONTENT, problem) for problem in info.parse_warnings]
    return found


def uncovered_hostnames(info: CertInfo, hostnames: Iterable[str]) -> list[str]:
    """The ``hostnames`` no subject alternative name of the certificate matches, as a browser
    matches them (a wildcard covers exactly one label; the Common Name is ignored)."""
    patterns = [san.value for san in info.sans if san.type in ("dNSName", "iPAddress")]
    return [name for name in hostnames if not matches_any(patterns, name)]


def _coverage_warnings(info: CertInfo, hostnames: Mapping[str, Sequence[str]]) -> list[Warning]:
    """The hostnames clients use for the addresses it secures that it does not cover."""
    missed: dict[str, list[str]] = {}
    for address, names in hostnames.items():
        for name in uncovered_hostnames(info, names):
            missed.setdefault(name, []).append(address)
    if not missed:
        return []
    listing = ", ".join(f"{name} ({', '.join(addresses)})" for name, addresses in missed.items())
    return [
        Warning(
            WarningCode.HOSTNAME_NOT_COVERED,
            f"does not cover the hostname(s) clients use to reach the address(es) it secures: "
            f"{listing}; browsers will warn that the connection is not private. Assign "
            "a certificate whose subject alternative names cover them",
        )
    ]


def _chain_warnings(info: CertInfo, chain: ChainState, role: Role) -> list[Warning]:
    if info.self_signed and not chain.issuers:
        if role is Role.ROOT:
            return []
        return [
            Warning(
                WarningCode.SELF_SIGNED,
                "self-signed: clients will warn that the site is untrusted; "
                "use a certificate signed by a certificate authority",
            )
        ]
    if not chain.complete:
        last = chain.issuers[-1] if chain.issuers else info
        return [
            Warning(
                WarningCode.CHAIN_INCOMPLETE,
                f"the chain is incomplete: the issuer {last.issuer!r} of {last.subject!r} "
                "is not in the store; import the intermediate and root certificates",
            )
        ]
    return []


def validity_warnings(info: CertInfo, now: dt.datetime) -> list[Warning]:
    """Expired, not yet valid, or expiring within ``EXPIRING_SOON``: at most one."""
    if now > info.not_after:
        return [Warning(WarningCode.EXPIRED, f"expired on {format_time(info.not_after)}")]
    if now < info.not_before:
        return [
            Warning(WarningCode.NOT_YET_VALID, f"not valid before {format_time(info.not_before)}")
        ]
    if info.not_after - now <= EXPIRING_SOON:
        days = (info.not_after - now).days
        return [
            Warning(
                WarningCode.EXPIRING_SOON,
                f"expires in {days} day(s), on {format_time(info.not_after)}",
            )
        ]
    return []


def _chain_validity_warnings(chain: ChainState, now: dt.datetime) -> list[Warning]:
    return [
        Warning(WarningCode.CHAIN_EXPIRED, f"the chain certificate {issuer.subject!r} has expired")
        for issuer in chain.issuers
        if now > issuer.not_after
    ]


def _strength_warnings(info: CertInfo) -> list[Warning]:
    found: list[Warning] = []
    if info.public_key_algorithm == "DSA":
        found.append(Warning(WarningCode.WEAK_KEY, f"weak key: {info.public_key}; DSA is obsolete"))
    elif info.public_key_algorithm == "RSA" and info.public_key_bits < 2048:
        found.append(
            Warning(WarningCode.WEAK_KEY, f"weak key: {info.public_key}; use at least 2048 bits")
        )
    if info.signature_hash in _WEAK_HASHES and not info.self_signed:
        found.append(
            Warning(
                WarningCode.WEAK_SIGNATURE,
                f"weak signature: {info.signature_type}; ask for SHA-256",
            )
        )
    return found


def _name_warnings(info: CertInfo) -> list[Warning]:
    found: list[Warning] = []
    # a Common Name that is an IP address is repeated as an iPAddress SAN (the same text)
    names = [san.value.lower() for san in info.sans if san.type in ("dNSName", "iPAddress")]
    if not info.sans:
        found.append(
            Warning(
                WarningCode.NO_SAN,
                "no subject alternative names: browsers ignore the Common Name and will "
                "not match any hostname",
            )
        )
    elif (
        info.common_name
        and "." in info.common_name
        and " " not in info.common_name
        and not _common_name_among(info.common_name, names)
    ):
        found.append(
            Warning(
                WarningCode.CN_NOT_IN_SAN,
                f"the Common Name {info.common_name!r} is not among the subject alternative "
                "names; it must be repeated there as the first SAN",
            )
        )
    if any(san.type == "iPAddress" for san in info.sans):
        found.append(
            Warning(
                WarningCode.IP_SAN,
                "the certificate names IP addresses; certificates should name the DNS "
                "hostnames that resolve to the appliance",
            )
        )
    return found


def _common_name_among(common_name: str, names: Sequence[str]) -> bool:
    """Whether the SANs (lower case) repeat the Common Name: as written, or in the A-label
    form a SAN carries (a Common Name ``bücher.example`` is the SAN ``xn--bcher-kva.example``,
    as ``certgate cert create`` writes them)."""
    if common_name.lower() in names:
        return True
    try:
        return dns_name_to_ascii(common_name).lower() in names
    except ValidationError:
        return False


def format_time(moment: dt.datetime) -> str:
    """The guide's time format: ``2013-04-11 09:30:16 GMT``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S GMT")
