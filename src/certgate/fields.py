"""The stable keys of the fields a user fills in, and the one table of their labels.

Every layer raises ``ValidationError`` with a key (``subject.common_name``,
``subject_alternative_names[2]``): the API's ``field`` as its body spells it, dotted into
objects, with the index of a list item. People read the label (the guide's name for the
field); the pages place an error beside the input named by the key's last part.
"""

from __future__ import annotations

import re

#: Key (index removed) -> the label people see, where it differs from the key. A key two
#: bodies share (``username``, ``password``: a user's and the SMTP relay's) keeps its own name.
LABELS: dict[str, str] = {
    "friendly_name": "Certificate Friendly Name",
    "subject.common_name": "Name (Common Name)",
    "subject.country": "Country",
    "subject.state": "State/Province",
    "subject.city": "City (Locality)",
    "subject.organization": "Organization",
    "subject.organizational_unit": "Organizational Unit",
    "subject_alternative_names": "Subject Alternative Names",
    "pem": "Manually Specified",
    "passphrase": "Passphrase",
    "address": "IP address",
    "addresses": "IP addresses",
    "with": "Replace with",
    "hostnames": "Hostnames",
    "node": "node name",
    "current_password": "current password",
    "minimum_version": "minimum version",
    "maximum_version": "maximum version",
    "tls12_ciphers": "TLS 1.2 ciphers",
    "tls13_ciphersuites": "TLS 1.3 ciphersuites",
    "groups": "TLS groups",
    "https_port": "HTTPS port",
    "http_port": "HTTP port",
    "directory": "ACME directory URL",
    "agree_tos": "terms of service",
    "eab_kid": "EAB key id",
    "eab_hmac_key": "EAB HMAC key",
    "domains": "Domains",
    "assign": "Assign to",
    "challenge": "Challenge",
    "handshake_timeout": "handshake timeout",
    "header_timeout": "header timeout",
    "body_timeout": "body timeout",
    "send_timeout": "send timeout",
    "keepalive_timeout": "keep-alive timeout",
    "shutdown_grace": "shutdown grace",
    "host": "SMTP relay host",
    "port": "SMTP relay port",
    "security": "connection security",
    "verify_certificate": "check the relay's certificate",
    "ca_bundle": "CA bundle",
    "from_address": "From address",
    "to_addresses": "administrator addresses",
    "notice_days": "expiry notice days",
}

#: The guide's caveats for the Common Name, shown beside it on every face.
COMMON_NAME_HELP = (
    "A title for your certificate, unique on the network (which may include the public "
    "internet); in many cases simply a human-readable label, not your DNS name. Some "
    "certificate authorities require your fully qualified DNS name here for backward "
    "compatibility: ask yours. A DNS name entered here becomes the first SAN."
)
#: The guide: a server certificate has "one or more subject alternative names".
SANS_HELP = (
    "Each fully qualified DNS name that resolves to the appliance (a wildcard such as "
    "*.example.com is allowed); at least one is required unless the Common Name is a DNS "
    "name, which is added as the first SAN."
)

#: What an ACME order names (RFC 8555 identifiers; RFC 8738 for IP addresses).
ACME_NAMES_HELP = (
    "Each DNS name, or IP address (where the CA issues for addresses, RFC 8738), that "
    "reaches this appliance: on its HTTP port for http-01, on its HTTPS port for "
    "tls-alpn-01. No wildcards."
)

_INDEX = re.compile(r"\[\d+\]")


def base_key(key: str) -> str:
    """``subject_alternative_names[2]`` -> ``subject_alternative_names``."""
    return _INDEX.sub("", key)


def label(key: str) -> str:
    return LABELS.get(base_key(key), base_key(key))


def input_name(key: str) -> str:
    """The form input a key belongs beside: its last part, without an index."""
    return base_key(key).rsplit(".", 1)[-1]


def item(key: str, index: int | None) -> str:
    """The key of one item of a list field (the field itself when there is no index)."""
    return key if index is None else f"{key}[{index}]"
