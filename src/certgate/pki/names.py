"""Subject names and subject alternative names: what the administrator types, checked.

Errors name the field and the reason. Soft problems (a two-letter state, an IP address SAN)
are returned as notices: the guide allows them but warns.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import idna
import pycountry
from cryptography import x509
from cryptography.x509.oid import NameOID

from certgate.errors import ValidationError
from certgate.fields import item
from certgate.limits import HOSTNAME_MAX
from certgate.text import has_control

SanType = Literal["dNSName", "iPAddress", "rfc822Name", "uniformResourceIdentifier", "other"]


@dataclass(frozen=True)
class SubjectAltName:
    """One SAN as the guide lists it: ``dNSName - support.example.com``."""

    type: SanType
    value: str

    def __str__(self) -> str:
        return f"{self.type} - {self.value}"


@dataclass(frozen=True)
class SubjectFields:
    """The guide's Subject Name fields, as typed (empty string = not given)."""

    common_name: str
    country: str = ""
    state: str = ""
    city: str = ""
    organization: str = ""
    organizational_unit: str = ""


#: The form's subject fields by attribute, in the order ``build_subject`` writes them.
_FIELD_OIDS = {
    NameOID.COUNTRY_NAME: "country",
    NameOID.STATE_OR_PROVINCE_NAME: "state",
    NameOID.LOCALITY_NAME: "city",
    NameOID.ORGANIZATION_NAME: "organization",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "organizational_unit",
    NameOID.COMMON_NAME: "common_name",
}


def subject_fields_of(name: x509.Name) -> tuple[SubjectFields, list[str]]:
    """The Subject Name fields read back from a certificate (a renewal request's pre-fill),
    and the attributes the fields cannot carry (a second OU, an email address...) in
    RFC 4514 text, so that a face can say what the new request leaves out."""
    found: dict[str, str] = {}
    left_out: list[str] = []
    for attribute in name:
        field = _FIELD_OIDS.get(attribute.oid)
        if field is None or field in found or not isinstance(attribute.value, str):
            left_out.append(attribute.rfc4514_string())
        else:
            found[field] = attribute.value
    return SubjectFields(**{"common_name": "", **found}), left_out


#: RFC 5280 upper bounds (ub-common-name, ub-state-name, ...), so that a CA never refuses
#: what certgate accepted. The API's schema reads them too.
SUBJECT_MAX_LENGTHS = {
    "common_name": 64,
    "state": 128,
    "city": 128,
    "organization": 64,
    "organizational_unit": 64,
}
SANS = "subject_alternative_names"


def build_subject(fields: SubjectFields) -> tuple[x509.Name, list[str]]:
    """Check every field and build the X.509 name; returns (name, notices)."""
    notices: list[str] = []
    common_name = _checked_text("common_name", fields.common_name, required=True)
    country = _checked_country(fields.country)
    state = _checked_text("state", fields.state)
    if len(state) == 2 and state.isalpha():
        notices.append(
            f"State/Province {state!r} looks like an abbreviation: enter the full name, "
            "as some certificate authorities will not accept a state abbreviation"
        )
    attributes: list[x509.NameAttribute[str]] = []
    if country:
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    parts = [
        (NameOID.STATE_OR_PROVINCE_NAME, state),
        (NameOID.LOCALITY_NAME, _checked_text("city", fields.city)),
        (NameOID.ORGANIZATION_NAME, _checked_text("organization", fields.organization)),
        (
            NameOID.ORGANIZATIONAL_UNIT_NAME,
            _checked_text("organizational_unit", fields.organizational_unit),
        ),
        (NameOID.COMMON_NAME, common_name),
    ]
    attributes.extend(x509.NameAttribute(oid, value) for oid, value in parts if value)
    return x509.Name(attributes), notices


def _checked_text(field: str, value: str, *, required: bool = False) -> str:
    key = f"subject.{field}"
    text = value.strip()
    if not text:
        if required:
            raise ValidationError(key, "is required")
        return ""
    if len(text) > SUBJECT_MAX_LENGTHS[field]:
        raise ValidationError(key, f"is longer than {SUBJECT_MAX_LENGTHS[field]} characters")
    if has_control(text):  # the rule of every typed name: C1 and bidi controls too
        raise ValidationError(key, "contains control characters")
    return text


def _checked_country(value: str) -> str:
    code = value.strip().upper()
    if not code:
        return ""
    if len(code) != 2 or not code.isalpha():
        raise ValidationError(
            "subject.country", f"{value!r} is not a two-letter ISO 3166 country code"
        )
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValidationError("subject.country", f"{code!r} is not an ISO 3166 country code")
    return code


# --- subject alternative names -------------------------------------------------------------

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def parse_san(text: str, index: int | None = None) -> tuple[x509.GeneralName, SubjectAltName]:
    """Parse ``access.example.com``, ``*.example.com``, ``bücher.example``, ``12.12.1.52``,
    ``DNS:...`` or ``IP:...`` into a GeneralName and its display form. ``index``: the
    entry's place in the list, named by an error."""
    field = item(SANS, index)
    raw = text.strip()
    kind: str | None = None
    if ":" in raw and raw.split(":", 1)[0].upper() in ("DNS", "IP"):
        kind, raw = raw.split(":", 1)
        kind, raw = kind.upper(), raw.strip()
    if not raw:
        raise ValidationError(field, "an entry is empty")
    if kind != "DNS":
        try:
            address = ipaddress.ip_address(raw)
        except ValueError:
            if kind == "IP":
                raise ValidationError(field, f"{raw!r} is not an IP address") from None
        else:
            if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
                raise ValidationError(
                    field, f"{raw!r}: a certificate names an address without its zone"
                )
            return x509.IPAddress(address), SubjectAltName("iPAddress", str(address))
    a_label = dns_name_to_ascii(raw, field)
    if ends_in_number(a_label):
        raise ValidationError(
            field,
            f"{text.strip()!r} is read as an IP address (its last label is a number), which "
            "no client matches against a DNS name: enter an IP address as IP:192.0.2.10, "
            "or the DNS name",
        )
    return x509.DNSName(a_label), SubjectAltName("dNSName", a_label)


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address as written."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def dns_name_to_ascii(name: str, field: str = SANS) -> str:
    """Validate a DNS name (wildcard only as the whole leftmost label) and return its
    ASCII (A-label) form, which is what a certificate carries."""
    host = name.strip().rstrip(".")
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    if "*" in host:
        raise ValidationError(
            field,
            f"{name!r}: a wildcard is only allowed as the whole leftmost label (*.example.com)",
        )
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii") if host else ""
    except idna.IDNAError as error:
        raise ValidationError(field, f"{name!r} is not a valid DNS name ({error})") from None
    labels = ascii_host.split(".") if ascii_host else []
    too_long = len(ascii_host) > HOSTNAME_MAX
    if not labels or too_long or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(field, f"{name!r} is not a valid DNS name")
    if wildcard and len(labels) < 2:
        raise ValidationError(field, f"{name!r}: a wildcard needs at least two labels after '*.'")
    return ("*." if wildcard else "") + ascii_host


#: A last label browsers read as a number, making the whole name an IPv4 address (the URL
#: Standard's "ends in a number": decimal, octal or 0x hexadecimal, so 127.1 and
#: 0x7f.0.0.1 are 127.0.0.1); RFC 3696 2 allows no all-numeric top-level domain either.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


def ends_in_number(name: str) -> bool:
    """Whether browsers read the DNS name ``name`` (A-labels) as an IPv4 address."""
    return _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]) is not None


def client_hostname(text: str, field: str = "hostname") -> str:
    """A name a client connects with (typed in a browser, sent as SNI): a DNS name as its
    A-labels. Not a wildcard (a client names one host) and not an IP address (a hostname
    is the DNS name that resolves to an address), however written: with the root's dot,
    in fullwidth digits, or shortened or hexadecimal as browsers read them."""
    _refuse_address(text.strip(), text, field)
    name = dns_name_to_ascii(text, field)
    _refuse_address(name, text, field)
    if name.startswith("*."):
        raise ValidationError(field, f"{text!r} is a wildcard; name one host a client uses")
    if ends_in_number(name):
        raise ValidationError(
            field,
            f"{text!r} is read as an IP address (its last label is a number); "
            "name the DNS hostname",
        )
    return name


def _refuse_address(written: str, text: str, field: str) -> None:
    try:
        ipaddress.ip_address(written)
    except ValueError:
        return
    raise ValidationError(field, f"{text!r} is an IP address; name the DNS hostname")


def looks_like_dns_name(text: str) -> bool:
    """True for names a Common Name could mean as a host (has a dot, parses as DNS, or is an
    IP address); not a label such as ``Release.2024``, which no client reads as a host name."""
    if "." not in text or " " in text:
        return False
    if is_ip_address(text):
        return True  # becomes an iPAddress SAN
    try:
        return not ends_in_number(dns_name_to_ascii(text))
    except ValidationError:
        return False


def san_notices(sans: list[SubjectAltName]) -> list[str]:
    if any(san.type == "iPAddress" for san in sans):
        return [
            "IP address SANs are not recommended: clients should reach the appliance by a DNS "
            "name, and the certificate should name that DNS name"
        ]
    return []


def san_entries(sans: Iterable[SubjectAltName]) -> tuple[list[str], list[str]]:
    """SANs read back as the entries the form takes (DNS names, IP addresses), and the
    others (email, URI...) as the guide lists them, which a new request leaves out."""
    entries: list[str] = []
    left_out: list[str] = []
    for san in sans:
        if san.type in ("dNSName", "iPAddress"):
            entries.append(san.value)
        else:
            left_out.append(str(san))
    return entries, left_out


def describe_san(general_name: x509.GeneralName) -> SubjectAltName:
    """Display form of a SAN read from a certificate or request."""
    if isinstance(general_name, x509.DNSName):
        return SubjectAltName("dNSName", general_name.value)
    if isinstance(general_name, x509.IPAddress):
        return SubjectAltName("iPAddress", str(general_name.value))
    if isinstance(general_name, x509.RFC822Name):
        return SubjectAltName("rfc822Name", general_name.value)
    if isinstance(general_name, x509.UniformResourceIdentifier):
        return SubjectAltName("uniformResourceIdentifier", general_name.value)
    return SubjectAltName("other", str(general_name.value))
