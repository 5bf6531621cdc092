"""A minimal DER writer for tests that need structures no library will produce (a PKCS#12
file claiming 200 million iterations, made without doing any of them)."""

from __future__ import annotations


def _element(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def sequence(*items: bytes) -> bytes:
    return _element(0x30, b"".join(items))


def explicit(number: int, *items: bytes) -> bytes:
    return _element(0xA0 | number, b"".join(items))


def integer(value: int) -> bytes:
    size = value.bit_length() // 8 + 1
    return _element(0x02, value.to_bytes(size, "big", signed=True))


def octets(value: bytes) -> bytes:
    return _element(0x04, value)


def null() -> bytes:
    return b"\x05\x00"


def oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    encoded = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        encoded += bytes(reversed(chunk))
    return _element(0x06, bytes(encoded))


DATA = "1.2.840.113549.1.7.1"
ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
SHA256 = "2.16.840.1.101.3.4.2.1"
PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
HMAC_SHA256 = "1.2.840.113549.2.9"
AES_256_CBC = "2.16.840.1.101.3.4.1.42"
PBE_SHA1_3DES = "1.2.840.113549.1.12.1.3"
SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"


def pbes2(iterations: int) -> bytes:
    """An AlgorithmIdentifier: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC."""
    kdf = sequence(
        oid(PBKDF2),
        sequence(octets(b"s" * 8), integer(iterations), sequence(oid(HMAC_SHA256), null())),
    )
    return sequence(oid(PBES2), sequence(kdf, sequence(oid(AES_256_CBC), octets(b"i" * 16))))


def pkcs12_pbe(iterations: int) -> bytes:
    """An AlgorithmIdentifier: pbeWithSHAAnd3-KeyTripleDES-CBC."""
    return sequence(oid(PBE_SHA1_3DES), sequence(octets(b"s" * 8), integer(iterations)))


def encrypted_private_key(algorithm: bytes) -> bytes:
    return sequence(algorithm, octets(b"\x00" * 48))


def pfx(
    mac_iterations: int = 2048,
    *,
    encrypted_content: bytes | None = None,
    key_bag_algorithm: bytes | None = None,
) -> bytes:
    """A PFX: an encrypted content (certificates) and a shrouded key bag, each with the given
    AlgorithmIdentifier, and a SHA-256 MAC; every ciphertext and digest is filler."""
    contents = []
    if encrypted_content is not None:
        encrypted = sequence(oid(DATA), encrypted_content, _element(0x80, b"\x00" * 32))
        contents.append(sequence(oid(ENCRYPTED_DATA), explicit(0, sequence(integer(0), encrypted))))
    if key_bag_algorithm is not None:
        bag = sequence(oid(SHROUDED_KEY_BAG), explicit(0, encrypted_private_key(key_bag_algorithm)))
        contents.append(sequence(oid(DATA), explicit(0, octets(sequence(bag)))))
    auth_safe = sequence(oid(DATA), explicit(0, octets(sequence(*contents))))
    mac = sequence(
        sequence(sequence(oid(SHA256), null()), octets(b"m" * 32)),
        octets(b"salt" * 2),
        integer(mac_iterations),
    )
    return sequence(integer(3), auth_safe, mac)


CERT_BAG = "1.2.840.113549.1.12.10.1.3"
X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
LOCAL_KEY_ID = "1.2.840.113549.1.9.21"


def pfx_of_pairs(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """A PFX without MAC holding several (certificate DER, encrypted PKCS#8 DER) pairs, each
    pair sharing a localKeyID, as Windows or Java export several certificates with their keys
    (``openssl pkcs12 -export`` writes one key only)."""

    def key_id(number: int) -> bytes:
        return _element(0x31, sequence(oid(LOCAL_KEY_ID), _element(0x31, octets(bytes([number])))))

    bags = []
    for number, (certificate, key) in enumerate(pairs, start=1):
        bags.append(sequence(oid(SHROUDED_KEY_BAG), explicit(0, key), key_id(number)))
        value = sequence(oid(X509_CERTIFICATE), explicit(0, octets(certificate)))
        bags.append(sequence(oid(CERT_BAG), explicit(0, value), key_id(number)))
    auth_safe = sequence(sequence(oid(DATA), explicit(0, octets(sequence(*bags)))))
    return sequence(integer(3), sequence(oid(DATA), explicit(0, octets(auth_safe))))
