"""The TLS profile as clients meet it: ALPN, key-exchange groups, whose cipher preference
wins, and TLS 1.3 session tickets that resume in any process holding the same secret. The
openssl CLI is the client where it must offer exactly one thing."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from certgate.tls import TlsPolicy
from certgate.tls.policy import TICKET_LIFETIME
from certgate.tls.tickets import ticket_keys
from tests.integration._tls_helpers import Pki, ServerThread, make_pki, plan
from tests.support.net import free_port
from tests.support.openssl import s_client
from tests.support.served import client_context

A = "127.0.0.2"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), {"ecdsa.test": "p256"})


@pytest.fixture
def port(pki: Pki) -> Iterator[int]:
    running = ServerThread(ticket_secret=b"s" * 32)
    chosen = free_port()
    running.apply(plan(chosen, {A: pki["ecdsa.test"].served}))
    yield chosen
    running.close()


def test_alpn_selects_http_1_1_and_refuses_a_client_offering_only_others(port: int) -> None:
    chosen = s_client(A, port, "-alpn", "h2,http/1.1")
    assert "ALPN protocol: http/1.1" in chosen.stdout
    refused = s_client(A, port, "-alpn", "h2")
    assert refused.returncode != 0
    assert "no application protocol" in refused.stdout
    silent = s_client(A, port)  # a client without ALPN is served as before
    assert silent.returncode == 0
    assert "No ALPN negotiated" in silent.stdout


@pytest.mark.parametrize("group", ["X25519", "P-256", "P-384"])
def test_the_default_groups_are_mozillas(port: int, group: str) -> None:
    accepted = s_client(A, port, "-groups", group)
    assert accepted.returncode == 0, accepted.stdout


@pytest.mark.parametrize("group", ["X448", "P-521"])
def test_other_groups_are_refused_unless_set(pki: Pki, group: str) -> None:
    running = ServerThread()
    try:
        chosen = free_port()
        running.apply(plan(chosen, {A: pki["ecdsa.test"].served}))
        refused = s_client(A, chosen, "-groups", group)
        assert refused.returncode != 0
        assert "handshake failure" in refused.stdout
        running.apply(plan(chosen, {A: pki["ecdsa.test"].served}, TlsPolicy(groups=group)))
        assert s_client(A, chosen, "-groups", group).returncode == 0
    finally:
        running.close()


def test_the_clients_cipher_preference_is_honoured(port: int) -> None:
    for first, second in (
        ("ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-GCM-SHA256"),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"),
    ):
        out = s_client(A, port, "-tls1_2", "-cipher", f"{first}:{second}").stdout
        assert f"Cipher is {first}" in out
    for first, second in (
        ("TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"),
        ("TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"),
    ):
        out = s_client(A, port, "-tls1_3", "-ciphersuites", f"{first}:{second}").stdout
        assert f"Cipher is {first}" in out


def _connect(
    port: int, context: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[ssl.SSLSession | None, bool]:
    """One connection that exchanges data (so that TLS 1.3 tickets arrive); returns its
    session and whether it resumed the one given."""
    with (
        socket.create_connection((A, port), timeout=10) as raw,
        context.wrap_socket(raw, session=session) as tls,
    ):
        tls.sendall(b"ping")
        assert tls.recv(10) == b"ping"
        return tls.session, tls.session_reused


def test_tls_1_3_sessions_resume_with_a_ticket(port: int, pki: Pki) -> None:
    context = client_context(pki.root_pem)
    session, reused = _connect(port, context)
    assert not reused
    assert session is not None and session.has_ticket
    for _ in range(3):
        _, reused = _connect(port, context, session)
        assert reused


def test_a_ticket_resumes_in_another_server_with_the_same_secret_only(port: int, pki: Pki) -> None:
    """What ``serve --workers N`` relies on: each worker derives the same keys."""
    context = client_context(pki.root_pem)
    session, _ = _connect(port, context)
    for secret, resumes in ((b"s" * 32, True), (b"t" * 32, False)):
        other = ServerThread(ticket_secret=secret)
        try:
            other_port = free_port()
            other.apply(plan(other_port, {A: pki["ecdsa.test"].served}))
            _, reused = _connect(other_port, context, session)
            assert reused == resumes  # an unknown ticket: a full handshake, served all the same
        finally:
            other.close()


def test_tls_1_2_gets_no_ticket_and_resumes_by_session_id(port: int, pki: Pki) -> None:
    """A TLS 1.2 ticket would carry the session's master secret under a long-lived key; the
    server's session cache resumes it instead."""
    context = client_context(pki.root_pem)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    session, _ = _connect(port, context)
    assert session is not None and not session.has_ticket and session.id
    _, reused = _connect(port, context, session)
    assert reused


def test_ticket_keys_rotate_and_the_previous_key_is_still_accepted() -> None:
    secret = b"k" * 32
    now = 1_800_000_000.0
    current = ticket_keys(secret, now)
    later = ticket_keys(secret, now + TICKET_LIFETIME)
    assert later[0] != current[0]  # a new key encrypts
    assert later[1] == current[0]  # the one before still decrypts
    assert ticket_keys(secret, now + 1) == current  # the same all through a period
    assert ticket_keys(b"j" * 32, now)[0] != current[0]
