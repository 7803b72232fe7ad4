"""The master key (key-encryption key) held locally: from the environment or a 0600 file.

A provider wraps with its primary key and unwraps with any key it holds: the
wrapping key's id travels in the wrapped bytes, so during a master-key
rotation a provider holding the new key and the retired one reads both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from filelock import FileLock

from securerag.config import Settings
from securerag.crypto.aead import KEY_BYTES, Aead, DataKey, sealed_key_id
from securerag.errors import ConfigError, DecryptionError, NotInitialized


def _hkdf(master: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"securerag/{label}".encode()).derive(
        master
    )


class _Kek:
    __slots__ = ("aead", "id", "master")

    def __init__(self, master: bytes) -> None:
        if len(master) != KEY_BYTES:
            raise ConfigError("the master key must be exactly 32 bytes")
        self.master = master
        # A public fingerprint, not reversible: names the key in wrapped bytes and rows.
        self.id = uuid.UUID(bytes=hmac.new(master, b"securerag/kek-id", hashlib.sha256).digest()[:16])
        self.aead = Aead(DataKey(self.id, _hkdf(master, "data-key-wrapping")))


class LocalKeyProvider:
    """Wraps data keys with a master key held in this process's memory."""

    __slots__ = ("_keks", "_primary")

    def __init__(self, master_key: bytes, *, retired: Sequence[bytes] = ()) -> None:
        self._primary = _Kek(master_key)
        self._keks = {k.id: k for k in (self._primary, *(_Kek(r) for r in retired))}

    def __repr__(self) -> str:
        return f"LocalKeyProvider(key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        """The primary master key's public fingerprint."""
        return self._primary.id.hex[:16]

    def knows(self, key_id: str) -> bool:
        """Whether this provider holds the master key with this fingerprint."""
        return any(k.id.hex[:16] == key_id for k in self._keks.values())

    def wrap(self, data_key: bytes, *, aad: bytes) -> bytes:
        """Encrypt a data key under the primary master key, bound to `aad`."""
        return self._primary.aead.seal(data_key, aad=aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """Decrypt a wrapped data key with whichever held master key wrapped it."""
        kek = self._keks.get(sealed_key_id(wrapped))
        if kek is None:
            raise DecryptionError()
        return kek.aead.open(wrapped, aad=aad)

    def derive(self, label: str) -> bytes:
        """A 32-byte secret derived from the primary master key (HKDF-SHA256).

        Only for secrets that must be known before the database is reachable (the
        query role's password); everything else derives from the service secrets.
        """
        return _hkdf(self._primary.master, label)


def _decode(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{where} must decode to 32 bytes, got {len(raw)}")
    return raw


def read_key_file(path: Path) -> bytes:
    """A master key from a 0600 file; refuses files others can read."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")
    return _decode(path.read_text(), str(path))


def load_key_provider(settings: Settings) -> LocalKeyProvider:
    """The master key from `SECURERAG_MASTER_KEY`, else from the key file. A rotation in
    progress (a `master.key.next` file) makes the next key primary and keeps the current one."""
    if settings.master_key is not None:
        current = _decode(settings.master_key.get_secret_value(), "SECURERAG_MASTER_KEY")
    else:
        path = settings.key_file
        if not path.exists():
            raise NotInitialized(
                f"no master key: set SECURERAG_MASTER_KEY or run `securerag init` to create {path}"
            )
        current = read_key_file(path)
    pending = next_key_file(settings)
    if pending.exists():
        return LocalKeyProvider(read_key_file(pending), retired=[current])
    return LocalKeyProvider(current)


def next_key_file(settings: Settings) -> Path:
    """Where a master-key rotation keeps the new key until it completes."""
    return settings.home / "master.key.next"


def write_key_file(path: Path, key: bytes) -> None:
    """Write a key file created with mode 0600 (never readable by others, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")


def ensure_key_file(settings: Settings) -> bool:
    """Create the 0600 master key file if no key is configured; True if created."""
    if settings.master_key is not None:
        return False
    path = settings.key_file
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            return False
        write_key_file(path, os.urandom(KEY_BYTES))
    return True


def generate_master_key() -> str:
    """A new master key, base64-encoded, for `SECURERAG_MASTER_KEY`."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()
