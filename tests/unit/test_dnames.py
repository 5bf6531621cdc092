"""Distinguished names as the pages show them ("Issued To", "Issued By") and as issuers are
found by them: RFC 5280's comparison, where case, white space and string type do not count
(pki/dnames.py)."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from certgate.pki.dnames import common_name, format_name, name_hash, names_match, read_name
from tests.support.pki import issue, name, new_key


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


GUIDE = _name(
    (NameOID.COUNTRY_NAME, "US"),
    (NameOID.STATE_OR_PROVINCE_NAME, "Tennessee"),
    (NameOID.ORGANIZATION_NAME, "Example Co"),
    (NameOID.COMMON_NAME, "support.example.com"),
)


def test_a_name_is_shown_most_specific_first_with_a_space_after_each_comma() -> None:
    assert format_name(GUIDE) == "CN=support.example.com, O=Example Co, ST=Tennessee, C=US"


def test_special_characters_are_escaped_and_multi_valued_parts_joined_by_plus() -> None:
    tricky = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Web+Mail"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "#1 site")]),
        ]
    )
    shown = format_name(tricky)
    assert shown.startswith("CN=\\#1 site, ")
    assert "O=Example\\, Inc" in shown and "OU=Web\\+Mail" in shown and "+" in shown


def test_reading_a_name_gives_its_text_common_name_and_comparison_hash_at_once() -> None:
    fields = read_name(GUIDE)
    assert fields.text == format_name(GUIDE)
    assert fields.common_name == common_name(GUIDE) == "support.example.com"
    assert fields.hash == name_hash(GUIDE)
    nameless = _name((NameOID.ORGANIZATION_NAME, "Example Co"))
    assert read_name(nameless).common_name is None


def test_names_that_differ_only_in_case_and_white_space_are_the_same_issuer() -> None:
    assert names_match(
        _name((NameOID.ORGANIZATION_NAME, "Good CA"), (NameOID.COMMON_NAME, "Good  Root ")),
        _name((NameOID.ORGANIZATION_NAME, "GOOD CA"), (NameOID.COMMON_NAME, "good root")),
    )


def test_a_printable_string_and_a_utf8_string_of_the_same_text_are_the_same_issuer() -> None:
    printable = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Good CA", x509.name._ASN1Type.PrintableString)]
    )
    utf8 = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Good CA", x509.name._ASN1Type.UTF8String)]
    )
    assert printable.public_bytes() != utf8.public_bytes()
    assert names_match(printable, utf8)


def test_different_names_or_the_same_parts_in_another_order_are_different_issuers() -> None:
    one = _name((NameOID.ORGANIZATION_NAME, "Example"), (NameOID.COMMON_NAME, "CA 1"))
    assert not names_match(
        one, _name((NameOID.ORGANIZATION_NAME, "Example"), (NameOID.COMMON_NAME, "CA 2"))
    )
    assert not names_match(
        one, _name((NameOID.COMMON_NAME, "CA 1"), (NameOID.ORGANIZATION_NAME, "Example"))
    )
    assert not names_match(one, _name((NameOID.COMMON_NAME, "CA 1")))


def test_a_certificate_issued_with_the_issuers_name_in_other_case_still_names_it() -> None:
    """What a CA really did (an issuer field of "GOOD CA" for the CA's "Good CA"): clients
    accept it, so certgate must find the issuer by that name too."""
    ca_key = new_key()
    ca = issue(name("Good CA"), ca_key.public_key(), name("Good CA"), ca_key, ca=True)
    leaf = issue(name("www.example.com"), new_key().public_key(), name("GOOD CA"), ca_key, ca=False)
    assert read_name(leaf.issuer).hash == read_name(ca.subject).hash
