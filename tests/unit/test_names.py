"""What an administrator types as a subject name and SANs: accepted in the form a certificate
carries, or refused with the field's key, its label and the reason (pki/names.py)."""

from __future__ import annotations

import ipaddress
import re

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from certgate.errors import ValidationError
from certgate.pki.names import (
    SubjectFields,
    build_subject,
    client_hostname,
    describe_san,
    looks_like_dns_name,
    parse_san,
    san_entries,
    san_notices,
    subject_fields_of,
)

# --- subject name -----------------------------------------------------------------------------


def test_the_guides_example_subject_is_built_most_general_first() -> None:
    name, notices = build_subject(
        SubjectFields(
            common_name="  support.example.com ",
            country="us",
            state="Tennessee",
            city="Nashville",
            organization="Example Co",
            organizational_unit="IT",
        )
    )
    assert [(a.oid, a.value) for a in name] == [
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Tennessee"),
        (NameOID.LOCALITY_NAME, "Nashville"),
        (NameOID.ORGANIZATION_NAME, "Example Co"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "IT"),
        (NameOID.COMMON_NAME, "support.example.com"),
    ]
    assert name.rfc4514_string() == (
        "CN=support.example.com,OU=IT,O=Example Co,L=Nashville,ST=Tennessee,C=US"
    )
    assert notices == []


def test_only_the_fields_given_are_in_the_name() -> None:
    name, _ = build_subject(SubjectFields(common_name="intranet"))
    assert name == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intranet")])


def _refusal(fields: SubjectFields) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        build_subject(fields)
    return raised.value


@pytest.mark.parametrize(
    ("fields", "key", "message"),
    [
        (
            SubjectFields(common_name="   "),
            "subject.common_name",
            "Name (Common Name): is required",
        ),
        (
            SubjectFields(common_name="x" * 65),
            "subject.common_name",
            "Name (Common Name): is longer than 64 characters",
        ),
        (
            SubjectFields(common_name="site", organization="Example\x07Co"),
            "subject.organization",
            "Organization: contains control characters",
        ),
        (
            SubjectFields(common_name="site", state="T" * 129),
            "subject.state",
            "State/Province: is longer than 128 characters",
        ),
        (
            SubjectFields(common_name="site", country="USA"),
            "subject.country",
            "Country: 'USA' is not a two-letter ISO 3166 country code",
        ),
        (
            SubjectFields(common_name="site", country="xx"),
            "subject.country",
            "Country: 'XX' is not an ISO 3166 country code",
        ),
    ],
    ids=["no-cn", "cn-65", "control", "state-129", "country-3", "country-unknown"],
)
def test_a_wrong_subject_field_is_refused_by_key_with_its_reason(
    fields: SubjectFields, key: str, message: str
) -> None:
    error = _refusal(fields)
    assert (error.field, str(error)) == (key, message)


def test_the_rfc_5280_upper_bounds_themselves_are_accepted() -> None:
    """A CA never refuses what certgate accepted, and certgate accepts up to the bound."""
    name, _ = build_subject(SubjectFields(common_name="x" * 64, city="c" * 128))
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "x" * 64


def test_a_subject_is_read_back_into_the_fields_and_the_rest_is_named() -> None:
    """A renewal request's pre-fill: each field once; what no field holds is said."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Business Company"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Support"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Remote"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "pki@example.com"),
            x509.NameAttribute(NameOID.COMMON_NAME, "support.example.com"),
        ]
    )
    fields, left_out = subject_fields_of(name)
    assert fields == SubjectFields(
        common_name="support.example.com",
        country="US",
        organization="Business Company",
        organizational_unit="Support",
    )
    assert left_out == ["OU=Remote", "1.2.840.113549.1.9.1=pki@example.com"]
    assert build_subject(fields)[0] == x509.Name(
        [attribute for attribute in name if attribute.value not in ("Remote", "pki@example.com")]
    )
    assert subject_fields_of(x509.Name([])) == (SubjectFields(common_name=""), [])


def test_sans_are_read_back_as_entries_the_form_takes() -> None:
    sans = [
        describe_san(x509.DNSName("support.example.com")),
        describe_san(x509.IPAddress(ipaddress.ip_address("192.0.2.7"))),
        describe_san(x509.RFC822Name("pki@example.com")),
        describe_san(x509.UniformResourceIdentifier("https://example.com/")),
    ]
    assert san_entries(sans) == (
        ["support.example.com", "192.0.2.7"],
        ["rfc822Name - pki@example.com", "uniformResourceIdentifier - https://example.com/"],
    )


def test_a_state_abbreviation_is_accepted_with_a_notice() -> None:
    _, notices = build_subject(SubjectFields(common_name="site", state="TN"))
    [notice] = notices
    assert "'TN' looks like an abbreviation" in notice
    assert build_subject(SubjectFields(common_name="site", state="Tennessee"))[1] == []


# --- subject alternative names ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "general_name", "shown"),
    [
        ("access.example.com", x509.DNSName("access.example.com"), "access.example.com"),
        ("Access.Example.COM.", x509.DNSName("access.example.com"), "access.example.com"),
        ("*.example.com", x509.DNSName("*.example.com"), "*.example.com"),
        ("bücher.example", x509.DNSName("xn--bcher-kva.example"), "xn--bcher-kva.example"),
        (
            "12.12.1.52",
            x509.IPAddress(ipaddress.ip_address("12.12.1.52")),
            "12.12.1.52",
        ),
        ("IP: ::1", x509.IPAddress(ipaddress.ip_address("::1")), "::1"),
        ("DNS:portal.example.com", x509.DNSName("portal.example.com"), "portal.example.com"),
    ],
)
def test_a_san_is_stored_as_the_certificate_carries_it(
    typed: str, general_name: x509.GeneralName, shown: str
) -> None:
    parsed, display = parse_san(typed)
    assert parsed == general_name
    assert display.value == shown


def test_sans_are_listed_as_the_guide_shows_them() -> None:
    assert str(parse_san("support.example.com")[1]) == "dNSName - support.example.com"
    assert str(parse_san("12.12.1.52")[1]) == "iPAddress - 12.12.1.52"
    assert str(describe_san(x509.RFC822Name("pki@example.com"))) == "rfc822Name - pki@example.com"


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "an entry is empty"),
        ("IP:", "an entry is empty"),
        ("IP:portal.example.com", "'portal.example.com' is not an IP address"),
        ("www.*.example.com", "a wildcard is only allowed as the whole leftmost label"),
        ("w*.example.com", "a wildcard is only allowed as the whole leftmost label"),
        ("*.com", "a wildcard needs at least two labels after '*.'"),
        ("bad..name", "'bad..name' is not a valid DNS name"),
        ("-edge.example.com", "is not a valid DNS name"),
        ("under_score.example.com", "is not a valid DNS name"),
        (("a" * 64) + ".example.com", "is not a valid DNS name"),
    ],
)
def test_a_wrong_san_is_refused_with_its_place_in_the_list_and_the_reason(
    typed: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_san(typed, index=2)
    assert raised.value.field == "subject_alternative_names[2]"
    assert str(raised.value).startswith("Subject Alternative Names: ")
    assert reason in raised.value.reason


def test_an_ip_address_san_is_accepted_with_a_notice() -> None:
    dns = parse_san("support.example.com")[1]
    ip = parse_san("12.12.1.52")[1]
    assert san_notices([dns]) == []
    [notice] = san_notices([dns, ip])
    assert "IP address SANs are not recommended" in notice


@pytest.mark.parametrize(
    ("common_name", "host"),
    [
        ("support.example.com", True),
        ("*.example.com", True),
        ("Example Company", False),
        ("intranet", False),
        ("bad..example.com", False),
        ("Release.2026", False),  # a last label that is a number: browsers read an address
        ("12.12.1.52", True),  # an iPAddress SAN
    ],
)
def test_a_common_name_that_names_a_host_is_recognised(common_name: str, host: bool) -> None:
    """What decides whether creating a certificate puts its Common Name first among the SANs."""
    assert looks_like_dns_name(common_name) is host


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Support.Example.com", "support.example.com"),
        ("support.example.com.", "support.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("localhost", "localhost"),
    ],
)
def test_a_clients_hostname_is_kept_as_a_certificate_would_name_it(typed: str, stored: str) -> None:
    assert client_hostname(typed) == stored


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("*.example.com", "is a wildcard; name one host"),
        ("192.0.2.10", "is an IP address; name the DNS hostname"),
        ("2001:db8::1", "is an IP address"),
        ("192.0.2.1.", "is an IP address"),  # the root's dot
        ("\uff11\uff19\uff12\uff0e\uff10\uff0e\uff12\uff0e\uff11", "is an IP address"),  # fullwidth
        ("127.1", "is read as an IP address"),  # browsers: 127.0.0.1
        ("0x7f.0.0.1", "is read as an IP address"),
        ("10.0x0a", "is read as an IP address"),  # a hexadecimal last label
        ("host.0x", "is read as an IP address"),
        ("example.123", "is read as an IP address"),  # RFC 3696: no all-numeric TLD
        ("bad host.example", "is not a valid DNS name"),
        ("a..example", "is not a valid DNS name"),
        ("www.*.example", "only allowed as the whole leftmost label"),
        ("-a.example", "is not a valid DNS name"),
        ("", "is not a valid DNS name"),
    ],
)
def test_a_clients_hostname_is_one_dns_name(typed: str, says: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(says)) as refused:
        client_hostname(typed, "hostnames[1]")
    assert refused.value.field == "hostnames[1]"
