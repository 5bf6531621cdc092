"""The one place that talks to smtplib: a message handed to the SMTP relay, and every way that
can fail said as a ``MailError`` carrying the relay's own answer (code and text) verbatim.

Blocking: callers run it on a thread (the pages through ``run_in_threadpool``, the API's plain
views on FastAPI's pool, the notices on their own thread), never on the event loop. Every
step of the conversation is bounded by ``timeout`` (smtplib's socket timeout), and the whole
of it by ``CONVERSATION_STEPS`` times that: a relay that keeps an answer going (a tarpit
sending continuation lines, each within a step's timeout) is cut off, not waited for for
ever with the page's test email or every expiry notice behind it.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum

from certgate.errors import MailError, MessageRefusedError

#: RFC 5321's "service not available, closing transmission channel": said after a mail's
#: content, the relay's state (shutting down, overloaded), not a refusal of that message.
_CLOSING = 421
#: The whole conversation may take this many steps' ``timeout`` (connect, greeting, EHLO,
#: STARTTLS, AUTH, MAIL, RCPT, DATA, the message, QUIT: each far quicker on a working relay).
CONVERSATION_STEPS = 6


class MailSecurity(StrEnum):
    """How the connection to the relay is protected."""

    NONE = "none"  # plain SMTP (an internal relay on a trusted network)
    STARTTLS = "starttls"  # plain, then STARTTLS before anything else is said (port 587)
    TLS = "tls"  # TLS from the first byte ("implicit TLS", SMTPS, port 465)

    @property
    def default_port(self) -> int:
        return {"none": 25, "starttls": 587, "tls": 465}[self.value]


@dataclass(frozen=True)
class Relay:
    """Where and how mail is handed over. ``ca_pem``: the only roots trusted for the relay's
    certificate (an internal relay), else the system's."""

    host: str
    port: int
    security: MailSecurity
    verify_certificate: bool = True
    ca_pem: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def tls_context(relay: Relay) -> ssl.SSLContext:
    """The client context for the relay: its certificate and name checked unless told not
    to; TLS 1.2 at least."""
    if not relay.verify_certificate:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        try:
            context = ssl.create_default_context(cadata=relay.ca_pem or None)
        except ssl.SSLError as error:
            raise MailError(f"the CA bundle cannot be used: {error.reason or error}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def send(relay: Relay, message: EmailMessage, timeout: float) -> dict[str, str]:
    """Hand ``message`` to the relay (its From and To headers name sender and recipients).
    Raises ``MailError`` naming the relay and quoting its answer. The relay may take it for
    some recipients and refuse others (smtplib raises only when it refuses them all): the
    answer is those it refused, each with the relay's answer."""
    try:
        refused = _send(relay, message, timeout)
    except _ConversationTimeout as error:
        raise _failure(relay, f"no complete answer within {error} seconds (timeout)") from None
    except smtplib.SMTPRecipientsRefused as error:
        raise refusal(relay, _answers(error.recipients)) from None
    except smtplib.SMTPAuthenticationError as error:
        raise _failure(
            relay,
            "the relay refused the username and password: "
            + _answer(error.smtp_code, error.smtp_error),
        ) from None
    except smtplib.SMTPDataError as error:
        if error.smtp_code == _CLOSING:  # the relay's, not this message's: the others wait
            raise _failure(
                relay, "the relay answered " + _answer(error.smtp_code, error.smtp_error)
            ) from None
        raise _failure(
            relay,
            "the relay refused the message: " + _answer(error.smtp_code, error.smtp_error),
            MessageRefusedError,
        ) from None
    except smtplib.SMTPSenderRefused as error:
        raise _failure(
            relay,
            f"the relay refused the sender {error.sender}: "
            + _answer(error.smtp_code, error.smtp_error),
        ) from None
    except smtplib.SMTPResponseException as error:
        if error.smtp_code == -1:  # smtplib's code for a line without one (its first 4 cut)
            said = _answer(error.smtp_code, error.smtp_error).removeprefix("-1 ")
            raise _failure(
                relay, f"its answer is not SMTP ('...{said}'): is it the relay's SMTP port?"
            ) from None
        raise _failure(
            relay, "the relay answered " + _answer(error.smtp_code, error.smtp_error)
        ) from None
    except smtplib.SMTPNotSupportedError as error:
        raise _failure(relay, f"the relay does not offer it: {error}") from None
    except smtplib.SMTPServerDisconnected as error:
        if isinstance(error.__context__, TimeoutError):  # smtplib wraps a read's timeout
            raise _failure(relay, _timed_out(timeout)) from None
        raise _failure(
            relay, f"the relay closed the connection ({error or 'no reason given'})"
        ) from None
    except smtplib.SMTPException as error:
        raise _failure(relay, str(error)) from None
    except UnicodeError:  # its text quotes what it could not encode: the password, maybe
        raise _failure(
            relay, "smtplib cannot send it: the username and password must be ASCII"
        ) from None
    except ssl.SSLCertVerificationError as error:
        raise _failure(
            relay,
            f"TLS failed: the relay's certificate is not trusted ({error.verify_message}); "
            "give the CA bundle of an internal relay",
        ) from None
    except ssl.SSLError as error:
        hint = (
            ": the relay does not speak TLS from its first byte: choose starttls or none"
            if relay.security is MailSecurity.TLS and error.reason == "WRONG_VERSION_NUMBER"
            else ""
        )
        raise _failure(relay, f"TLS failed: {error.reason or error}{hint}") from None
    except TimeoutError:
        raise _failure(relay, _timed_out(timeout)) from None
    except socket.gaierror as error:
        raise _failure(relay, f"the host name cannot be resolved ({error.strerror})") from None
    except ConnectionRefusedError:
        raise _failure(relay, "the connection was refused (nothing listens there)") from None
    except OSError as error:
        raise _failure(relay, f"cannot connect ({error.strerror or error})") from None
    return _answers(refused)


def refusal(relay: Relay, refused: dict[str, str]) -> MailError:
    """The relay refused these recipients (recipient -> its answer)."""
    said = "; ".join(f"{recipient}: {answer}" for recipient, answer in refused.items())
    return _failure(relay, f"the relay refused the recipients: {said}")


def _answers(refused: dict[str, tuple[int, bytes]]) -> dict[str, str]:
    return {recipient: _answer(code, text) for recipient, (code, text) in refused.items()}


class _ConversationTimeout(Exception):
    """The conversation outlived its deadline (the text: its seconds)."""


def _send(relay: Relay, message: EmailMessage, timeout: float) -> dict[str, tuple[int, bytes]]:
    """The conversation, cut off after ``CONVERSATION_STEPS`` timeouts: a timer shuts the
    socket down (which wakes a blocked read, as closing it would not), and whatever that made
    smtplib raise is ``_ConversationTimeout``."""
    smtp: smtplib.SMTP
    if relay.security is MailSecurity.TLS:
        smtp = smtplib.SMTP_SSL(timeout=timeout, context=tls_context(relay))
    else:
        smtp = smtplib.SMTP(timeout=timeout)
    # the name TLS checks the certificate for: smtplib sets it only when it connects itself
    smtp._host = relay.host  # type: ignore[attr-defined]
    seconds = timeout * CONVERSATION_STEPS
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        sock = getattr(smtp, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # the plain socket's: an SSLSocket's drops
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # its state under the reader

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        return _converse(smtp, relay, message)
    except Exception:
        if expired.is_set():
            raise _ConversationTimeout(f"{seconds:g}") from None
        raise
    finally:
        timer.cancel()


def _converse(
    smtp: smtplib.SMTP, relay: Relay, message: EmailMessage
) -> dict[str, tuple[int, bytes]]:
    try:
        code, greeting = smtp.connect(relay.host, relay.port)
        if code != 220:  # as smtplib's constructor says it
            raise smtplib.SMTPConnectError(code, greeting)
        smtp.ehlo()
        if relay.security is MailSecurity.STARTTLS:
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("STARTTLS is not offered by the relay")
            smtp.starttls(context=tls_context(relay))
            smtp.ehlo()
        if relay.username:
            smtp.login(relay.username, relay.password or "")
        return smtp.send_message(message)
    finally:  # the mail was taken or not before QUIT: its answer (not always 221) changes nothing
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        smtp.close()


def _timed_out(timeout: float) -> str:
    return f"no answer within {timeout:g} seconds (timeout)"


def _answer(code: int, text: bytes | str) -> str:
    """The relay's reply as it said it: code and text (lines joined)."""
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(said.split())}".strip()


def _failure(relay: Relay, what: str, kind: type[MailError] = MailError) -> MailError:
    message = f"mail to the relay {relay.where} failed: {what}"
    if relay.password and relay.password in message:  # never, but a relay could echo it
        message = message.replace(relay.password, "********")
    return kind(message)
