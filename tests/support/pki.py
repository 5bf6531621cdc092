"""The test PKI, built in memory with cryptography: certificates (``issue``), a root and an
intermediate that issue leaves (``TestCA``), a whole chain (``make_chain``), and their PEM and
fingerprints. The openssl CLI's CA, the independent peer, is ``tests.support.openssl.make_ca``."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_key(kind: str = "p256") -> Key:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def issue(
    subject: x509.Name,
    public_key: object,
    issuer: x509.Name,
    issuer_key: Key,
    *,
    ca: bool,
    sans: list[str] | None = None,
    days: int = 365,
    not_before: dt.datetime | None = None,
    serial: int | None = None,
    key_ids: bool = True,
    key_usage: bool = False,
) -> x509.Certificate:
    """A certificate of ``subject`` signed by ``issuer_key``; ``sans`` are DNS names, or IP
    addresses where they parse as one; ``key_ids=False`` leaves out the
    subject and authority key identifiers (issuers then match by name and signature only);
    ``key_usage`` adds the Key Usage (and, for a leaf, serverAuth Extended Key Usage) a public
    CA puts in, which strict verifiers (cryptography's, sslyze's) require."""
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number() if serial is None else serial)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_ids:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
            critical=False,
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=not ca and isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(san) for san in sans]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _general_name(san: str) -> x509.GeneralName:
    """An IP address SAN for an address, a DNS name SAN otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(san))
    except ValueError:
        return x509.DNSName(san)


def pem(*items: x509.Certificate | Key) -> bytes:
    """Certificates and private keys in PEM, in order (keys as unencrypted PKCS#8, as an
    administrator's key file holds them)."""
    out = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            out += item.public_bytes(serialization.Encoding.PEM)
        else:
            out += item.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    return out


def fingerprint(certificate: x509.Certificate | bytes) -> str:
    """SHA-256 of the certificate (or of its DER), lower-case hex: as certgate shows it."""
    der = (
        certificate
        if isinstance(certificate, bytes)
        else certificate.public_bytes(serialization.Encoding.DER)
    )
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class TestCA:
    """A root and an intermediate below it, which issues leaves."""

    __test__ = False  # a fixture's data, not a test class
    root_key: Key
    root: x509.Certificate
    intermediate_key: Key
    intermediate: x509.Certificate

    @classmethod
    def make(
        cls,
        kind: str = "p256",
        root_name: str = "Test Root",
        intermediate_name: str = "Test Intermediate",
        key_usage: bool = False,
    ) -> TestCA:
        root_key = new_key(kind)
        root = issue(
            name(root_name),
            root_key.public_key(),
            name(root_name),
            root_key,
            ca=True,
            key_usage=key_usage,
        )
        intermediate_key = new_key(kind)
        intermediate = issue(
            name(intermediate_name),
            intermediate_key.public_key(),
            root.subject,
            root_key,
            ca=True,
            key_usage=key_usage,
        )
        return cls(root_key, root, intermediate_key, intermediate)

    def leaf(self, host: str, kind: str = "p256", **options: Any) -> tuple[Key, x509.Certificate]:
        """A new key and a server certificate for ``host`` (its common name and only SAN)."""
        key = new_key(kind)
        certificate = issue(
            name(host),
            key.public_key(),
            self.intermediate.subject,
            self.intermediate_key,
            ca=False,
            sans=[host],
            **options,
        )
        return key, certificate


@dataclass(frozen=True)
class ServerFiles:
    """A test server's HTTPS certificate (with its intermediate), its key, and the root a
    client is given to trust it."""

    certificate: Path
    key: Path
    ca_file: Path


def server_files(directory: Path, stem: str, host: str = "127.0.0.1") -> ServerFiles:
    """A new ``TestCA``'s server certificate for ``host``, written as STEM-cert.pem,
    STEM-key.pem and STEM-ca.pem (the root) in ``directory``."""
    ca = TestCA.make()
    key, leaf = ca.leaf(host)
    files = ServerFiles(
        directory / f"{stem}-cert.pem", directory / f"{stem}-key.pem", directory / f"{stem}-ca.pem"
    )
    files.certificate.write_bytes(pem(leaf, ca.intermediate))
    files.key.write_bytes(pem(key))
    files.ca_file.write_bytes(pem(ca.root))
    return files


def baseline_leaf(ca: TestCA, host: str) -> tuple[Key, x509.Certificate]:
    """A leaf shaped as the CA/Browser Forum Baseline Requirements want a public CA's: no
    subject (the SAN is critical then), 90 days, DV policy, AIA with OCSP, serverAuth only."""
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    aia = x509.oid.AuthorityInformationAccessOID
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=True)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.CertificatePolicies(  # 2.23.140.1.2.1: domain validated
                [x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None)]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        aia.CA_ISSUERS, x509.UniformResourceIdentifier("http://ca.example.com/i")
                    ),
                    x509.AccessDescription(
                        aia.OCSP, x509.UniformResourceIdentifier("http://ocsp.example.com")
                    ),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.intermediate_key.public_key()),
            critical=False,
        )
        .sign(ca.intermediate_key, hashes.SHA256())
    )
    return key, certificate


@dataclass
class TestChain:
    __test__ = False  # a fixture's data, not a test class
    root_key: Key
    root: x509.Certificate
    intermediate_key: Key
    intermediate: x509.Certificate
    leaf_key: Key
    leaf: x509.Certificate

    @property
    def chain(self) -> list[x509.Certificate]:
        """The leaf's issuer first, up to the root: the order certgate stores."""
        return [self.intermediate, self.root]


def make_chain(
    host: str = "www.example.com", kind: str = "p256", key_usage: bool = False, days: int = 365
) -> TestChain:
    """Root -> intermediate -> a leaf for ``host``, every key of ``kind`` ("p256" or "rsa");
    ``key_usage`` as a public CA issues them (see ``issue``), ``days`` the leaf's validity."""
    ca = TestCA.make(kind, key_usage=key_usage)
    return issued_chain(ca, host, kind, key_usage=key_usage, days=days)


def issued_chain(ca: TestCA, host: str, kind: str = "p256", **options: Any) -> TestChain:
    """A new leaf of ``ca`` for ``host`` (``options`` as ``TestCA.leaf``), with its chain: a
    renewal under the same root, or certificates under two roots, from two ``TestCA``s."""
    leaf_key, leaf = ca.leaf(host, kind, **options)
    return TestChain(ca.root_key, ca.root, ca.intermediate_key, ca.intermediate, leaf_key, leaf)


def negative_serial_pem(host: str) -> bytes:
    """A PEM certificate for ``host`` whose serial number is -1: cryptography reads it with a
    warning (its signature no longer verifies, which does not matter for that)."""
    key = new_key()
    certificate = issue(name(host), key.public_key(), name(host), key, ca=False, serial=1)
    version_and_serial = b"\xa0\x03\x02\x01\x02\x02\x01"  # [0] v3, INTEGER of one octet
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert der.count(version_and_serial + b"\x01") == 1
    der = der.replace(version_and_serial + b"\x01", version_and_serial + b"\xff")
    body = base64.encodebytes(der)
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"
