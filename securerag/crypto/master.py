"""The master key (key-encryption key) held locally: from the environment or a 0600 file."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from filelock import FileLock

from securerag.config import Settings
from securerag.crypto.aead import KEY_BYTES, Aead, DataKey
from securerag.errors import ConfigError, NotInitialized

# Data keys are wrapped with AES-256-GCM under the master key; a fixed id is
# fine because the id only names the wrapping key inside the sealed bytes.
_WRAP_KEY_ID = uuid.UUID(int=0)


class LocalKeyProvider:
    """Wraps data keys with a master key held in this process's memory."""

    __slots__ = ("_aead", "_key_id", "_master")

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ConfigError("the master key must be exactly 32 bytes")
        self._master = master_key
        self._aead = Aead(DataKey(_WRAP_KEY_ID, self.derive("data-key-wrapping")))
        self._key_id = hmac.new(master_key, b"securerag/kek-id", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"LocalKeyProvider(key_id={self._key_id!r})"

    @property
    def key_id(self) -> str:
        """A public fingerprint of the master key (not secret, not reversible)."""
        return self._key_id

    def wrap(self, data_key: bytes, *, aad: bytes) -> bytes:
        """Encrypt a data key under the master key, bound to `aad`."""
        return self._aead.seal(data_key, aad=aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """Decrypt a wrapped data key; raises `DecryptionError` on any mismatch."""
        return self._aead.open(wrapped, aad=aad)

    def derive(self, label: str) -> bytes:
        """A 32-byte secret for one named purpose (HKDF-SHA256 of the master key)."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"securerag/{label}".encode())
        return hkdf.derive(self._master)


def _decode(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{where} must decode to 32 bytes, got {len(raw)}")
    return raw


def load_key_provider(settings: Settings) -> LocalKeyProvider:
    """The master key from `SECURERAG_MASTER_KEY`, else from the key file."""
    if settings.master_key is not None:
        return LocalKeyProvider(_decode(settings.master_key.get_secret_value(), "SECURERAG_MASTER_KEY"))
    path = settings.key_file
    if not path.exists():
        raise NotInitialized(
            f"no master key: set SECURERAG_MASTER_KEY or run `securerag init` to create {path}"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")
    return LocalKeyProvider(_decode(path.read_text(), str(path)))


def ensure_key_file(settings: Settings) -> bool:
    """Create the 0600 master key file if no key is configured; True if created."""
    if settings.master_key is not None:
        return False
    path = settings.key_file
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            return False
        # O_EXCL + 0600 at creation: the key is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")
    return True


def generate_master_key() -> str:
    """A new master key, base64-encoded, for `SECURERAG_MASTER_KEY`."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()
