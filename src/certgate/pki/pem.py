"""Find the PEM blocks in a text file, whatever surrounds them.

CAs and admins send PEM with explanatory text around the blocks (``openssl x509 -text``),
Windows line endings, a byte-order mark, or as UTF-16 saved by Notepad. This module only frames
the blocks and decodes their base64; what a block means is the loader's concern.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from certgate.errors import CorruptDataError

# RFC 7468 labels: printable ASCII except '-'.
_MARKER = re.compile(rb"-----(BEGIN|END) ([\x20-\x2c\x2e-\x7e]*)-----")
_PLAIN_BEGIN = (b"BEGIN", b"CERTIFICATE")
_PLAIN_END = (b"END", b"CERTIFICATE")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class PemBlock:
    """One ``-----BEGIN label-----`` ... ``-----END label-----`` block."""

    label: str
    headers: tuple[tuple[str, str], ...] = ()  # RFC 1421 headers, e.g. Proc-Type, DEK-Info
    body: bytes = b""  # the base64 text
    defect: str | None = None  # why the framing is broken (cut short...), None when intact

    @property
    def encrypted(self) -> bool:
        """True for OpenSSL's traditional encrypted keys (``Proc-Type: 4,ENCRYPTED``)."""
        return any(
            name.lower() == "proc-type" and "ENCRYPTED" in value.upper()
            for name, value in self.headers
        )

    def der(self) -> bytes:
        """The decoded body; broken base64 means the file was damaged in transit."""
        try:
            return base64.b64decode(b"".join(self.body.split()), validate=True)
        except binascii.Error as exc:
            raise CorruptDataError(
                f"the PEM block '{self.label}' is damaged: its base64 text is invalid ({exc})"
            ) from exc

    def to_pem(self) -> bytes:
        """A clean copy of the block for cryptography's PEM reader (encrypted keys need it)."""
        encoded = base64.b64encode(self.der())
        lines = [f"-----BEGIN {self.label}-----".encode()]
        lines += [f"{name}: {value}".encode() for name, value in self.headers]
        lines += [b""] if self.headers else []
        lines += [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
        lines.append(f"-----END {self.label}-----".encode())
        return b"\n".join(lines) + b"\n"


def as_text(data: bytes) -> bytes:
    """The file as ASCII-compatible bytes: UTF-16 decoded, UTF-8 byte-order mark dropped."""
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16").encode("utf-8", "replace")
        except UnicodeDecodeError:
            return data
    return data.removeprefix(_UTF8_BOM)


def has_markers(data: bytes) -> bool:
    """True if the file contains any PEM BEGIN or END line."""
    return _MARKER.search(as_text(data)) is not None


def plain_certificate_count(text: bytes) -> int:
    """How many blocks ``text`` holds when every one is a ``CERTIFICATE`` block, else 0.

    Such a file (a CA bundle) can be read by one cryptography call instead of block by block.
    """
    markers = _MARKER.findall(text)
    count = len(markers) // 2
    return count if markers == [_PLAIN_BEGIN, _PLAIN_END] * count else 0


def certificate_chunks(text: bytes, size: int) -> list[bytes]:
    """A text of only CERTIFICATE blocks (see :func:`plain_certificate_count`) cut after
    every ``size`` blocks, so that each piece is parsed by one call of its own."""
    chunks: list[bytes] = []
    start = position = count = 0
    end = b"-----END CERTIFICATE-----"
    while (found := text.find(end, position)) >= 0:
        position, count = found + len(end), count + 1
        if count % size == 0:
            chunks.append(text[start:position])
            start = position
    if count % size:
        chunks.append(text[start:])
    return chunks


def scan(data: bytes) -> list[PemBlock]:
    """Every block in file order, including broken ones (marked with a defect)."""
    text = as_text(data)
    markers = list(_MARKER.finditer(text))
    blocks: list[PemBlock] = []
    index = 0
    while index < len(markers):
        block, index = _frame(text, markers, index)
        blocks.append(block)
    return blocks


def _label(marker: re.Match[bytes]) -> str:
    return " ".join(marker.group(2).decode("ascii").split())


def _frame(text: bytes, markers: list[re.Match[bytes]], index: int) -> tuple[PemBlock, int]:
    """The block starting at ``markers[index]`` and the index of the marker after it."""
    begin = markers[index]
    label = _label(begin)
    if begin.group(1) == b"END":
        return PemBlock(
            label, defect="its BEGIN line is missing (is the start cut off?)"
        ), index + 1
    if label.startswith("PGP "):
        return PemBlock(label), _after_pgp(markers, index)
    end = markers[index + 1] if index + 1 < len(markers) else None
    if end is None or end.group(1) != b"END":
        return PemBlock(label, defect="its END line is missing (is the file cut short?)"), index + 1
    if _label(end) != label:
        return PemBlock(label, defect=f"it ends with an 'END {_label(end)}' line"), index + 2
    headers, body = _split_headers(text[begin.end() : end.start()])
    return PemBlock(label, headers, body), index + 2


def _after_pgp(markers: list[re.Match[bytes]], index: int) -> int:
    """PGP armour nests (a signed message holds a signature block): skip to its END line."""
    for later in range(index + 1, len(markers)):
        if markers[later].group(1) == b"END" and _label(markers[later]).startswith("PGP "):
            return later + 1
    return len(markers)


def _split_headers(content: bytes) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """Separate RFC 1421 ``Name: value`` headers from the base64 body (base64 has no ':')."""
    lines = content.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    headers: list[tuple[str, str]] = []
    index = first
    while index < len(lines) and lines[index].strip():
        line = lines[index]
        if line[:1] in (b" ", b"\t") and headers:  # folded continuation of the previous header
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip().decode('ascii', 'replace')}")
        elif b":" in line:
            name_raw, _, value_raw = line.partition(b":")
            headers.append(
                (
                    name_raw.strip().decode("ascii", "replace"),
                    value_raw.strip().decode("ascii", "replace"),
                )
            )
        else:
            break  # the base64 started without the blank separator line
        index += 1
    return tuple(headers), b"\n".join(lines[index:])
