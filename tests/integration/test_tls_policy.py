"""The SSL configuration as clients meet it: which TLS versions and ciphers are refused, and
that a changed policy holds from the next handshake on. The openssl CLI is the client, since
it can be told to offer exactly one version or one cipher."""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from certgate.errors import ValidationError
from certgate.tls import TlsPolicy
from tests.integration._tls_helpers import (
    Pki,
    ServerThread,
    make_pki,
    plan,
)
from tests.support.net import free_port
from tests.support.openssl import s_client
from tests.support.served import client_context, handshake

A = "127.0.0.2"
LEGACY = "DEFAULT:@SECLEVEL=0"  # lets the openssl client itself offer TLS 1.0/1.1 and CBC


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), {"ecdsa.test": "p256", "rsa.test": "rsa"})


@pytest.fixture
def server() -> Iterator[ServerThread]:
    running = ServerThread()
    yield running
    running.close()


def _negotiated(out: str) -> str | None:
    """The protocol of the session openssl s_client established, or None if it got none."""
    new = re.search(r"^New, (\S+), Cipher is (\S+)", out, re.MULTILINE)
    if new is None or new.group(2) == "(NONE)":
        return None
    # "New, X" names the cipher's version; the session block (absent for TLS 1.3 without
    # tickets) names the protocol.
    session = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.MULTILINE)
    return session.group(1) if session else new.group(1).rstrip(",")


def test_tls_1_0_and_1_1_are_refused(server: ServerThread, pki: Pki) -> None:
    port = free_port()
    server.apply(plan(port, {A: pki["ecdsa.test"].served}))
    for version in ("-tls1", "-tls1_1"):
        refused = s_client(A, port, version, "-cipher", LEGACY)
        assert refused.returncode != 0
        assert _negotiated(refused.stdout) is None, refused.stdout
    # Control: the same client gets through with TLS 1.2, so the refusal was the server's.
    assert _negotiated(s_client(A, port, "-tls1_2", "-cipher", LEGACY).stdout) == "TLSv1.2"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_1_0_and_1_1_cannot_be_chosen(version: ssl.TLSVersion) -> None:
    """OpenSSL 3 negotiates them only at security level 0, which is refused."""
    with pytest.raises(ValidationError, match=r"cannot be chosen: use TLS 1\.2 or 1\.3"):
        TlsPolicy(minimum_version=version)


@pytest.mark.parametrize(
    ("leaf", "cipher"),
    [
        ("ecdsa.test", "ECDHE-ECDSA-AES128-SHA256"),  # CBC, not AEAD
        ("rsa.test", "AES128-GCM-SHA256"),  # RSA key exchange, no forward secrecy
        ("rsa.test", "DHE-RSA-AES128-GCM-SHA256"),  # finite-field DHE
    ],
)
def test_a_tls_1_2_cipher_outside_the_list_is_refused(
    server: ServerThread, pki: Pki, leaf: str, cipher: str
) -> None:
    port = free_port()
    server.apply(plan(port, {A: pki[leaf].served}))
    refused = s_client(A, port, "-tls1_2", "-cipher", cipher)
    assert refused.returncode != 0
    assert _negotiated(refused.stdout) is None, refused.stdout
    allowed = (
        "ECDHE-ECDSA-AES128-GCM-SHA256" if leaf == "ecdsa.test" else "ECDHE-RSA-CHACHA20-POLY1305"
    )
    accepted = s_client(A, port, "-tls1_2", "-cipher", allowed)
    assert _negotiated(accepted.stdout) == "TLSv1.2", accepted.stdout
    assert f"Cipher is {allowed}" in accepted.stdout


def test_a_changed_cipher_list_holds_on_the_next_handshake(server: ServerThread, pki: Pki) -> None:
    port = free_port()
    leaf = pki["ecdsa.test"].served
    chacha = "ECDHE-ECDSA-CHACHA20-POLY1305"
    server.apply(plan(port, {A: leaf}))
    assert _negotiated(s_client(A, port, "-tls1_2", "-cipher", chacha).stdout) == "TLSv1.2"
    server.apply(plan(port, {A: leaf}, TlsPolicy(tls12_ciphers="ECDHE+AESGCM")))
    assert _negotiated(s_client(A, port, "-tls1_2", "-cipher", chacha).stdout) is None


def test_raising_the_minimum_to_tls_1_3_refuses_tls_1_2_on_the_next_handshake(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    leaf = pki["ecdsa.test"].served
    server.apply(plan(port, {A: leaf}))
    assert _negotiated(s_client(A, port, "-tls1_2").stdout) == "TLSv1.2"

    tls13_only = TlsPolicy(minimum_version=ssl.TLSVersion.TLSv1_3)
    statuses = server.apply(plan(port, {A: leaf}, tls13_only))
    assert statuses[0].state == "listening"
    refused = s_client(A, port, "-tls1_2")
    assert refused.returncode != 0
    assert _negotiated(refused.stdout) is None, refused.stdout
    assert _negotiated(s_client(A, port, "-tls1_3").stdout) == "TLSv1.3"

    server.apply(plan(port, {A: leaf}))  # and back
    assert _negotiated(s_client(A, port, "-tls1_2").stdout) == "TLSv1.2"


def test_lowering_the_maximum_to_tls_1_2_refuses_tls_1_3_only_clients(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    leaf = pki["ecdsa.test"].served
    server.apply(plan(port, {A: leaf}, TlsPolicy(maximum_version=ssl.TLSVersion.TLSv1_2)))
    assert _negotiated(s_client(A, port, "-tls1_3").stdout) is None
    assert handshake(A, port, client_context(pki.root_pem)).version == "TLSv1.2"


def test_a_connection_established_before_a_policy_change_goes_on(
    server: ServerThread, pki: Pki
) -> None:
    port = free_port()
    leaf = pki["ecdsa.test"].served
    server.apply(plan(port, {A: leaf}))
    context = client_context(pki.root_pem)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((A, port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        server.apply(plan(port, {A: leaf}, TlsPolicy(minimum_version=ssl.TLSVersion.TLSv1_3)))
        tls.sendall(b"ping")
        assert tls.recv(10) == b"ping"


def test_policies_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValidationError, match="minimum version"):
        TlsPolicy(minimum_version=ssl.TLSVersion.TLSv1_3, maximum_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ValidationError, match=r"TLS 1\.2 ciphers"):
        TlsPolicy(tls12_ciphers="NOTHING-KNOWN")
    with pytest.raises(ValidationError, match="cannot be chosen"):
        TlsPolicy(minimum_version=ssl.TLSVersion.MINIMUM_SUPPORTED)
    with pytest.raises(ValidationError, match="groups: 'X25519:X9' selects no group"):
        TlsPolicy(groups="X25519:X9")
    TlsPolicy(tls12_ciphers="HIGH:!aNULL")  # what the refusal advises is accepted


@pytest.mark.parametrize(
    ("ciphers", "reason"),
    [
        ("NULL:@SECLEVEL=0", "lowers OpenSSL's security level to 0"),
        ("ECDHE+AESGCM:@SECLEVEL=1", "lowers OpenSSL's security level to 1"),
        ("eNULL", r"enables ECDHE-ECDSA-NULL-SHA, which does not encrypt \(add !eNULL\)"),
        (
            "aNULL",
            r"enables ADH-AES256-GCM-SHA384, which does not authenticate the server \(add !aNULL\)",
        ),
        ("HIGH", r"enables ADH-.*, which does not authenticate the server"),
    ],
)
def test_cipher_strings_that_weaken_tls_are_refused_with_the_reason(
    ciphers: str, reason: str
) -> None:
    """Checked on a context built by the OpenSSL that serves: what it would negotiate."""
    with pytest.raises(ValidationError, match=rf"TLS 1\.2 ciphers: {reason}"):
        TlsPolicy(tls12_ciphers=ciphers)


def test_openssl_fact_a_context_swapped_in_sni_callback_does_not_bring_its_versions(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Why a change gives the listener a new server with the whole new context instead of an
    ``sni_callback`` swapping ``ssl_object.context``: OpenSSL takes the version range from the
    context the connection was created with. If this ever fails, OpenSSL changed."""
    directory = tmp_path_factory.mktemp("fact")
    (directory / "chain.pem").write_bytes(pki["ecdsa.test"].served.chain_pem)
    (directory / "key.pem").write_bytes(pki["ecdsa.test"].served.key_pem)  # test key only
    tls13_only = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls13_only.minimum_version = ssl.TLSVersion.TLSv1_3
    tls13_only.load_cert_chain(directory / "chain.pem", directory / "key.pem")
    holder = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    def swap(ssl_object: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        ssl_object.context = tls13_only

    holder.sni_callback = swap
    negotiated: list[str | None] = []
    with socket.create_server((A, 0)) as listening:

        def serve() -> None:
            connection, _ = listening.accept()
            with holder.wrap_socket(connection, server_side=True) as tls:
                negotiated.append(tls.version())

        thread = threading.Thread(target=serve)
        thread.start()
        client = ssl.create_default_context(cafile=str(pki.root_pem))
        client.check_hostname = False
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        with (
            socket.create_connection(listening.getsockname()) as raw,
            client.wrap_socket(raw) as tls,
        ):
            assert tls.version() == "TLSv1.2"
        thread.join(10)
    assert negotiated == ["TLSv1.2"]  # the swapped-in context's minimum was not enforced
