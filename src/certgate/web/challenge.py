"""What the plain HTTP listeners answer (``tls/plain.py``): ACME http-01 challenges from the
store, and a 308 redirect to the HTTPS port for everything else (the method and body kept).

A plain ASGI app, no framework: two answers, nothing to route. The key authorization is
read from the store on a thread (``store/acme.key_authorization``), so whichever process
placed the order, any worker of any node answers it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Callable

from starlette.types import Receive, Scope, Send

from certgate.errors import StoreUnavailableError
from certgate.service.appliance import Appliance
from certgate.store import acme as queries

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
#: A token is base64url (RFC 8555 8.3), at least 128 bits of it.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")
_CLOSE = (b"connection", b"close")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class ChallengeApp:
    def __init__(self, appliance: Appliance, https_port: Callable[[], int]) -> None:
        self.appliance = appliance
        self.https_port = https_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(CHALLENGE_PREFIX) and scope["method"] in ("GET", "HEAD"):
            token = path[len(CHALLENGE_PREFIX) :]
            answer = None
            if _TOKEN.fullmatch(token):
                try:
                    answer = await asyncio.to_thread(self._key_authorization, token)
                except StoreUnavailableError:  # the CA asks again later; the log says why
                    await _respond(send, 503, b"store unavailable\n", [_CLOSE])
                    return
            if answer is None:
                await _respond(send, 404, b"no such challenge\n", [_CLOSE])
            else:
                await _respond(send, 200, answer.encode())
            return
        # Closed after the answer: the client goes on over HTTPS, and a request body it is
        # still sending (unread: there is nothing to do with it) ends with the connection.
        location = (b"location", self._location(scope).encode())
        await _respond(send, 308, b"", [location, _CLOSE])

    def _key_authorization(self, token: str) -> str | None:
        with self.appliance.store.reading() as repository:
            return queries.key_authorization(repository, token)

    def _location(self, scope: Scope) -> str:
        """The same host (as the client named it, when it is a name or an address), the
        HTTPS port, the same path and query."""
        host = _host(scope)
        port = self.https_port()
        where = host if port == 443 else f"{host}:{port}"
        target = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        text = target.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        return f"https://{where}{text}"


def _host(scope: Scope) -> str:
    """The Host header without its port when it is a DNS name or an IP address, else the
    address the client connected to."""
    for name, value in scope["headers"]:
        if name == b"host":
            text = value.decode("latin-1")
            bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::[0-9]{1,5})?", text)
            if bracketed:
                try:
                    return f"[{ipaddress.IPv6Address(bracketed.group(1))}]"
                except ValueError:
                    break
            host = re.sub(r":[0-9]{1,5}\Z", "", text)
            if _HOST_NAME.fullmatch(host):
                return host
            break
    server = scope.get("server") or ("localhost", 0)
    address = str(server[0])
    return f"[{address}]" if ":" in address else address


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
