"""Limits every layer shares, said once (the store's columns, the service's checks, the
API's schemas, the CLI's options and the pages' inputs all read them from here)."""

from __future__ import annotations

from certgate.text import name_from

#: The largest id a row has: what a 64-bit database column holds (a larger one is refused as
#: input, not a database error).
ROW_ID_MAX = 2**63 - 1

#: A certificate's or request's friendly name, as typed (a derived one is shortened to fit).
FRIENDLY_NAME_MAX = 200

#: Subject alternative names typed for one certificate or request (the Common Name's, added
#: as the first, aside).
SANS_MAX = 100

#: Validity of a self-signed certificate, in days.
VALIDITY_DAYS_MIN = 1
VALIDITY_DAYS_MAX = 3650
#: 397 days: the longest validity browsers accept for a server certificate (CA/B Forum).
DEFAULT_VALIDITY_DAYS = 397

#: An exported private key's passphrase: the rule is its length in characters (8, as NIST
#: SP 800-63B's floor for a memorised secret); "no encryption" is a separate, explicit choice.
EXPORT_PASSPHRASE_MIN = 8
EXPORT_PASSPHRASE_MAX = 1024


#: A manually specified chain's PEM (MAX_CHAIN_DEPTH certificates fit many times over).
MANUAL_CHAIN_MAX = 200_000

#: A DNS name as typed (RFC 1035: 253 characters in text form).
HOSTNAME_MAX = 253
#: A node's name (``certgate serve --node``; by default the host's name).
NODE_NAME_MAX = 64
#: The name of the host a node runs on, as kept (the kernel's is at most 64; 255 for a DNS name).
NODE_HOST_MAX = 255
#: The kernel's boot id of a node's host (a UUID: 36 characters).
BOOT_ID_MAX = 36

#: Hostnames of one IP address (Networking); the address test makes one handshake for each.
HOSTNAMES_PER_ADDRESS_MAX = 20

#: An audit event's who, from where and what, as kept (longer is cut) and as searched.
AUDIT_ACTOR_MAX = 200
AUDIT_SOURCE_MAX = 64
AUDIT_TARGET_MAX = 300


def fitted_friendly_name(derived: str) -> str:
    """A friendly name certgate makes (from a subject, a PKCS#12 bag, a request), shortened
    to fit, its control characters made visible (``text.name_from``); a name the user types
    is checked instead (``certificates.checked_friendly_name``)."""
    return name_from(derived, FRIENDLY_NAME_MAX)
