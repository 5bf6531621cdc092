"""A real SMTP relay for the tests: aiosmtpd on a free loopback port (its own thread), plain,
with STARTTLS or implicit TLS (a certificate from the test PKI), with or without AUTH; it
keeps every mail it accepts, parsed, for the test to read back. ``refuse`` makes it refuse
every recipient (or those given) the way Postfix does; ``refuse_content`` every mail whose
Subject holds it, at the end of DATA, as a content filter does; ``quit_answer`` is what it
says to QUIT instead of ``221 Bye``; ``on_mail`` is awaited on
the relay's loop after each mail is kept (a slow relay: the test moves its clock or runs a
check meanwhile)."""

from __future__ import annotations

import email
import email.policy
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from certgate.service import email as email_settings
from certgate.service.appliance import Appliance
from tests.support.net import free_port
from tests.support.pki import TestCA, pem

REFUSAL = "550 5.1.1 <{}>: Recipient address rejected: User unknown in local recipient table"
CONTENT_REFUSAL = "554 5.7.1 Message rejected: content policy"


@dataclass
class Relay:
    host: str
    port: int
    ca_pem: bytes  # the root its certificate chains to (empty for a plain relay)
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)  # usernames that authenticated

    def write_ca(self, directory: Path) -> Path:
        path = directory / "relay-ca.pem"
        path.write_bytes(self.ca_pem)
        return path


class _Handler:
    def __init__(
        self,
        relay: Relay,
        refuse: bool | Collection[str],
        on_mail: Callable[[Relay], Awaitable[None]] | None,
        refuse_content: str | None = None,
        quit_answer: str | None = None,
        content_refusal: str = CONTENT_REFUSAL,
    ) -> None:
        self.relay = relay
        self.content_refusal = content_refusal
        self.refuse = refuse
        self.on_mail = on_mail
        self.refuse_content = refuse_content
        if quit_answer is not None:
            self.handle_QUIT = self._quit
            self.quit_answer = quit_answer

    async def _quit(self, server: Any, session: Any, envelope: Any) -> str:
        return self.quit_answer

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse is True or (not isinstance(self.refuse, bool) and address in self.refuse):
            return REFUSAL.format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content.replace(b"\r\n", b"\n")  # as the recipient reads it
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        if self.refuse_content is not None and self.refuse_content in str(parsed["Subject"]):
            return self.content_refusal
        self.relay.messages.append(parsed)
        if self.on_mail is not None:
            await self.on_mail(self.relay)
        return "250 2.0.0 Ok: queued"


@contextmanager
def smtp_relay(
    security: str = "none",
    *,
    users: dict[str, str] | None = None,
    refuse: bool | Collection[str] = False,
    host: str = "127.0.0.1",
    on_mail: Callable[[Relay], Awaitable[None]] | None = None,
    refuse_content: str | None = None,
    quit_answer: str | None = None,
    content_refusal: str = CONTENT_REFUSAL,
) -> Iterator[Relay]:
    """A relay on ``host`` and a free port: ``security`` none, starttls (STARTTLS required
    before MAIL) or tls (implicit); ``users`` (username -> password) makes AUTH required."""
    port = free_port()
    ca = TestCA.make()
    relay = Relay(host, port, pem(ca.root) if security != "none" else b"")
    options: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        if security != "none":
            key, leaf = ca.leaf(host)
            chain = Path(directory) / "relay.pem"
            chain.write_bytes(pem(leaf, ca.intermediate, key))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(chain)
            if security == "starttls":
                options.update(tls_context=context, require_starttls=True)
            else:
                options.update(ssl_context=context)
        if users is not None:

            def authenticate(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                good = (
                    isinstance(data, LoginPassword)
                    and users.get(data.login.decode()) == data.password.decode()
                )
                if good:
                    relay.logins.append(data.login.decode())
                return AuthResult(success=good, handled=False)

            options.update(authenticator=authenticate, auth_required=True)
        handler = _Handler(relay, refuse, on_mail, refuse_content, quit_answer, content_refusal)
        controller = Controller(handler, hostname=host, port=port, **options)
        controller.start()
        try:
            yield relay
        finally:
            controller.stop()


def configure_plain(app: Appliance, port: int) -> None:
    """Email settings for a plain relay on 127.0.0.1:``port``, to ops@example.com."""
    email_settings.update_settings(
        app,
        host="127.0.0.1",
        port=port,
        security="none",
        from_address="certgate@example.com",
        to_addresses=["ops@example.com"],
    )
