"""The JSON documents of certgate: every response of /api/v1 and every ``--json`` of the CLI
(one definition, so both faces give the same document for the same thing), and the API's
request bodies. Documents are read from the service layer's views (``from_attributes``);
request bodies reject unknown fields, so a typo is a 422 that names it rather than a silent
default."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

from certgate.fields import ACME_NAMES_HELP, COMMON_NAME_HELP
from certgate.limits import (
    DEFAULT_VALIDITY_DAYS,
    EXPORT_PASSPHRASE_MAX,
    FRIENDLY_NAME_MAX,
    HOSTNAME_MAX,
    HOSTNAMES_PER_ADDRESS_MAX,
    MANUAL_CHAIN_MAX,
    NODE_NAME_MAX,
    ROW_ID_MAX,
    SANS_MAX,
    VALIDITY_DAYS_MAX,
    VALIDITY_DAYS_MIN,
)
from certgate.moments import utc
from certgate.pki.chain import Role
from certgate.pki.diagnostics import WarningCode
from certgate.pki.keys import DEFAULT_KEY_SPEC, KeySpec
from certgate.pki.lint import RULES, LintSeverity
from certgate.pki.names import SUBJECT_MAX_LENGTHS
from certgate.service import email as mail
from certgate.service.acme_account import EAB_HMAC_KEY_MAX, EAB_KID_MAX, URL_MAX
from certgate.service.acme_orders import DOMAINS_MAX, ChallengeType
from certgate.service.addresstest import TrustStore
from certgate.service.guard import ConcernCode
from certgate.service.health import FindingCode, Severity
from certgate.service.imports import Kind, Status
from certgate.service.nodes import NodeState
from certgate.service.smtp import MailSecurity
from certgate.service.users import (
    MIN_PASSWORD_LENGTH,
    PASSWORD_MAX_LENGTH,
    USERNAME_MAX,
    USERNAME_PATTERN,
)
from certgate.service.users import Role as UserRole
from certgate.text import NAME_PATTERN
from certgate.tls.plan import ListenerState
from certgate.tls.policy import TlsVersionName

#: A moment in time, in UTC with its offset (RFC 3339).
Instant = Annotated[dt.datetime, AfterValidator(utc)]
#: The closed sets of the layers below; strict models still take their values from JSON.
CertificateRole = Annotated[Role, Field(strict=False)]
KeyType = Annotated[KeySpec, Field(strict=False)]
TlsVersion = Annotated[TlsVersionName, Field(strict=False)]
MailSecurityField = Annotated[MailSecurity, Field(strict=False)]
WarningCodeField = Annotated[WarningCode, Field(strict=False)]
_SUBJECT = SUBJECT_MAX_LENGTHS
#: An id (up to 7 digits; a negative number is one no item has: not found), or a SHA-256
#: fingerprint in hex (colons allowed) or an unambiguous prefix of it of at least 8 hex
#: digits: what ``service.lookup`` accepts.
SHA1_DESCRIPTION = (
    "SHA-1 of the DER, as CA portals and Windows ('thumbprint') show it; for matching only."
)
REFERENCE_PATTERN = r"^(-[0-9]{1,19}|[0-9]{1,7}|[0-9A-Fa-f:]{8,95})$"
REFERENCE_DESCRIPTION = (
    "An id, or a SHA-256 fingerprint (or an unambiguous prefix of at least 8 hex digits)."
)
Reference = Annotated[
    int | Annotated[str, Field(pattern=REFERENCE_PATTERN)],
    Field(description=REFERENCE_DESCRIPTION, examples=[3, "5f0c3a9e"]),
]


def _trimmed(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


#: Text typed in a field the service layer trims (``str.strip``, as the pages and the CLI
#: pass it on): trimmed before its length and pattern are checked, so that every face takes
#: the same text. It goes after the constraints in ``Annotated`` (it wraps what is before it).
Trimmed = BeforeValidator(_trimmed)
#: What a body's fields take, each rule said once (the limits are their owners'):
#: a friendly name as typed;
FriendlyName = Annotated[
    str, Field(min_length=1, max_length=FRIENDLY_NAME_MAX, pattern=NAME_PATTERN), Trimmed
]
#: a subject alternative name as typed ('DNS:' or 'IP:' prefix allowed);
SanText = Annotated[str, Field(max_length=300), Trimmed]
#: a DNS name as typed;
HostnameText = Annotated[str, Field(max_length=HOSTNAME_MAX), Trimmed]
#: an IP address as typed;
AddressText = Annotated[str, Field(max_length=64), Trimmed]
#: a mailbox (local@domain);
Mailbox = Annotated[str, Field(max_length=mail.ADDRESS_MAX), Trimmed]
#: PEM roots to trust instead of the system's;
CaBundle = Annotated[str, Field(max_length=mail.CA_BUNDLE_MAX)]
#: a new password of an account.
NewPasswordText = Annotated[
    SecretStr, Field(min_length=MIN_PASSWORD_LENGTH, max_length=PASSWORD_MAX_LENGTH)
]


class Out(BaseModel):
    """A response: read from the service layer's frozen dataclasses."""

    model_config = ConfigDict(from_attributes=True)


def document(model: type[BaseModel], value: object) -> Any:
    """``value`` (a view, or a mapping of its fields) as the JSON document ``model`` defines:
    exactly what the API answers for it."""
    return model.model_validate(value, from_attributes=True).model_dump(mode="json")


class In(BaseModel):
    """A request body: unknown fields are refused, and so is text for a boolean or a number
    (``"yes"`` is not ``true``), and text that is not Unicode (JSON's ``"\\ud800"``, a lone
    surrogate: no UTF-8 encoding, no database column and no password hash takes it)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _unicode_only(cls, value: object) -> object:
        if _has_surrogate(value):
            raise ValueError("is not valid text: it holds a lone UTF-16 surrogate")
        return value


def _has_surrogate(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        return not value.isascii() and any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_surrogate(item) for item in value)
    return False


# --- errors ----------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    field: str = Field(description="The field, as a dotted path ('subject.common_name').")
    location: str = Field(description="Where the field was: body, query, path or header.")
    message: str


class ImportEntry(Out):
    """One object (or one unreadable file) of an import, exactly as ``certgate cert import
    --json`` prints it."""

    file: str = Field(description="The uploaded file's name (only for messages).")
    status: Status = Field(
        description="added: new in the store; present: already stored (nothing changed); "
        "linked: added and joined to its certificate or private key; error: not imported."
    )
    kind: Kind
    id: int | None = Field(description="The certificate's, key's or request's id.")
    message: str
    fingerprint_sha256: str | None = None
    error_code: str | None = Field(
        default=None, description="For status 'error': the problem type's last segment."
    )


class ConcernRoot(Out):
    """Where a chain ends: a root's subject and key, as a client's trust store knows it."""

    subject: str
    fingerprint_sha256: str | None = Field(
        description="The root's SHA-256; null when it is not in the store (the chain ends "
        "short of it, at a certificate issued by this name)."
    )
    public_key_fingerprint: str | None
    key_id: str | None = Field(
        description="The root's subject key identifier (hex; for a root in the store that "
        "carries none, the SHA-1 of its public key, RFC 5280's first method); for a root not "
        "in the store, the authority key identifier the chain names it by; null when it "
        "names none. Two roots of one subject are different roots when their key "
        "identifiers differ."
    )


class Concern(Out):
    """One reason a change of what an address presents needs confirming."""

    address: str
    code: Annotated[ConcernCode, Field(strict=False)]
    message: str
    current_certificate: str = Field(description="Friendly name of what it presents now.")
    new_certificate: str = Field(description="Friendly name of what it would present.")
    current_root: ConcernRoot | None = Field(description="For root-change: the root now.")
    new_root: ConcernRoot | None = Field(description="For root-change: the root after.")
    hostnames: list[str] = Field(description="For hostname-not-covered: those not covered.")


class Problem(BaseModel):
    """RFC 9457 problem details. ``type`` is stable per failure; ``detail`` is for people."""

    type: str = Field(examples=["https://certgate.invalid/problems/not-found"])
    title: str
    status: int
    detail: str
    field: str | None = Field(
        default=None, description="For validation problems: the field at fault."
    )
    label: str | None = Field(
        default=None, description="The field's name in the /appliance pages, when it has one."
    )
    errors: list[FieldProblem] | None = Field(
        default=None, description="For request validation problems: every field at fault."
    )
    entries: list[ImportEntry] | None = Field(
        default=None, description="For an import that added nothing: what happened to each file."
    )
    ca_document: str | None = Field(
        default=None,
        description="For ACME problems (type `acme`): the CA's own problem document, as it "
        "sent it.",
    )
    concerns: list[Concern] | None = Field(
        default=None,
        description="For unconfirmed-change: each reason to confirm, per address (send the "
        'request again with "confirm": true to apply it); for certificate-unassigned: why the '
        "issued certificate was kept off its addresses.",
    )
    certificate_id: int | None = Field(
        default=None,
        description="For certificate-unassigned: the certificate the ACME order issued and "
        "imported (assign it once clients are ready; do not send the order again).",
    )


# --- certificates ----------------------------------------------------------------------------


class CertificateWarning(Out):
    code: WarningCodeField
    message: str


class CertificateLintFinding(Out):
    severity: LintSeverity
    code: str = Field(description="pkilint's finding code.")
    message: str
    where: str = Field(description="The part of the certificate, as pkilint names it.")


class Certificate(Out):
    """The Edit Certificate Configuration page's fields, and the table's columns."""

    id: int
    fingerprint_sha256: str
    fingerprint_sha1: str = Field(description=SHA1_DESCRIPTION)
    friendly_name: str
    subject: str
    issuer: str
    issued_to: str
    issued_by: str
    serial: str
    not_before: Instant
    not_after: Instant
    sans: list[str] = Field(description="Subject alternative names, 'dNSName - a.example'.")
    role: CertificateRole
    has_private_key: bool
    chain_mode: Literal["automatic", "manual"]
    chain: list[str] = Field(description="SHA-256 fingerprints, this certificate first.")
    chain_subjects: list[str] = Field(description="The issuers' subjects, nearest first.")
    warnings: list[CertificateWarning]
    is_factory: bool
    signature_type: str
    public_key: str
    authority_info_access: list[str]
    ip_addresses: list[str] = Field(description="The addresses presenting this certificate.")
    lint: list[CertificateLintFinding] | None = Field(
        default=None,
        description=f"{RULES}: errors and warnings for a server certificate issued by a CA, "
        "on the certificate's own document only; null in lists, and for self-signed and CA "
        "certificates, which the Baseline Requirements do not cover.",
    )


class CertificatePage(BaseModel):
    total: int = Field(description="Certificates matching the filters, before paging.")
    offset: int
    limit: int
    items: list[Certificate]


class SubjectName(In):
    """The guide's Subject Name fields; empty means not given."""

    common_name: Annotated[str, Field(max_length=_SUBJECT["common_name"]), Trimmed] = Field(
        description=f"Name (Common Name). {COMMON_NAME_HELP}"
    )
    country: Annotated[str, Field(max_length=16), Trimmed] = Field(
        default="", description="Two-letter ISO 3166 code."
    )
    state: Annotated[str, Field(max_length=_SUBJECT["state"]), Trimmed] = Field(
        default="", description="State/Province, in full."
    )
    city: Annotated[str, Field(max_length=_SUBJECT["city"]), Trimmed] = Field(
        default="", description="City (Locality)."
    )
    organization: Annotated[str, Field(max_length=_SUBJECT["organization"]), Trimmed] = ""
    organizational_unit: Annotated[
        str, Field(max_length=_SUBJECT["organizational_unit"]), Trimmed
    ] = ""


class CreateRequestBody(In):
    friendly_name: FriendlyName
    key: KeyType = Field(default=DEFAULT_KEY_SPEC, description="Key type and size.")
    subject: SubjectName
    subject_alternative_names: list[SanText] = Field(
        default_factory=list,
        max_length=SANS_MAX,
        description="DNS names ('access.example.com', '*.example.com') or IP addresses; "
        "'DNS:' or 'IP:' prefixes are accepted.",
    )


class CreateCertificateBody(CreateRequestBody):
    days: int = Field(
        default=DEFAULT_VALIDITY_DAYS,
        ge=VALIDITY_DAYS_MIN,
        le=VALIDITY_DAYS_MAX,
        description="Validity.",
    )


class SubjectChanges(In):
    """Subject Name fields to change: a field left out keeps the certificate's value, an
    empty one is removed."""

    common_name: Annotated[str, Field(max_length=_SUBJECT["common_name"]), Trimmed] | None = None
    country: Annotated[str, Field(max_length=16), Trimmed] | None = None
    state: Annotated[str, Field(max_length=_SUBJECT["state"]), Trimmed] | None = None
    city: Annotated[str, Field(max_length=_SUBJECT["city"]), Trimmed] | None = None
    organization: Annotated[str, Field(max_length=_SUBJECT["organization"]), Trimmed] | None = None
    organizational_unit: (
        Annotated[str, Field(max_length=_SUBJECT["organizational_unit"]), Trimmed] | None
    ) = None


class RenewalRequestBody(In):
    """A renewal request: signed with the certificate's own key, with its subject and SANs
    unless given here."""

    friendly_name: FriendlyName | None = Field(
        default=None, description="Left out: the certificate's, with ' (renewal)'."
    )
    subject: SubjectChanges = Field(default_factory=SubjectChanges)
    subject_alternative_names: list[SanText] | None = Field(
        default=None,
        max_length=SANS_MAX,
        description="Every SAN of the request, instead of the certificate's.",
    )


#: ``confirm`` of the bodies that change what an address presents (``service.guard``).
CONFIRM_DESCRIPTION = (
    "Apply the change even when an address's chain would end at another root than it does "
    "now, or its new certificate is expired, not yet valid, has an incomplete chain or does "
    "not cover the address's hostnames. Without it such a change is refused: 409 "
    "unconfirmed-change, each reason in `concerns`."
)


class ReplaceBody(In):
    """The certificate that takes over every address of the one replaced."""

    with_: Reference = Field(alias="with")
    confirm: bool = Field(default=False, description=CONFIRM_DESCRIPTION)


class ReplacedParty(Out):
    id: int
    friendly_name: str
    fingerprint_sha256: str


class Replacement(Out):
    """A replacement made: ``addresses`` present ``new`` from the next handshake; ``old``
    stays on the appliance and may be removed and/or revoked as necessary."""

    old: ReplacedParty
    new: ReplacedParty
    addresses: list[str] = Field(description="The addresses moved from old to new.")


class CreatedCertificate(BaseModel):
    certificate: Certificate
    notices: list[str] = Field(description="What certgate changed or advises about the input.")


class ChainedCertificate(Certificate):
    """The certificate after its chain was set, with what certgate did to the input."""

    notices: list[str] = Field(
        default_factory=list,
        description="What certgate did to the chain given (e.g. put it in order).",
    )


class Rename(In):
    friendly_name: FriendlyName


class ChainBody(In):
    mode: Literal["automatic", "manual"]
    pem: str | None = Field(
        default=None,
        max_length=MANUAL_CHAIN_MAX,
        description="For 'manual': the chain in PEM, nearest issuer first.",
    )
    confirm: bool = Field(default=False, description=CONFIRM_DESCRIPTION)


class CertificateAddresses(In):
    addresses: list[AddressText] = Field(
        max_length=1000,
        description="Exactly the addresses that present this certificate; addresses it had "
        "and that are not listed go back to the factory certificate.",
    )
    confirm: bool = Field(default=False, description=CONFIRM_DESCRIPTION)


class DeletedCertificate(Out):
    id: int
    friendly_name: str
    addresses_moved_to_factory: list[str]
    private_key_deleted: bool
    chains_incomplete: list[str] = Field(
        description="Friendly names of the certificates issued under it whose chain is now "
        "incomplete (no other issuer of theirs is in the store)."
    )


class ExportBody(In):
    """The Export page. The guide's rules pick the format: DER (the certificate alone),
    PKCS#8 (the key alone), PKCS#7 (several certificates), PKCS#12 (with the key)."""

    include_certificate: bool = True
    include_private_key: bool = False
    include_chain: bool = False
    passphrase: SecretStr | None = Field(
        default=None, max_length=EXPORT_PASSPHRASE_MAX, description="Encrypts the private key."
    )
    pem: bool = Field(default=False, description="PEM variants instead of binary files.")
    legacy_pkcs12: bool = Field(
        default=False, description="3DES and a SHA-1 MAC, for old Windows releases."
    )
    unencrypted_private_key: bool = Field(
        default=False, description="The explicit opt-in to export a key without a passphrase."
    )


# --- requests --------------------------------------------------------------------------------


class CertificateRequest(Out):
    id: int
    fingerprint_sha256: str
    fingerprint_sha1: str = Field(description=SHA1_DESCRIPTION)
    friendly_name: str
    subject: str
    sans: list[str]
    has_private_key: bool
    certificate_ids: list[int] = Field(description="Certificates issued for this request's key.")
    renews: list[int] = Field(
        description="For a renewal request: the certificates whose key it was signed with "
        "(stored before the request was made)."
    )
    created_at: Instant
    pem: str = Field(description="The Request Data to give the certificate authority.")


class CreatedRequest(BaseModel):
    request: CertificateRequest
    notices: list[str]


class DeletedRequest(BaseModel):
    id: int
    private_key_deleted: bool


# --- import ----------------------------------------------------------------------------------


class ImportResult(BaseModel):
    entries: list[ImportEntry]


# --- addresses, TLS, status ------------------------------------------------------------------


class Address(Out):
    address: str
    certificate_id: int
    certificate_name: str
    certificate_fingerprint: str
    is_factory_certificate: bool
    hostnames: list[str] = Field(
        description="The DNS names clients use to reach the address (A-labels). The "
        "certificate it presents is warned about (hostname-not-covered) when it does not "
        "cover one; the address test connects with each as SNI."
    )
    hostnames_not_covered: list[str] = Field(
        description="The hostnames the certificate the address presents does not cover "
        "(browsers connecting by them warn)."
    )
    node: str | None = Field(
        description="The node that serves the address (certgate serve --node NAME): only that "
        "node listens on it. null: a floating address, which every node binds (IP_FREEBIND) "
        "and whichever node holds it serves; on a single appliance every address is."
    )


class PresentedCertificate(Out):
    subject: str
    issuer: str
    fingerprint_sha256: str
    not_after: Instant
    in_store: bool = Field(description="Whether certgate's store holds this certificate.")


class NameTest(Out):
    """One handshake with the address, and what a browser would make of it."""

    server_name: str | None = Field(description="The SNI sent (null: none).")
    checked_name: str = Field(description="The name the certificate must cover.")
    connected: bool = Field(description="Whether the TLS handshake completed.")
    error: str | None = Field(description="Why it did not: nothing listening, refused...")
    protocol: str | None = Field(examples=["TLSv1.3"])
    cipher: str | None = Field(examples=["TLS_AES_256_GCM_SHA384"])
    chain: list[PresentedCertificate] = Field(description="As sent, leaf first.")
    presents_assigned: bool | None = Field(
        description="Whether the leaf is the certificate assigned to the address."
    )
    name_covered: bool | None = Field(
        description="Whether a subject alternative name of the leaf matches checked_name."
    )
    trusted_by: Annotated[TrustStore, Field(strict=False)] | None = Field(
        description="The trust store whose root the chain validates to (null: neither)."
    )
    trust_error: str | None = Field(description="The verifier's reason when not trusted.")
    days_left: int | None
    browser_accepts: bool
    verdict: str = Field(description="What a browser will say, as a sentence.")


class AddressTest(Out):
    """``POST /addresses/{address}/test`` and ``certgate ip test --json``."""

    address: str
    port: int
    certificate_id: int = Field(description="The certificate assigned to the address.")
    certificate_name: str
    results: list[NameTest] = Field(description="One per name tested.")


class AddressTestOptions(In):
    hostname: Annotated[str, Field(min_length=1, max_length=HOSTNAME_MAX), Trimmed] | None = Field(
        default=None,
        description="Default: the address's hostnames, else each DNS name of its certificate.",
    )
    port: int | None = Field(default=None, ge=1, le=65535)


Hostnames = Annotated[
    list[HostnameText],
    Field(
        max_length=HOSTNAMES_PER_ADDRESS_MAX,
        description="DNS names (an internationalised name is stored as its A-labels); no "
        "wildcard, no IP address.",
        examples=[["support.example.com"]],
    ),
]


#: ``confirm`` of the bodies that pin an address to a node (``networking.set_node``).
NODE_CONFIRM_DESCRIPTION = (
    "Pin the address even to a node that has never run on this store (one provisioned before "
    "its first start). Without it such a node is refused: 409 unknown-node, naming the known "
    "nodes (a mistyped name would leave the address served by no node)."
)
NodeName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NODE_NAME_MAX,
        pattern=NAME_PATTERN,
        description="A node's name, as certgate serve --node NAME runs it.",
        examples=["node-a"],
    ),
    Trimmed,
]


class NewAddress(In):
    address: AddressText = Field(examples=["192.0.2.10", "2001:db8::10"])
    hostnames: Hostnames = Field(default_factory=list)
    node: NodeName | None = Field(
        default=None,
        description="The node that serves the address, alone; omitted or null: floating, "
        "every node serves it.",
    )
    confirm: bool = Field(default=False, description=NODE_CONFIRM_DESCRIPTION)


class AddressChange(In):
    """Omitted fields keep their value."""

    hostnames: Hostnames | None = Field(
        default=None, description="Replaces the address's hostnames ([] clears them)."
    )
    node: NodeName | None = Field(
        default=None,
        description="Pins the address to this node (only it listens on the address); null "
        "makes it floating (every node does). Omitted: unchanged.",
    )
    confirm: bool = Field(default=False, description=NODE_CONFIRM_DESCRIPTION)


class Assignment(In):
    certificate: Reference
    confirm: bool = Field(default=False, description=CONFIRM_DESCRIPTION)


class TlsSettings(Out):
    minimum_version: TlsVersion
    maximum_version: TlsVersion
    tls12_ciphers: str = Field(description="OpenSSL cipher list for TLS 1.2 and below.")
    https_port: int
    http_port: int = Field(
        description="The plain HTTP listener on every address (ACME http-01 answers, a 308 "
        "redirect to HTTPS for everything else); 0: none."
    )
    groups: str = Field(description="OpenSSL key-exchange groups, most preferred first.")
    send_root: bool = Field(description="Whether the chain sent includes its root.")
    # --- deadlines, in seconds (service/tls_settings.DEADLINE_SETTINGS) ---
    handshake_timeout: float
    header_timeout: float
    body_timeout: float
    send_timeout: float
    keepalive_timeout: float
    shutdown_grace: float


class TlsSettingsChange(In):
    """Omitted fields keep their value; the result is checked as a whole."""

    minimum_version: TlsVersion | None = None
    maximum_version: TlsVersion | None = None
    tls12_ciphers: str | None = Field(
        default=None, min_length=1, max_length=2000, pattern=r"^[A-Za-z0-9+:!@=_.,\- ]*$"
    )
    https_port: int | None = Field(default=None, ge=1, le=65535)
    http_port: int | None = Field(default=None, ge=0, le=65535)
    groups: str | None = Field(
        default=None, min_length=1, max_length=500, pattern=r"^[A-Za-z0-9:_\-]*$"
    )
    send_root: bool | None = None
    # --- deadlines, in seconds: bounds checked by the service, as for every face ---
    handshake_timeout: float | None = None
    header_timeout: float | None = None
    body_timeout: float | None = None
    send_timeout: float | None = None
    keepalive_timeout: float | None = None
    shutdown_grace: float | None = None


class EmailSettings(Out):
    """Security > Email Configuration. The password is never shown: only whether one is set."""

    host: str = Field(description="The SMTP relay (empty: mail is not configured).")
    port: int
    security: MailSecurityField = Field(
        description="none, starttls (STARTTLS before anything else is said) or tls (implicit TLS)."
    )
    verify_certificate: bool = Field(description="Whether the relay's certificate is checked.")
    ca_bundle: str | None = Field(
        description="PEM roots trusted for the relay's certificate (none: the system's)."
    )
    from_address: str
    to_addresses: list[str] = Field(description="The administrators the mail goes to.")
    username: str | None
    password_set: bool = Field(description="Whether a password is stored (never shown).")
    notice_days: list[int] = Field(
        description="Days before expiry at which a certificate's notice is sent (0: on expiry)."
    )
    configured: bool = Field(description="A relay, a sender and a recipient are set.")
    notices: list[str] = Field(
        default=[],
        description="What a change did beyond what was asked: the stored password is removed "
        "when the relay (host, port, security, certificate check, CA bundle) changes without "
        "a new one.",
    )


class EmailSettingsChange(In):
    """Omitted fields keep their value; the result is checked as a whole. An empty
    ``ca_bundle`` trusts the system's roots again; an empty ``username`` removes the username
    and the password; an empty ``password`` removes the password."""

    host: (
        Annotated[str, Field(max_length=mail.HOST_MAX, pattern=r"^[A-Za-z0-9._:\-]*$"), Trimmed]
        | None
    ) = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: MailSecurityField | None = None
    verify_certificate: bool | None = None
    ca_bundle: CaBundle | None = None
    from_address: Mailbox | None = None
    to_addresses: list[Mailbox] | None = Field(default=None, max_length=mail.RECIPIENTS_MAX)
    username: (
        Annotated[str, Field(max_length=mail.USERNAME_MAX, pattern=NAME_PATTERN), Trimmed] | None
    ) = None
    password: SecretStr | None = Field(default=None, max_length=mail.PASSWORD_MAX)
    notice_days: list[Annotated[int, Field(ge=0, le=mail.NOTICE_DAYS_MAX)]] | None = Field(
        default=None, max_length=mail.NOTICE_THRESHOLDS_MAX
    )


class EmailTestResult(Out):
    relay: str = Field(description="The relay the test mail was handed to (host:port).")
    recipients: list[str]


class ExpiryNotice(Out):
    """One certificate's expiry notice for one threshold."""

    fingerprint: str = Field(description="The certificate's SHA-256 fingerprint.")
    friendly_name: str
    threshold: int = Field(description="Days before expiry (0: on expiry).")
    not_after: Instant
    state: str = Field(description="due, sending, sent or failed (retried at the next check).")
    attempts: int
    error: str | None = Field(description="The relay's answer to the last failed send.")


class NoticeCheck(Out):
    """What one check of the expiry notices did (``certgate notify``)."""

    configured: bool = Field(description="Email is configured; without it nothing is sent.")
    sent: list[ExpiryNotice]
    failed: list[ExpiryNotice]
    waiting: list[ExpiryNotice] = Field(description="Due, but email is not configured.")


class Listener(BaseModel):
    model_config = ConfigDict(extra="allow")

    address: str
    port: int
    state: ListenerState
    fingerprint: str | None = None
    error: str | None = None


class NodeListener(Out):
    """What one listener of a node presented at its last heartbeat."""

    address: str
    port: int
    state: str = Field(description="listening, or failed (see error).")
    fingerprint: str | None = Field(description="SHA-256 of the certificate presented.")
    error: str | None = None
    held: bool | None = Field(
        default=None,
        description="For a floating address: whether the node holds it (the address is on "
        "its host, so it answers it). null for a pinned address.",
    )


class NodeDrift(Out):
    """An assigned address where the node presents another certificate, or none."""

    address: str
    assigned_fingerprint: str
    assigned_name: str
    presented_fingerprint: str | None = Field(description="null: the node does not serve it.")


class Node(Out):
    """A ``certgate serve`` node of this store and its heartbeat."""

    name: str
    host: str | None = Field(
        description="The host it runs on (null: a node from before it was recorded)."
    )
    version: str
    started_at: Instant
    last_seen: Instant = Field(description="Its last heartbeat.")
    state: Annotated[NodeState, Field(strict=False)] = Field(
        description="alive (heartbeat on time), stopped (stopped cleanly) or lost (its "
        "heartbeat stopped without a clean stop)."
    )
    alive: bool
    alive_within: float = Field(
        description="Seconds: alive while its last heartbeat is at most this old (three of "
        "its heartbeat intervals)."
    )
    listeners: list[NodeListener] = Field(description="Its HTTPS listeners.")
    http_listeners: list[NodeListener] = Field(
        description="Its plain HTTP listeners (ACME http-01 challenges, the redirect to "
        "HTTPS): none without an HTTP port."
    )
    http_said: bool = Field(
        description="Whether its heartbeat lists its plain HTTP listeners: false for a node "
        "of an earlier version, which does not (http_listeners is then empty whatever it "
        "listens on; 'not reported' in the node list and on the Status page)."
    )
    holds: list[str] = Field(
        description="The floating addresses this node (when alive) holds now: of a failover "
        "pair, the active node's."
    )
    drift: list[NodeDrift] = Field(
        description="Assigned addresses where this node (when alive) presents another "
        "certificate than the assigned one, or none."
    )
    master_key_generation: int | None = Field(
        description="The generation of the master key it runs with (1 for the key 'certgate "
        "init' made, one more per 'certgate key rotate'); null: not known, or not one of "
        "the store's keys."
    )
    master_key_stale: bool = Field(
        description="It is alive with a master key the store no longer seals with: it "
        "serves what it had loaded and loads nothing new until 'certgate key install'."
    )


class HealthFinding(Out):
    severity: Severity
    code: FindingCode
    message: str


class ApplianceStatus(Out):
    """Status > Basics: the Appliance Statistics table."""

    appliance_version: str
    serial_number: str
    guid: str
    software_version: str
    service_pack: str = Field(description="Python and the OpenSSL builds certgate runs on.")
    firmware_version: str = Field(description="The operating system release and its kernel.")
    firmware_build_date: str = Field(description="The kernel's build string.")
    uptime: str
    load: str = Field(description="Load average over 1, 5 and 15 minutes.")
    running_processes: int | None = Field(description="Processes running now.")
    diagnostic_status: str = Field(description="'Healthy', or how many findings need attention.")
    diagnostics: list[HealthFinding] = Field(
        description="What needs attention, errors first; each finding's code is one of: "
        + ", ".join(code.value for code in FindingCode)
        + "."
    )
    system_time: str
    time_zone: str
    listeners: list[Listener] | None = Field(
        description="What each listener serves; null when no 'certgate serve' runs."
    )
    serve_workers: int | None = Field(
        description="The worker processes of the running 'certgate serve'; null when none runs."
    )


# --- users and tokens ------------------------------------------------------------------------


class User(Out):
    id: int
    username: str
    role: UserRole
    created_at: Instant
    last_login_at: Instant | None


class NewUser(In):
    username: Annotated[
        str, Field(min_length=1, max_length=USERNAME_MAX, pattern=USERNAME_PATTERN), Trimmed
    ]
    password: NewPasswordText
    role: UserRole


class NewPassword(In):
    password: NewPasswordText


class OwnPassword(NewPassword):
    current_password: SecretStr = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)


class Token(Out):
    id: int
    name: str
    role: UserRole
    created_by: str
    created_at: Instant
    last_used_at: Instant | None = Field(description="Updated at most once a minute.")
    revoked: bool


class NewToken(In):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN), Trimmed]
    role: UserRole


class CreatedToken(Token):
    token: str = Field(description="The token itself: shown only in this response.")


class Me(Out):
    username: str
    role: UserRole
    via: Literal["session", "token", "cli"]


# --- what the CLI prints where the API answers 204 No Content --------------------------------


class RemovedAddress(BaseModel):
    address: str
    removed: Literal[True] = True


class RemovedNode(BaseModel):
    name: str
    removed: Literal[True] = True


class RemovedUser(BaseModel):
    username: str
    removed: Literal[True] = True


class PasswordChanged(BaseModel):
    username: str
    password_changed: Literal[True] = True


# --- audit -----------------------------------------------------------------------------------


class AuditEvent(Out):
    id: int
    at: Instant
    actor: str = Field(description="A username, `token:<name>`, `cli:<OS user>` or `appliance`.")
    source: str = Field(description="The client's address, `cli` or `appliance`.")
    action: str = Field(examples=["key.export"])
    target: str = Field(description="What it was done to: a name and fingerprint, an address.")
    detail: str


class AuditPage(Out):
    events: list[AuditEvent] = Field(description="Newest first.")
    older: int | None = Field(
        description="Pass as `before` for the next (older) events; null at the oldest."
    )


class AcmeAccount(Out):
    """Security > ACME: the appliance's account with an ACME CA (never its key)."""

    configured: bool = Field(description="An account is registered.")
    directory_url: str | None = Field(description="The CA's ACME directory.")
    preset: str | None = Field(description="letsencrypt or letsencrypt-staging, when it is one.")
    email: str | None = Field(description="The account's contact address.")
    terms_agreed: str | None = Field(description="The CA's terms of service agreed to (URL).")
    eab_kid: str | None = Field(description="The external account binding's key id, if any.")
    ca_bundle: str | None = Field(
        description="PEM roots trusted for a private ACME server's HTTPS (none: the system's)."
    )
    account_url: str | None = Field(description="The account at the CA.")
    status: str | None = Field(description="The account's status at the CA.")
    created_at: Instant | None
    updated_at: Instant | None


class AcmeAccountChange(In):
    """Register an account (``directory`` is then required), or change the one there is:
    a new directory or an external account binding registers a new account with a new key;
    a new ``email`` updates the contact at the CA; omitted fields keep their value."""

    directory: str | None = Field(
        default=None,
        max_length=URL_MAX,
        description="The CA's directory URL, or letsencrypt / letsencrypt-staging.",
    )
    email: Mailbox | None = None
    agree_tos: bool = Field(default=False, description="Agree to the CA's terms of service.")
    ca_bundle: CaBundle | None = None
    eab_kid: Annotated[str, Field(max_length=EAB_KID_MAX, pattern=NAME_PATTERN), Trimmed] | None = (
        None
    )
    eab_hmac_key: SecretStr | None = Field(default=None, max_length=EAB_HMAC_KEY_MAX)


class AcmeOrder(Out):
    """One certificate ordered from the ACME CA, and how it ended."""

    id: int
    friendly_name: str
    domains: list[str]
    key: KeyType
    challenge: str
    assign: list[str] = Field(description="The addresses the certificate is assigned to.")
    state: str = Field(
        description="pending (at the CA), valid (issued and imported), invalid (the CA "
        "refused it) or failed (it could not be completed)."
    )
    error: str | None = Field(description="What went wrong, in words.")
    error_document: str | None = Field(
        description="The CA's problem document (RFC 7807 JSON), as it sent it."
    )
    certificate_id: int | None
    certificate_fingerprint: str | None
    directory_url: str
    order_url: str | None
    created_by: str
    created_at: Instant
    finished_at: Instant | None
    renewal_of: int | None = Field(description="The order whose certificate this one renewed.")
    renewed_by: int | None = Field(description="The order that renewed this one's certificate.")
    renewal_attempts: int = Field(description="Failed renewals in a row.")
    renewal_next_at: Instant | None = Field(description="When a failed renewal is tried again.")
    renewal_error: str | None = Field(description="Why the last renewal failed.")
    renewal_suggested_at: Instant | None = Field(
        description="When the CA suggests renewing the certificate (its renewal information, "
        "ARI, RFC 9773), if it offers any: the renewal starts then. Without it, when a third "
        "of the validity is left."
    )


class AcmeOrderRequest(In):
    friendly_name: FriendlyName
    domains: list[HostnameText] = Field(
        min_length=1, max_length=DOMAINS_MAX, description=ACME_NAMES_HELP
    )
    key: KeyType = DEFAULT_KEY_SPEC
    assign: list[AddressText] = Field(default=[], max_length=100)
    challenge: Annotated[ChallengeType, Field(strict=False)] = Field(
        default=ChallengeType.HTTP_01,
        description="http-01: answered on the plain HTTP port; tls-alpn-01: on the HTTPS "
        "port (ALPN acme-tls/1), no HTTP port needed.",
    )
    confirm: bool = Field(
        default=False,
        description="Assign it even when an address's chain would end at another root than "
        "now, or its hostnames would not be covered (else a 409 `unconfirmed-change` before "
        "the order is placed, naming each).",
    )


class AcmeRenewal(Out):
    """What one renewal check did for one certificate issued by an ACME order."""

    order_id: int = Field(description="The order whose certificate was checked.")
    friendly_name: str
    certificate_id: int | None
    state: str = Field(
        description="renewed, failed (retried after a backoff), not-due, busy (another "
        "renewer holds its lease) or backoff (waiting after a failure)."
    )
    renewed_by: AcmeOrder | None = Field(description="The order that renewed it.")
    error: str | None


class AcmeRenewalRequest(In):
    certificate_id: int | None = Field(
        default=None, ge=1, le=ROW_ID_MAX, description="Only this certificate (else every one)."
    )
    force: bool = Field(default=False, description="Renew now, due or not, despite a backoff.")
