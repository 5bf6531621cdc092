"""The one place that talks to an ACME CA (RFC 8555), through certbot's ``acme`` library, and
the one place that reads its errors: every failure becomes an ``AcmeError`` quoting the CA's
problem document, or saying which server could not be reached and why.

Everything here blocks (HTTPS to the CA, polling), so callers run it on a thread, never on
the event loop. Nothing here touches the store: ``service/acme_account.py``,
``service/acme_orders.py`` and ``service/acme_renewal.py`` decide, this carries out.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import ipaddress
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import josepy
import requests
from acme import challenges, client, crypto_util, messages
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.json_util import field
from josepy.jwa import ES256
from josepy.jwk import JWK, JWKEC

from certgate import __version__
from certgate.errors import AcmeError, ValidationError, problem_type

log = logging.getLogger("certgate.acme")

#: How long one HTTPS request to the CA may take.
NETWORK_TIMEOUT = 30
#: ``badNonce`` is meant to be retried (RFC 8555 6.5); the library retries once, and a CA
#: that rejects a share of good nonces (Pebble: 5 %) makes two in a row happen. Ten tries
#: make an order of ~20 requests fail by it about once in 10^11 at Pebble's rate.
NONCE_TRIES = 10
#: The most of a CA's problem document kept (a CA's are a few hundred bytes).
DOCUMENT_MAX = 20_000
_USER_AGENT = f"certgate/{__version__} acme-python"


@dataclass(frozen=True)
class Server:
    """Where the CA is, and the roots trusted for its HTTPS (none: the system's)."""

    directory_url: str
    ca_pem: str | None = None


@dataclass(frozen=True)
class Registration:
    """An account at the CA: its URL (the ``kid`` of every request) and its document."""

    account_url: str
    document: dict[str, Any]
    terms: str | None


@dataclass(frozen=True)
class Challenge:
    """An answer to publish before the CA looks: for http-01,
    ``/.well-known/acme-challenge/TOKEN`` -> the key authorization; for tls-alpn-01, the
    certificate of ``identifier`` made from the key authorization."""

    token: str
    key_authorization: str
    identifier: str


@challenges.ChallengeResponse.register
class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """The answer to a tls-alpn-01 challenge: an empty object (RFC 8555 7.5.1), the key
    authorization being in the certificate the appliance presents."""

    typ = "tls-alpn-01"


@challenges.Challenge.register
class TLSALPN01(challenges.KeyAuthorizationChallenge):
    """RFC 8737's challenge, which the library no longer carries (acme 5 dropped it with
    certbot's TLS-ALPN-01 support): a token, answered by a certificate whose acmeIdentifier
    extension holds SHA-256 of the key authorization (``pki/tls_alpn.py``)."""

    typ = "tls-alpn-01"
    response_cls = TLSALPN01Response

    def validation(self, account_key: JWK, **_: Any) -> str:
        """What the certificate is made from: the key authorization."""
        return self.key_authorization(account_key)


#: The challenge classes by the name RFC 8555's registry gives them.
_CHALLENGES: dict[str, type[challenges.KeyAuthorizationChallenge]] = {
    "http-01": challenges.HTTP01,
    "tls-alpn-01": TLSALPN01,
}


def new_account_key() -> bytes:
    """A P-256 account key (ES256), as PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class _Network(client.ClientNetwork):
    """The library's network with ``badNonce`` retried up to ``NONCE_TRIES`` times, keeping
    the ``Retry-After`` and the problem document, as sent, of the last refusal (the library's
    errors leave the first out, and keep of the second only the fields it knows), and the
    ``Retry-After`` of the last answer (the library reads a date in it as local time)."""

    refused_retry_after: str | None = None
    refused_document: str | None = None
    last_retry_after: str | None = None
    last_response: requests.Response | None = None

    def _check_response(  # type: ignore[override]
        self, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        self.last_retry_after = response.headers.get("Retry-After")
        self.last_response = response
        if response.status_code >= 400:
            self.refused_retry_after = response.headers.get("Retry-After")
            self.refused_document = response.text[:DOCUMENT_MAX]
        return super()._check_response(response, content_type=content_type)

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for attempt in range(1, NONCE_TRIES + 1):
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt == NONCE_TRIES:
                    raise
                log.info("the CA refused a nonce (badNonce); trying again (%d)", attempt)
        raise AssertionError("unreachable")


class _ReplacingOrder(messages.NewOrder):
    """A new order naming the certificate it renews (RFC 9773 5), which the library's
    orders cannot say."""

    replaces: str | None = field("replaces", omitempty=True)


class _Client(client.ClientV2):
    """The library's client, whose new orders name ``replaces`` while it is set."""

    replaces: str | None = None

    def _post(self, *args: Any, **kwargs: Any) -> requests.Response:
        if self.replaces and len(args) > 1 and isinstance(args[1], messages.NewOrder):
            said = {**args[1].to_json(), "replaces": self.replaces}
            args = (args[0], _ReplacingOrder.from_json(said), *args[2:])
        return super()._post(*args, **kwargs)


def _jwk(key_pem: bytes) -> JWK:
    return JWKEC.load(key_pem)


@contextmanager
def _session(
    server: Server, key_pem: bytes, account: messages.RegistrationResource | None = None
) -> Iterator[client.ClientV2]:
    """A client of the CA, signing as ``account`` where given; its errors, and those of
    what is done with it, translated (``translated``). A private CA bundle is a file only
    for the length of the session (``requests`` reads roots from a path)."""
    bundle = None
    try:
        if server.ca_pem:
            descriptor, bundle = tempfile.mkstemp(prefix="certgate-acme-ca-", suffix=".pem")
            with os.fdopen(descriptor, "w") as handle:
                handle.write(server.ca_pem)
        with translated(server):
            network = _Network(
                _jwk(key_pem),
                account=account,
                alg=ES256,
                verify_ssl=bundle or True,  # type: ignore[arg-type]  # requests takes a path
                user_agent=_USER_AGENT,
                timeout=NETWORK_TIMEOUT,
            )
            directory = client.ClientV2.get_directory(server.directory_url, network)
            try:
                with translated(server):
                    yield _Client(directory, network)
            except AcmeError as error:
                error.retry_after = retry_after(network.refused_retry_after)
                error.document = _as_sent(error.document, network.refused_document)
                raise
    finally:
        if bundle:
            os.unlink(bundle)


def _account(account_url: str, document: dict[str, Any]) -> messages.RegistrationResource:
    """The registered account as the library takes it: its URL and its stored document."""
    return messages.RegistrationResource(
        uri=account_url, body=messages.Registration.from_json(document)
    )


@contextmanager
def translated(server: Server) -> Iterator[None]:
    """The library's and the network's failures as ``AcmeError``s."""
    where = server.directory_url
    try:
        yield
    except messages.Error as error:
        raise AcmeError(f"the ACME CA refused: {_said(error)}", _document(error)) from None
    except acme_errors.ValidationError as error:
        raise _validation_failed(error) from None
    except acme_errors.IssuanceError as error:
        raise AcmeError(
            f"the ACME CA did not issue the certificate: {_said(error.error)}",
            _document(error.error),
        ) from None
    except acme_errors.TimeoutError:
        raise AcmeError(
            "the ACME CA did not validate the order in time (it is still pending at the CA)"
        ) from None
    except requests.exceptions.SSLError as error:
        raise AcmeError(
            f"the ACME server {where} presented a certificate that is not trusted "
            f"({_reason(error)}); for a private ACME server give its CA bundle"
        ) from None
    except requests.exceptions.JSONDecodeError:  # a RequestException: it was reached
        raise AcmeError(
            f"the ACME server {where} answered with something that is not JSON (a proxy's "
            "error page?)"
        ) from None
    except requests.exceptions.RequestException as error:
        raise AcmeError(f"cannot reach the ACME server {where}: {_reason(error)}") from None
    except josepy.errors.DeserializationError as error:
        raise AcmeError(
            f"the ACME server {where} answered with something that is not ACME (RFC 8555): "
            f"{str(error)[:300]}"
        ) from None
    except acme_errors.Error as error:
        raise AcmeError(f"the ACME exchange with {where} failed: {error}") from None


#: The longest wait a CA's ``Retry-After`` is taken for (a larger one is taken as this).
RETRY_AFTER_MAX = dt.timedelta(days=7)


def retry_after(value: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as a moment in UTC (as the store
    keeps every moment: SQLite keeps no offset), at most a week on."""
    if not value:
        return None
    moment = now or dt.datetime.now(dt.UTC)
    text = value.strip()
    if text.isdigit():
        when = moment + dt.timedelta(seconds=int(text[:9]))
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
    return min(max(when, moment), moment + RETRY_AFTER_MAX).astimezone(dt.UTC)


def _reason(error: BaseException) -> str:
    """The innermost cause's words (urllib3 wraps them several levels deep)."""
    seen = error
    while seen.__context__ is not None and seen.__context__ is not seen:
        seen = seen.__context__
    text = str(seen) or type(seen).__name__
    return text[:300]


def _said(error: messages.Error) -> str:
    words = error.detail or error.description or "no detail given"
    return f"{words} ({error.typ})"


def _document(error: messages.Error) -> str:
    return json.dumps(error.to_partial_json(), sort_keys=True)


def _as_sent(document: str | None, sent: str | None) -> str | None:
    """The problem document as the CA sent it, when ``document`` (the library's reading of
    it) is that one: the same type and detail."""
    try:
        read, raw = json.loads(document or "null"), json.loads(sent or "null")
    except ValueError:
        return document
    same = (
        isinstance(read, dict)
        and isinstance(raw, dict)
        and all(read.get(key) == raw.get(key) for key in ("type", "detail"))
    )
    return sent if same else document


def _validation_failed(error: acme_errors.ValidationError) -> AcmeError:
    """Each failed identifier with the CA's reason; the document lists their problems."""
    said: list[str] = []
    documents: list[Any] = []
    for authzr in error.failed_authzrs:
        name = authzr.body.identifier.value
        for challenge in authzr.body.challenges:
            if challenge.error is not None:
                said.append(f"{name}: {_said(challenge.error)}")
                documents.append(challenge.error.to_partial_json())
    text = "; ".join(said) or "the CA marked the authorization invalid"
    document = documents[0] if len(documents) == 1 else documents
    return AcmeError(
        f"the ACME CA could not validate the order: {text}",
        json.dumps(document, sort_keys=True) if documents else None,
    )


def terms_of_service(server: Server, key_pem: bytes) -> str | None:
    """The CA's terms of service (a URL), if it has any."""
    with _session(server, key_pem) as acme:
        terms = acme.directory.meta.terms_of_service
        return str(terms) if terms else None


def register(
    server: Server,
    key_pem: bytes,
    email: str | None,
    agree_terms: bool,
    eab: tuple[str, str] | None = None,
) -> Registration:
    """A new account for ``key_pem``; refused before anything is sent when the CA has
    terms that were not agreed to, or requires an external account binding not given."""
    with _session(server, key_pem) as acme:
        meta = acme.directory.meta
        terms = str(meta.terms_of_service) if meta.terms_of_service else None
        if terms and not agree_terms:
            raise ValidationError(
                "agree_tos", f"the CA's terms of service ({terms}) must be agreed to"
            )
        if meta.external_account_required and eab is None:
            raise ValidationError(
                "eab_kid",
                "this CA requires an external account binding: give its key id and HMAC key",
            )
        binding = None
        if eab is not None:
            kid, hmac_key = eab
            try:
                binding = messages.ExternalAccountBinding.from_data(
                    account_public_key=_jwk(key_pem).public_key(),
                    kid=kid,
                    hmac_key=hmac_key,
                    directory=acme.directory,
                )
            except (ValueError, TypeError):
                raise ValidationError("eab_hmac_key", "is not a base64url-encoded key") from None
        registration = messages.NewRegistration.from_data(
            email=email,
            terms_of_service_agreed=bool(terms) and agree_terms,
            external_account_binding=binding,
        )
        regr = acme.new_account(registration)
        return Registration(regr.uri, regr.body.to_json(), terms)


def update_contact(
    server: Server, key_pem: bytes, account_url: str, document: dict[str, Any], email: str | None
) -> Registration:
    """The account's contact changed at the CA."""
    account = _account(account_url, document)
    with _session(server, key_pem, account) as acme:
        contact = (f"mailto:{email}",) if email else ()
        regr = acme.update_registration(account, account.body.update(contact=contact))
        terms = acme.directory.meta.terms_of_service
        return Registration(regr.uri, regr.body.to_json(), str(terms) if terms else None)


def account_gone(
    server: Server, key_pem: bytes, account_url: str, document: dict[str, Any]
) -> str | None:
    """Why the account can no longer order, or None while it can: a CA that lost or deleted
    it answers ``accountDoesNotExist`` to everything it signs, orders included, and one where
    it was deactivated (by its owner with another client, or by the CA) ``unauthorized``
    (RFC 8555 7.3.6; Let's Encrypt: "An account with the provided public key exists but is
    deactivated")."""
    account = _account(account_url, document)
    with _session(server, key_pem, account) as acme:
        try:
            found = acme.query_registration(account)
        except messages.Error as error:
            if error.code == "accountDoesNotExist":
                return f"the CA no longer knew the account {account_url}"
            if error.code == "unauthorized":
                return f"the account {account_url} is deactivated at the CA ({_said(error)})"
            raise
    if found.body.status in ("deactivated", "revoked"):  # a CA that still answers for it
        return f"the account {account_url} is {found.body.status} at the CA"
    return None


def order_certificate(
    server: Server,
    key_pem: bytes,
    account_url: str,
    document: dict[str, Any],
    certificate_key_pem: bytes,
    domains: Sequence[str],
    kind: str,
    placed: Callable[[str], None],
    publish: Callable[[list[Challenge]], None],
    deadline: dt.datetime,
    replaces: bytes | None = None,
) -> str:
    """Order a certificate for ``domains`` (DNS names, and IP addresses as RFC 8738's ``ip``
    identifiers, iPAddress names in the request) by the challenge ``kind`` (http-01,
    tls-alpn-01): ``placed`` is told the order's URL, ``publish`` the answers to serve
    before the CA is asked to look; returns the PEM of the certificate and its chain, leaf
    first. ``replaces``: the DER of the certificate a renewal replaces, named in the order
    (RFC 9773 5) when the CA offers renewal information."""
    wanted = _CHALLENGES[kind]
    csr = _csr(certificate_key_pem, domains)
    with _session(server, key_pem, _account(account_url, document)) as acme:
        order = _new_order(cast(_Client, acme), csr, replaces)
        placed(order.uri or "")
        answers: list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]] = []
        published: list[Challenge] = []
        for authorization in order.authorizations:
            if authorization.body.status == messages.STATUS_VALID:
                continue  # validated before (a recent order for the same name)
            name = authorization.body.identifier.value
            offered = authorization.body.challenges
            body = next((c for c in offered if isinstance(c.chall, wanted)), None)
            if body is None:
                raise AcmeError(f"the ACME CA offers no {kind} challenge for {name}")
            response, validation = body.response_and_validation(acme.net.key)
            answers.append((body, response))
            published.append(Challenge(body.chall.encode("token"), validation, name))
        publish(published)
        for body, response in answers:
            acme.answer_challenge(body, response)
        until = _naive_local(deadline)
        order = acme.poll_authorizations(order, until)  # its TimeoutError: still pending
        try:
            finished = acme.finalize_order(order, until)
        except acme_errors.TimeoutError:
            raise AcmeError(
                "the ACME CA validated the order but did not issue the certificate in time "
                "(the order is still processing at the CA)"
            ) from None
        return str(finished.fullchain_pem)


def _new_order(acme: _Client, csr: bytes, replaces: bytes | None) -> messages.OrderResource:
    """The order, naming the certificate it replaces where the CA offers renewal
    information. A CA that refuses the order so named is asked once more without it: the
    certificate was replaced already (an earlier renewal the CA issued but this appliance
    did not keep), or another account ordered it (the account was registered anew since),
    which CAs refuse as ``unauthorized`` or ``malformed``; a refusal for any other reason
    comes again, unnamed, and is reported then."""
    acme.replaces = certificate_id(replaces) if replaces else None
    if acme.replaces is None or "renewalInfo" not in acme.directory.to_partial_json():
        return acme.new_order(csr)
    try:
        return acme.new_order(csr)
    except (messages.Error, acme_errors.ConflictError):  # RFC 9773 names no status
        said = problem_type(cast(_Network, acme.net).refused_document)
        log.info("the CA refused to replace %s (%s); ordering anew", acme.replaces, said)
    finally:
        acme.replaces = None
    return acme.new_order(csr)


def certificate_id(der: bytes) -> str | None:
    """A certificate's id in the CA's renewal information (RFC 9773 4.1): base64url of its
    authority key identifier, a dot, base64url of its serial number's DER content octets;
    None for a certificate without a key identifier of its issuer."""
    certificate = x509.load_der_x509_certificate(der)
    try:
        extension = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    if extension.value.key_identifier is None:
        return None
    serial = certificate.serial_number
    octets = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)
    return f"{_base64url(extension.value.key_identifier)}.{_base64url(octets)}"


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _csr(key_pem: bytes, identifiers: Sequence[str]) -> bytes:
    """The request the order is finalized with: the library orders an ``ip`` identifier
    for each iPAddress name, a ``dns`` one for each dNSName."""
    names: list[str] = []
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for identifier in identifiers:
        try:
            addresses.append(ipaddress.ip_address(identifier))
        except ValueError:
            names.append(identifier)
    return crypto_util.make_csr(key_pem, names, ipaddrs=addresses)


def _naive_local(moment: dt.datetime) -> dt.datetime:
    """The library compares deadlines with ``datetime.now()`` (naive, local time)."""
    return moment.astimezone().replace(tzinfo=None)


#: How long the CA's renewal information stands when its answer has no ``Retry-After``, and
#: at the most (RFC 9773 4.3.2: six hours by default; a day is its example of a limit).
RENEWAL_INFO_DEFAULT = dt.timedelta(hours=6)
RENEWAL_INFO_MAX = dt.timedelta(days=1)


@dataclass(frozen=True)
class RenewalInfo:
    """The CA's answer about renewing a certificate (ARI, RFC 9773)."""

    #: when to renew: a moment picked at random in the CA's suggested window (by the
    #: library), or None when the CA offers no renewal information
    suggested: dt.datetime | None
    #: when to ask again: the answer's ``Retry-After``, within a day
    next_check: dt.datetime
    #: why an answer the CA gave is not used (RFC 9773 4.3.3: a malformed one counts as none)
    malformed: str | None = None


def renewal_info(
    server: Server,
    key_pem: bytes,
    account_url: str,
    document: dict[str, Any],
    cert_pem: bytes,
    now: dt.datetime,
) -> RenewalInfo:
    """Ask the CA when to renew the certificate: its directory's ``renewalInfo``, fetched for
    the certificate's id (base64url of its authority key identifier, a dot, base64url of its
    serial number's DER bytes).

    A CA that cannot be asked or refuses raises :class:`AcmeError` (what it said before still
    stands); an answer that is not a usable renewal information document is no answer
    (``malformed``), asked again after its ``Retry-After``."""
    with _session(server, key_pem, _account(account_url, document)) as acme:
        network = cast(_Network, acme.net)
        network.last_response = None
        malformed = None
        try:
            when, _ = acme.renewal_time(cert_pem)
            if network.last_response is not None:  # the CA was asked (not an expired one)
                _check_window(network.last_response)
        except acme_errors.ARIError as error:
            raise AcmeError(f"the CA's renewal information could not be read: {error}") from None
        except (josepy.errors.Error, ValueError, KeyError) as error:
            when, malformed = None, f"the CA's renewal information is malformed: {error}"
        said = retry_after(network.last_retry_after, now)
    if when is None:
        next_check = now + RENEWAL_INFO_DEFAULT if malformed is None else said or now
        return RenewalInfo(None, min(next_check, now + RENEWAL_INFO_MAX), malformed)
    next_check = min(said or now + RENEWAL_INFO_DEFAULT, now + RENEWAL_INFO_MAX)
    # in UTC, as the store keeps every moment (SQLite keeps no offset)
    suggested = when if when.tzinfo is not None else when.astimezone()
    return RenewalInfo(suggested.astimezone(dt.UTC), next_check.astimezone(dt.UTC))


def _check_window(response: requests.Response) -> None:
    """RFC 9773 4.3.3: a window whose end is not after its start is a malformed answer, to be
    treated as no answer (the library picks a moment in it anyway)."""
    window = messages.RenewalInfo.from_json(response.json()).suggested_window
    if window.end <= window.start:
        raise ValueError(
            f"its suggested window ends ({window.end.isoformat()}) "
            f"not after it starts ({window.start.isoformat()})"
        )
