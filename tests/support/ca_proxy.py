"""A test peer in front of Pebble for what Debian's Pebble 2.4 does not do: offer ACME
Renewal Information (RFC 9773), and refuse IP identifiers (RFC 8738) as many CAs do.

An HTTPS reverse proxy (its own certificate, from a ``TestCA`` whose root is ``ca_file``):
each request goes to Pebble as it came (method, path, headers with the client's ``Host``,
body) and each answer comes back as Pebble sent it (status, headers, body), so nonces and
signed requests pass untouched. Pebble writes its URLs from the ``Host`` it is sent, so every
URL the client follows (and signs) is the proxy's. Only these are the proxy's own:

- the directory (``GET /dir``) gains ``renewalInfo`` while ``window`` is set;
- ``GET /renewal-info/CERT-ID`` answers ``windows[CERT-ID]``, else ``window``
  (``suggestedWindow``), with ``Retry-After: retry_after``, and records CERT-ID in
  ``renewal_info_asked`` (when, on the monotonic clock, in ``renewal_info_times``); with
  ``renewal_info_broken``, a 500;
- each ``newOrder`` payload (the JWS payload is base64url JSON, readable without the key) is
  recorded in ``new_orders`` (once, though Pebble's ``badNonce`` has it sent again); with
  ``refuse_ip``, an order naming an IP address is refused with a ``rejectedIdentifier``
  problem document, as a CA that issues for DNS names only; with ``refuse_replaces`` (a
  status and a problem type), an order naming the certificate it ``replaces`` (RFC 9773 5)
  is refused so: ``alreadyReplaced`` when another order replaced that certificate already,
  ``unauthorized`` (Boulder's answer) when another account ordered it; ``on_new_order`` is
  called with the payload first (what a test does meanwhile); with ``processing``, an order
  Pebble issued is answered as still ``processing`` (RFC 8555 7.1.6), its certificate unsaid;
  with ``garbled_new_order``, Pebble's answer to ``newOrder`` has that body instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.pebble import Pebble
from tests.support.pki import server_files

RENEWAL_INFO = "/renewal-info/"
REJECTED_IDENTIFIER = "urn:ietf:params:acme:error:rejectedIdentifier"
ALREADY_REPLACED = "urn:ietf:params:acme:error:alreadyReplaced"
UNAUTHORIZED = "urn:ietf:params:acme:error:unauthorized"
#: Where Pebble answers an order, and its finalization, with the order's document.
ORDER_PATHS = ("/my-order/", "/finalize-order/")
#: Headers of one hop (RFC 9110 7.6.1): not passed on; the proxy frames each body itself.
_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


def jws_payload(body: bytes) -> dict[str, Any]:
    """The payload of a flattened JWS (RFC 7515 7.2.2) as JSON; {} for POST-as-GET."""
    encoded = str(json.loads(body)["payload"])
    if not encoded:
        return {}
    return dict(json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))))


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CaProxy:
    directory_url: str
    ca_file: Path  # the root of the proxy's HTTPS certificate
    pebble: Pebble
    #: the suggested renewal window of every certificate; None: no renewalInfo offered
    window: tuple[dt.datetime, dt.datetime] | None = None
    #: the window of one certificate (by its RFC 9773 id), in place of ``window``
    windows: dict[str, tuple[dt.datetime, dt.datetime]] = field(default_factory=dict)
    retry_after: int = 21600
    refuse_ip: bool = False
    refuse_replaces: tuple[int, str] | None = None
    #: renewal information asked for is answered 500, as by a CA that cannot say now
    renewal_info_broken: bool = False
    renewal_info_asked: list[str] = field(default_factory=list)
    renewal_info_times: list[float] = field(default_factory=list)
    new_orders: list[dict[str, Any]] = field(default_factory=list)
    #: orders Pebble has issued are answered as still ``processing`` (a CA slow to issue)
    processing: bool = False
    #: called with each ``newOrder`` payload before it goes to Pebble (on the proxy's thread)
    on_new_order: Callable[[dict[str, Any]], None] | None = None
    #: the body of Pebble's answer to ``newOrder`` replaced by this (a CA answering nonsense)
    garbled_new_order: bytes | None = None

    def root_pem(self) -> bytes:
        """The root of the certificates Pebble issues."""
        return self.pebble.root_pem()

    def log_text(self) -> str:
        return self.pebble.log_text()


def _handler(proxy: CaProxy, upstream: tuple[str, int], context: ssl.SSLContext) -> type:
    paths = _pebble_paths(proxy.pebble, context)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # Pebble's log says what was asked

        def do_GET(self) -> None:
            if self.path.startswith(RENEWAL_INFO) and proxy.window is not None:
                self._renewal_info(self.path[len(RENEWAL_INFO) :])
                return
            status, headers, body = self._forward(b"")
            if self.path == paths["directory"] and proxy.window is not None and status == 200:
                directory = json.loads(body)
                directory["renewalInfo"] = f"https://{self.headers['Host']}{RENEWAL_INFO[:-1]}"
                body = json.dumps(directory, indent=2).encode()
            self._answer(status, headers, body)

        def do_HEAD(self) -> None:
            status, headers, _ = self._forward(b"")
            self._answer(status, headers, b"", head=True)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == paths["newOrder"]:
                payload = jws_payload(body)
                proxy.new_orders.append(payload)
                if proxy.on_new_order is not None:
                    proxy.on_new_order(payload)
                addresses = [
                    entry["value"]
                    for entry in payload.get("identifiers", [])
                    if entry.get("type") == "ip"
                ]
                if proxy.refuse_ip and addresses:
                    self._refuse(
                        400,
                        REJECTED_IDENTIFIER,
                        f"Cannot issue for {', '.join(addresses)}: IP addresses are not "
                        "supported by this CA",
                    )
                    return
                if proxy.refuse_replaces and "replaces" in payload:
                    status, kind = proxy.refuse_replaces
                    self._refuse(status, kind, f"Will not replace {payload['replaces']}")
                    return
            answer = self._forward(body)
            if proxy.processing and self.path.startswith(ORDER_PATHS):
                status, headers, data = answer
                order = json.loads(data)
                if order.get("status") == "valid":
                    order["status"] = "processing"
                    order.pop("certificate", None)
                    answer = status, headers, json.dumps(order).encode()
            if self.path == paths["newOrder"] and b"badNonce" in answer[2]:
                proxy.new_orders.pop()  # sent again with a fresh nonce: one order
            elif self.path == paths["newOrder"] and proxy.garbled_new_order is not None:
                answer = answer[0], answer[1], proxy.garbled_new_order
            self._answer(*answer)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPSConnection(*upstream, context=context, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if body or self.command == "POST":
                    headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body or None, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                return answer.status, answer.getheaders(), data
            finally:
                connection.close()

        def _answer(
            self, status: int, headers: list[tuple[str, str]], body: bytes, head: bool = False
        ) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP:
                    self.send_header(name, value)
            if not head:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _renewal_info(self, certificate_id: str) -> None:
            assert proxy.window is not None
            proxy.renewal_info_times.append(time.monotonic())
            proxy.renewal_info_asked.append(certificate_id)
            if proxy.renewal_info_broken:
                self._answer(500, [("Content-Type", "text/plain")], b"renewal info unavailable")
                return
            start, end = proxy.windows.get(certificate_id, proxy.window)
            document = {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}
            headers = [
                ("Content-Type", "application/json"),
                ("Retry-After", str(proxy.retry_after)),
            ]
            self._answer(200, headers, json.dumps(document).encode())

        def _refuse(self, status: int, kind: str, detail: str) -> None:
            """A problem document, with a fresh nonce from Pebble as a CA's refusal has."""
            document = {"type": kind, "detail": detail, "status": status}
            _, nonce_headers, _ = _request(upstream, context, "HEAD", paths["newNonce"])
            headers = [(k, v) for k, v in nonce_headers if k.lower() == "replay-nonce"]
            headers.append(("Content-Type", "application/problem+json"))
            self._answer(status, headers, json.dumps(document).encode())

    return Handler


def _request(
    upstream: tuple[str, int], context: ssl.SSLContext, method: str, path: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    connection = http.client.HTTPSConnection(*upstream, context=context, timeout=30)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return answer.status, answer.getheaders(), answer.read()
    finally:
        connection.close()


def _pebble_paths(pebble: Pebble, context: ssl.SSLContext) -> dict[str, str]:
    """The directory's path and those of the resources it names, as Pebble serves them."""
    where = urlsplit(pebble.directory_url)
    upstream = (where.hostname or "127.0.0.1", where.port or 443)
    _, _, body = _request(upstream, context, "GET", where.path)
    paths = {
        name: urlsplit(url).path for name, url in json.loads(body).items() if isinstance(url, str)
    }
    return {**paths, "directory": where.path}


@contextmanager
def running_ca_proxy(directory: Path, pebble: Pebble) -> Iterator[CaProxy]:
    """The proxy on a free port of 127.0.0.1, in front of ``pebble``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = server_files(directory, "proxy")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(files.certificate, files.key)
    upstream_context = ssl.create_default_context(cafile=str(pebble.ca_file))
    where = urlsplit(pebble.directory_url)
    upstream = (where.hostname or "127.0.0.1", where.port or 443)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    port = int(server.server_address[1])
    proxy = CaProxy(f"https://127.0.0.1:{port}{where.path}", files.ca_file, pebble)
    server.RequestHandlerClass = _handler(proxy, upstream, upstream_context)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="ca-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
