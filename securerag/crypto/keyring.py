"""Envelope keys in the database: tenant keys under the master key, document and
session keys under their tenant key.

    master key (KEK, never stored) ─wraps→ tenant key ─wraps→ document key ─seals→ chunks
                                                      └wraps→ session key  ─seals→ memory

Destroying a document's or a session's key (deleting its row) makes its
ciphertext undecryptable; rotating a tenant key re-wraps the keys under it.
Every wrapped key is bound by its AAD to its tenant, id, purpose and owner, so
a wrapped key moved to another row does not unwrap.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Literal

import psycopg

from securerag.crypto.aead import Aead, DataKey, encode_aad
from securerag.errors import DecryptionError, KeyNotFound
from securerag.protocols import KeyProvider

Purpose = Literal["tenant", "document", "session"]
_CACHE_SIZE = 4096
_CACHE_SECONDS = 60.0
"""Unwrapped keys live this long in a process: a key destroyed by another process
stops working everywhere within this time."""
_LOCK = "securerag.tenant_key"


def _wrap_aad(tenant_id: int, key_id: uuid.UUID, purpose: Purpose, ref: str, owner: str | None) -> bytes:
    return encode_aad("securerag/data-key/v1", tenant_id, key_id, purpose, ref, owner or "")


class Keyring:
    """Creates, unwraps (with a small cache) and destroys data keys."""

    def __init__(self, provider: KeyProvider) -> None:
        self._provider = provider
        self._cache: OrderedDict[tuple[int, uuid.UUID], tuple[DataKey, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Keyring(provider={self._provider!r})"

    @property
    def provider(self) -> KeyProvider:
        """The master key provider."""
        return self._provider

    # -- cache ---------------------------------------------------------------
    def _cached(self, tenant_id: int, key_id: uuid.UUID) -> DataKey | None:
        with self._lock:
            entry = self._cache.get((tenant_id, key_id))
            if entry is None:
                return None
            if entry[1] < time.monotonic():
                del self._cache[(tenant_id, key_id)]
                return None
            self._cache.move_to_end((tenant_id, key_id))
            return entry[0]

    def _remember(self, tenant_id: int, key: DataKey) -> None:
        with self._lock:
            self._cache[(tenant_id, key.id)] = (key, time.monotonic() + _CACHE_SECONDS)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    def forget(self, tenant_id: int, key_ids: Iterable[uuid.UUID]) -> None:
        """Drop keys from this process's cache (after destroying them)."""
        with self._lock:
            for key_id in key_ids:
                self._cache.pop((tenant_id, key_id), None)

    def clear_cache(self) -> None:
        """Forget every unwrapped key held by this process."""
        with self._lock:
            self._cache.clear()

    # -- tenant keys ---------------------------------------------------------
    def tenant_key(self, conn: psycopg.Connection[Any], tenant_id: int) -> DataKey:
        """The tenant's active key, created on first use (admin context needed to create)."""
        row = conn.execute(
            "SELECT id, kek_id, wrapped FROM securerag.data_keys"
            " WHERE tenant_id = %s AND purpose = 'tenant' AND retired_at IS NULL"
            " ORDER BY created_at DESC LIMIT 1",
            (tenant_id,),
        ).fetchone()
        if row is None:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (_LOCK, tenant_id))
            row = conn.execute(
                "SELECT id, kek_id, wrapped FROM securerag.data_keys"
                " WHERE tenant_id = %s AND purpose = 'tenant' AND retired_at IS NULL"
                " ORDER BY created_at DESC LIMIT 1",
                (tenant_id,),
            ).fetchone()
        if row is None:
            return self._create_tenant_key(conn, tenant_id)
        return self._tenant_key_from_row(tenant_id, row[0], row[1], bytes(row[2]))

    def _create_tenant_key(self, conn: psycopg.Connection[Any], tenant_id: int) -> DataKey:
        key = DataKey.generate()
        wrapped = self._provider.wrap(key.material, aad=_wrap_aad(tenant_id, key.id, "tenant", "", None))
        conn.execute(
            "INSERT INTO securerag.data_keys (tenant_id, id, purpose, kek_id, wrapped)"
            " VALUES (%s, %s, 'tenant', %s, %s)",
            (tenant_id, key.id, self._provider.key_id, wrapped),
        )
        self._remember(tenant_id, key)
        return key

    def _tenant_key_from_row(self, tenant_id: int, key_id: uuid.UUID, kek_id: str, wrapped: bytes) -> DataKey:
        cached = self._cached(tenant_id, key_id)
        if cached is not None:
            return cached
        if not self._provider.knows(kek_id):
            raise KeyNotFound(
                f"tenant key {key_id} is wrapped by master key {kek_id}, but the configured master "
                f"key is {self._provider.key_id}; set SECURERAG_MASTER_KEY to the key this database uses"
            )
        material = self._provider.unwrap(wrapped, aad=_wrap_aad(tenant_id, key_id, "tenant", "", None))
        key = DataKey(key_id, material)
        self._remember(tenant_id, key)
        return key

    def _tenant_key_by_id(self, conn: psycopg.Connection[Any], tenant_id: int, key_id: uuid.UUID) -> DataKey:
        cached = self._cached(tenant_id, key_id)
        if cached is not None:
            return cached
        row = conn.execute(
            "SELECT kek_id, wrapped FROM securerag.data_keys"
            " WHERE tenant_id = %s AND id = %s AND purpose = 'tenant'",
            (tenant_id, key_id),
        ).fetchone()
        if row is None:
            raise KeyNotFound(f"tenant key {key_id} does not exist")
        return self._tenant_key_from_row(tenant_id, key_id, row[0], bytes(row[1]))

    # -- document and session keys --------------------------------------------
    def create_key(
        self,
        conn: psycopg.Connection[Any],
        tenant_id: int,
        purpose: Literal["document", "session"],
        *,
        ref: str,
        owner: str | None = None,
    ) -> DataKey:
        """A new key for one document or session, wrapped by the tenant key and stored."""
        self.tenant_key(conn, tenant_id)  # creates the first tenant key if there is none
        # Shared with other writers, exclusive with rotation: a rotation cannot retire
        # the parent between our reading it and our committing a key wrapped by it.
        conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s), %s)", (_LOCK, tenant_id))
        parent = self.tenant_key(conn, tenant_id)
        key = DataKey.generate()
        wrapped = Aead(parent).seal(key.material, aad=_wrap_aad(tenant_id, key.id, purpose, ref, owner))
        conn.execute(
            "INSERT INTO securerag.data_keys (tenant_id, id, purpose, ref, owner, parent_id, wrapped)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (tenant_id, key.id, purpose, ref, owner, parent.id, wrapped),
        )
        self._remember(tenant_id, key)
        return key

    def keys(
        self, conn: psycopg.Connection[Any], tenant_id: int, key_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, DataKey]:
        """Unwrap document or session keys by id; a missing key is simply absent."""
        wanted = set(key_ids)
        found: dict[uuid.UUID, DataKey] = {}
        for key_id in list(wanted):
            cached = self._cached(tenant_id, key_id)
            if cached is not None:
                found[key_id] = cached
                wanted.discard(key_id)
        if not wanted:
            return found
        rows = conn.execute(
            "SELECT id, purpose, ref, owner, parent_id, wrapped FROM securerag.data_keys"
            " WHERE tenant_id = %s AND id = ANY(%s) AND purpose <> 'tenant'",
            (tenant_id, list(wanted)),
        ).fetchall()
        for key_id, purpose, ref, owner, parent_id, wrapped in rows:
            try:
                parent = self._tenant_key_by_id(conn, tenant_id, parent_id)
                material = Aead(parent).open(
                    bytes(wrapped), aad=_wrap_aad(tenant_id, key_id, purpose, ref, owner)
                )
            except (DecryptionError, KeyNotFound):
                continue  # a tampered, moved or orphaned key is as good as missing: its rows fail closed
            key = DataKey(key_id, material)
            self._remember(tenant_id, key)
            found[key_id] = key
        return found

    def destroy(self, conn: psycopg.Connection[Any], tenant_id: int, key_ids: Iterable[uuid.UUID]) -> int:
        """Delete wrapped keys for good; the number destroyed."""
        ids = list(key_ids)
        cur = conn.execute(
            "DELETE FROM securerag.data_keys WHERE tenant_id = %s AND id = ANY(%s) AND purpose <> 'tenant'",
            (tenant_id, ids),
        )
        self.forget(tenant_id, ids)
        return cur.rowcount

    # -- rotation ----------------------------------------------------------------
    def retire_tenant_key(self, conn: psycopg.Connection[Any], tenant_id: int) -> tuple[DataKey, bool]:
        """Start a rotation: the active tenant key is retired and a new one made active
        (admin transaction). If a rotation is already under way (a retired key still
        wraps something), nothing changes: it is resumed. Returns the active key and
        whether a new rotation started."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (_LOCK, tenant_id))
        if self.retired_keys(conn, tenant_id):
            return self.tenant_key(conn, tenant_id), False
        conn.execute(
            "UPDATE securerag.data_keys SET retired_at = now()"
            " WHERE tenant_id = %s AND purpose = 'tenant' AND retired_at IS NULL",
            (tenant_id,),
        )
        return self._create_tenant_key(conn, tenant_id), True

    def retired_keys(self, conn: psycopg.Connection[Any], tenant_id: int) -> list[uuid.UUID]:
        """Retired tenant keys that still wrap document or session keys."""
        rows = conn.execute(
            "SELECT t.id FROM securerag.data_keys t WHERE t.tenant_id = %s AND t.purpose = 'tenant'"
            " AND t.retired_at IS NOT NULL AND EXISTS (SELECT 1 FROM securerag.data_keys c"
            " WHERE c.tenant_id = t.tenant_id AND c.parent_id = t.id)",
            (tenant_id,),
        ).fetchall()
        return [r[0] for r in rows]

    def rewrap_children(
        self, conn: psycopg.Connection[Any], tenant_id: int, *, purpose: Literal["document", "session"]
    ) -> int:
        """Re-wrap every `purpose` key still under a retired tenant key with the active one."""
        active = self.tenant_key(conn, tenant_id)
        rows = conn.execute(
            "SELECT id, purpose, ref, owner, parent_id, wrapped FROM securerag.data_keys"
            " WHERE tenant_id = %s AND purpose = %s AND parent_id <> %s FOR UPDATE",
            (tenant_id, purpose, active.id),
        ).fetchall()
        for key_id, kind, ref, owner, parent_id, wrapped in rows:
            aad = _wrap_aad(tenant_id, key_id, kind, ref, owner)
            material = Aead(self._tenant_key_by_id(conn, tenant_id, parent_id)).open(bytes(wrapped), aad=aad)
            conn.execute(
                "UPDATE securerag.data_keys SET parent_id = %s, wrapped = %s"
                " WHERE tenant_id = %s AND id = %s",
                (active.id, Aead(active).seal(material, aad=aad), tenant_id, key_id),
            )
        return len(rows)

    def drop_retired(self, conn: psycopg.Connection[Any], tenant_id: int) -> int:
        """Destroy retired tenant keys that no longer wrap anything."""
        rows = conn.execute(
            "DELETE FROM securerag.data_keys t WHERE t.tenant_id = %s AND t.purpose = 'tenant'"
            " AND t.retired_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM securerag.data_keys c"
            " WHERE c.tenant_id = t.tenant_id AND c.parent_id = t.id) RETURNING t.id",
            (tenant_id,),
        ).fetchall()
        self.forget(tenant_id, [r[0] for r in rows])
        return len(rows)

    def rewrap_under_master(self, conn: psycopg.Connection[Any]) -> int:
        """Re-wrap every tenant key not under the primary master key (as the owner, all
        tenants): the second half of a master-key rotation."""
        rows = conn.execute(
            "SELECT tenant_id, id, wrapped FROM securerag.data_keys WHERE purpose = 'tenant'"
            " AND kek_id <> %s FOR UPDATE",
            (self._provider.key_id,),
        ).fetchall()
        for tenant_id, key_id, wrapped in rows:
            aad = _wrap_aad(tenant_id, key_id, "tenant", "", None)
            material = self._provider.unwrap(bytes(wrapped), aad=aad)
            conn.execute(
                "UPDATE securerag.data_keys SET kek_id = %s, wrapped = %s WHERE tenant_id = %s AND id = %s",
                (self._provider.key_id, self._provider.wrap(material, aad=aad), tenant_id, key_id),
            )
        return len(rows)
