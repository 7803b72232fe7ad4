"""AES-256-GCM with the key id carried in the ciphertext and a bound AAD.

Sealed layout (all lengths fixed):

    version (1) | key id (16, UUID bytes) | nonce (12) | ciphertext + tag (n + 16)

The AAD is never stored: the caller rebuilds it from the row the ciphertext
belongs to (tenant, document, chunk, labels), so a ciphertext copied to another
row, or a row whose labels were changed, fails to open.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from securerag.errors import DecryptionError

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_HEADER = 1 + 16 + NONCE_BYTES
OVERHEAD = _HEADER + TAG_BYTES


def encode_aad(*parts: str | int | bytes | uuid.UUID) -> bytes:
    """Canonical, unambiguous encoding of AAD fields (type tag + length prefix each)."""
    out = bytearray()
    for part in parts:
        if isinstance(part, bool):  # bool is an int: refuse the ambiguity outright
            raise TypeError("bool is not an AAD field type")
        if isinstance(part, str):
            tag, raw = b"s", part.encode("utf-8")
        elif isinstance(part, int):
            tag, raw = b"i", str(part).encode("ascii")
        elif isinstance(part, uuid.UUID):
            tag, raw = b"u", part.bytes
        else:
            tag, raw = b"b", bytes(part)
        out += tag + struct.pack(">I", len(raw)) + raw
    return bytes(out)


@dataclass(frozen=True, slots=True)
class DataKey:
    """A 256-bit data key and its id; the material never appears in `repr`."""

    id: uuid.UUID
    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")

    @classmethod
    def generate(cls) -> DataKey:
        """A fresh random key with a fresh random id."""
        return cls(id=uuid.uuid4(), material=AESGCM.generate_key(bit_length=256))


class Aead:
    """Seal and open under one data key, in the shape of `cryptography`'s AEADs."""

    __slots__ = ("_aesgcm", "_key_id")

    def __init__(self, key: DataKey) -> None:
        self._key_id = key.id
        self._aesgcm = AESGCM(key.material)

    def __repr__(self) -> str:
        return f"Aead(key_id={self._key_id})"

    @property
    def key_id(self) -> uuid.UUID:
        """Id of the key this cipher seals with."""
        return self._key_id

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt and authenticate `plaintext`, bound to `aad`; a fresh nonce each call."""
        nonce = os.urandom(NONCE_BYTES)
        header = bytes([VERSION]) + self._key_id.bytes + nonce
        # The header is authenticated too, so the key id cannot be swapped.
        return header + self._aesgcm.encrypt(nonce, plaintext, header + aad)

    def open(self, sealed: bytes, *, aad: bytes) -> bytes:
        """Decrypt `sealed`; any mismatch (key, AAD, bytes) raises `DecryptionError`."""
        if len(sealed) < OVERHEAD or sealed[0] != VERSION or sealed_key_id(sealed) != self._key_id:
            raise DecryptionError()
        header, body = sealed[:_HEADER], sealed[_HEADER:]
        try:
            return self._aesgcm.decrypt(header[17:], body, header + aad)
        except InvalidTag:
            raise DecryptionError() from None


def sealed_key_id(sealed: bytes) -> uuid.UUID:
    """The id of the key a sealed value claims to be under (not yet authenticated)."""
    if len(sealed) < OVERHEAD:
        raise DecryptionError()
    return uuid.UUID(bytes=bytes(sealed[1:17]))
