"""The service's long-lived secrets, derived from one random root secret.

The root secret is created once, by `securerag init`, and stored in
`securerag.service_keys` wrapped by the master key. The audit chain's key, the
API-key digest key and the content-MAC key derive from it (HKDF), so they
survive a master-key rotation, which only re-wraps the root.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from securerag.crypto.aead import KEY_BYTES, encode_aad
from securerag.errors import DecryptionError, KeyNotFound, NotInitialized
from securerag.protocols import KeyProvider

ROOT = "root"


def _aad(name: str) -> bytes:
    return encode_aad("securerag/service-key/v1", name)


class ServiceSecrets:
    """Derives named secrets from the root secret; the root never appears in `repr`."""

    __slots__ = ("_root",)

    def __init__(self, root: bytes) -> None:
        if len(root) != KEY_BYTES:
            raise ValueError("the root secret is 32 bytes")
        self._root = root

    def __repr__(self) -> str:
        return "ServiceSecrets(...)"

    def derive(self, label: str) -> bytes:
        """A 32-byte secret for one named purpose."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"securerag/{label}".encode())
        return hkdf.derive(self._root)

    @classmethod
    def load(cls, conn: psycopg.Connection[Any], keys: KeyProvider) -> ServiceSecrets:
        """Unwrap the root secret (any role may read the wrapped row)."""
        row = conn.execute(
            "SELECT kek_id, wrapped FROM securerag.service_keys WHERE name = %s", (ROOT,)
        ).fetchone()
        if row is None:
            raise NotInitialized("the service secrets are missing; run `securerag init`")
        if not keys.knows(row[0]):
            raise KeyNotFound(
                f"the service secrets are wrapped by master key {row[0]}, but the configured master key "
                f"is {keys.key_id}; set SECURERAG_MASTER_KEY to the key this database uses"
            )
        try:
            return cls(keys.unwrap(bytes(row[1]), aad=_aad(ROOT)))
        except DecryptionError:
            raise KeyNotFound("the service secrets do not open with the configured master key") from None


def ensure_root(conn: psycopg.Connection[Any], keys: KeyProvider) -> bool:
    """Create the root secret if there is none (as the owner); True if created."""
    root = os.urandom(KEY_BYTES)
    cur = conn.execute(
        "INSERT INTO securerag.service_keys (name, kek_id, wrapped) VALUES (%s, %s, %s)"
        " ON CONFLICT (name) DO NOTHING",
        (ROOT, keys.key_id, keys.wrap(root, aad=_aad(ROOT))),
    )
    return cur.rowcount == 1


def rewrap_root(conn: psycopg.Connection[Any], keys: KeyProvider) -> bool:
    """Re-wrap the root secret under the provider's primary master key (as the owner)."""
    row = conn.execute(
        "SELECT kek_id, wrapped FROM securerag.service_keys WHERE name = %s FOR UPDATE", (ROOT,)
    ).fetchone()
    if row is None or row[0] == keys.key_id:
        return False
    root = keys.unwrap(bytes(row[1]), aad=_aad(ROOT))
    conn.execute(
        "UPDATE securerag.service_keys SET kek_id = %s, wrapped = %s WHERE name = %s",
        (keys.key_id, keys.wrap(root, aad=_aad(ROOT)), ROOT),
    )
    return True
