"""The openssl CLI as an independent peer: the CA that signs certgate's requests, the tool that
made the files administrators bring (PKCS#12, PKCS#7, CRLs), and the reader of what certgate
exports. Nothing here uses certgate; a disagreement between the two is a finding.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class OpensslFailed(AssertionError):
    """openssl exited non-zero: the file it was given is not what it should be."""


def openssl(
    *args: str | Path, cwd: Path | None = None, stdin: bytes | None = None, stderr: bool = False
) -> str:
    """Run ``openssl``; return stdout as text (and stderr after it, where some commands such
    as ``pkcs12 -info`` write what they found), or fail with its stderr."""
    done = subprocess.run(
        [OPENSSL, *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise OpensslFailed(
            f"openssl {' '.join(map(str, args))} exited {done.returncode}:\n"
            + done.stderr.decode(errors="replace")
        )
    output = done.stdout + (done.stderr if stderr else b"")
    return output.decode(errors="replace")


def s_client(
    address: str, port: int, *args: str | Path, inside: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``openssl s_client`` to ``address:port``, sending nothing; stdout and stderr merged.
    ``inside``: the command that runs it elsewhere (``netns.NetworkNamespace.command()``)."""
    host = f"[{address}]" if ":" in address else address
    command = [OPENSSL, "s_client", "-connect", f"{host}:{port}", "-servername", "x"]
    return subprocess.run(
        [*inside, *command, *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=20,
        check=False,
    )


def served_chain(address: str, port: int) -> list[bytes]:
    """Every certificate the listener sends (PEM, leaf first), as ``s_client -showcerts``
    sees it."""
    done = s_client(address, port, "-showcerts")
    assert done.returncode == 0, done.stdout
    return _PEM.findall(done.stdout.encode())


def pem_subjects(pems: Sequence[bytes]) -> list[str]:
    """The subject of each PEM certificate, as ``openssl x509 -subject`` prints it."""
    return [
        openssl("x509", "-noout", "-subject", stdin=pem).strip().removeprefix("subject=").strip()
        for pem in pems
    ]


def fingerprint(certificate: Path, *, der: bool = False) -> str:
    """SHA-256 fingerprint as certgate prints it: lower-case hex, no colons."""
    out = openssl(
        "x509", "-in", certificate, "-inform", "DER" if der else "PEM", "-noout",
        "-fingerprint", "-sha256",
    )  # fmt: skip
    return out.strip().split("=", 1)[1].replace(":", "").lower()


def subjects(pem_text: str) -> list[str]:
    """The ``subject=`` lines of ``openssl ... -print_certs`` output, in file order."""
    lines = pem_text.splitlines()
    return [line.split("=", 1)[1].strip() for line in lines if line.startswith("subject=")]


def request_sans(request: Path) -> list[str]:
    """The request's subjectAltName entries in openssl's own notation (``DNS:a.example``)."""
    text = openssl("req", "-in", request, "-noout", "-text")
    match = re.search(r"X509v3 Subject Alternative Name:.*?\n\s*(.+)\n", text)
    if match is None:
        return []
    return [entry.strip().replace("IP Address:", "IP:") for entry in match.group(1).split(",")]


def to_der(pem: Path, out: Path, kind: str = "x509") -> Path:
    openssl(kind, "-in", pem, "-outform", "DER", "-out", out)
    return out


def pkcs12(
    out: Path,
    certificate: Path,
    key: Path,
    chain: Sequence[Path] = (),
    *,
    password: str,
    legacy: bool = False,
    name: str | None = None,
) -> Path:
    """A PKCS#12 file as OpenSSL 3 writes it (AES-256, SHA-256 MAC) or as ``-legacy`` (RC2-40)."""
    args: list[str | Path] = [
        "pkcs12", "-export", "-in", certificate, "-inkey", key, "-out", out,
        "-passout", f"pass:{password}",
    ]  # fmt: skip
    if chain:
        bundle = out.with_suffix(".chain.pem")
        bundle.write_text("".join(path.read_text() for path in chain))
        args += ["-certfile", bundle]
    if legacy:
        args.append("-legacy")
    if name:
        args += ["-name", name]
    openssl(*args)
    return out


def pkcs7(out: Path, certificates: Sequence[Path], *, der: bool) -> Path:
    """``openssl crl2pkcs7 -nocrl``: the .p7b a CA sends with the whole chain."""
    form = "DER" if der else "PEM"
    args: list[str | Path] = ["crl2pkcs7", "-nocrl", "-out", out, "-outform", form]
    for certificate in certificates:
        args += ["-certfile", certificate]
    openssl(*args)
    return out


_CA_EXTENSIONS = """\
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_CA_CONFIG = """\
[ca]
default_ca = local
[local]
database = {directory}/index.txt
crlnumber = {directory}/crlnumber
default_md = sha256
default_crl_days = 30
"""


@dataclass(frozen=True)
class OpensslCA:
    """A root and an intermediate made by ``openssl req -x509`` and ``openssl x509 -req``."""

    directory: Path
    root: Path
    root_key: Path
    intermediate: Path
    intermediate_key: Path

    def sign(self, request: Path, out: Path, *, days: int = 200) -> Path:
        """Sign a request with the intermediate, copying its SANs the way a CA's form does."""
        extensions = _LEAF_EXTENSIONS
        sans = request_sans(request)
        if sans:
            extensions += f"subjectAltName = {', '.join(sans)}\n"
        extfile = out.with_suffix(".ext")
        extfile.write_text(extensions)
        openssl(
            "x509", "-req", "-in", request, "-CA", self.intermediate, "-CAkey",
            self.intermediate_key, "-set_serial", _serial(out), "-days", str(days),
            "-sha256", "-extfile", extfile, "-out", out,
        )  # fmt: skip
        return out

    def issue(self, common_name: str, sans: Sequence[str], stem: Path) -> tuple[Path, Path]:
        """A leaf and its RSA key made outside certgate (a certificate moved from IIS...)."""
        key, request = stem.with_suffix(".key"), stem.with_suffix(".csr")
        openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request,
            "-subj", f"/CN={common_name}",
            *(["-addext", "subjectAltName=" + ",".join(f"DNS:{s}" for s in sans)] if sans else []),
        )  # fmt: skip
        return self.sign(request, stem.with_suffix(".pem")), key

    def crl(self, out: Path, *, der: bool = False) -> Path:
        """An empty CRL of the root, the file a CA's download page also offers."""
        (self.directory / "index.txt").touch()
        (self.directory / "crlnumber").write_text("1000\n")
        config = self.directory / "ca.cnf"
        config.write_text(_CA_CONFIG.format(directory=self.directory))
        pem = out.with_suffix(".crl.pem")
        openssl(
            "ca", "-config", config, "-gencrl", "-keyfile", self.root_key, "-cert", self.root,
            "-out", pem,
        )  # fmt: skip
        if der:
            openssl("crl", "-in", pem, "-outform", "DER", "-out", out)
        else:
            shutil.copyfile(pem, out)
        return out


def make_ca(directory: Path, name: str = "Interop") -> OpensslCA:
    """Root (self-signed, RSA-2048) and intermediate (RSA-2048) made by the openssl CLI."""
    directory.mkdir(parents=True, exist_ok=True)
    root, root_key = directory / "root.pem", directory / "root.key"
    intermediate, intermediate_key = directory / "intermediate.pem", directory / "intermediate.key"
    extfile = directory / "ca.ext"
    extfile.write_text(_CA_EXTENSIONS)
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", root_key, "-out", root,
        "-subj", f"/C=US/O={name} Security/CN={name} Root CA", "-days", "3650", "-sha256",
        "-addext", "basicConstraints=critical,CA:true",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    request = directory / "intermediate.csr"
    openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", intermediate_key,
        "-out", request, "-subj", f"/C=US/O={name} Security/CN={name} Issuing CA",
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", request, "-CA", root, "-CAkey", root_key, "-set_serial", "4096",
        "-days", "1825", "-sha256", "-extfile", extfile, "-out", intermediate,
    )  # fmt: skip
    return OpensslCA(directory, root, root_key, intermediate, intermediate_key)


def _serial(out: Path) -> str:
    """A serial unique enough for one test CA (openssl's -CAcreateserial writes beside the CA)."""
    return str(abs(hash(out)) % (2**62) + 1)
