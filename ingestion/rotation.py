"""Data-key rotation: every document re-encrypted under a fresh key.

A rotation retires the tenant key and makes a new one active (see
`Keyring.retire_tenant_key`). Then each document still under a retired tenant
key gets a new document key under the active one; its metadata and every
chunk are opened with the old key and sealed again with the new one (fresh
nonces), and the old document key is destroyed, all in one transaction per
document. An interrupted rotation is resumed by running it again: what is
pending is whatever still hangs under a retired tenant key. Session keys are
re-wrapped (memory entries expire on their own), and retired tenant keys are
destroyed once they wrap nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from securerag.audit import AuditLog
from securerag.crypto.aead import Aead
from securerag.crypto.binding import chunk_aad, document_aad
from securerag.crypto.keyring import Keyring
from securerag.db import tenant_transaction
from securerag.errors import DecryptionError, KeyNotFound
from securerag.tenants import TenantRef

BATCH = 100
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What one tenant's rotation did."""

    started: bool
    """False when an interrupted rotation was resumed."""
    documents: int
    chunks: int
    sessions: int
    failed: tuple[str, ...]
    retired_keys_destroyed: int


def pending_documents(
    conn: psycopg.Connection[Any],
    keyring: Keyring,
    tenant_id: int,
    *,
    after: uuid.UUID | None = None,
    limit: int = BATCH,
) -> list[uuid.UUID]:
    """Documents whose key is still wrapped by a retired tenant key (admin transaction)."""
    active = keyring.tenant_key(conn, tenant_id)
    rows = conn.execute(
        "SELECT d.id FROM securerag.documents d JOIN securerag.data_keys k"
        " ON k.tenant_id = d.tenant_id AND k.id = d.key_id"
        " WHERE d.tenant_id = %s AND k.parent_id <> %s AND d.id > %s ORDER BY d.id LIMIT %s",
        (tenant_id, active.id, after or uuid.UUID(int=0), limit),
    ).fetchall()
    return [r[0] for r in rows]


def count_pending(conn: psycopg.Connection[Any], keyring: Keyring, tenant_id: int) -> int:
    """How many documents a rotation still has to re-encrypt."""
    active = keyring.tenant_key(conn, tenant_id)
    row = conn.execute(
        "SELECT count(*) FROM securerag.documents d JOIN securerag.data_keys k"
        " ON k.tenant_id = d.tenant_id AND k.id = d.key_id WHERE d.tenant_id = %s AND k.parent_id <> %s",
        (tenant_id, active.id),
    ).fetchone()
    return int(row[0]) if row else 0


def rekey_document(
    conn: psycopg.Connection[Any], keyring: Keyring, tenant_id: int, document_id: uuid.UUID
) -> int:
    """Re-encrypt one document under a new key (admin transaction); chunks re-sealed."""
    row = conn.execute(
        "SELECT key_id, sealed_meta, collection, classification, acl FROM securerag.documents"
        " WHERE tenant_id = %s AND id = %s FOR UPDATE",
        (tenant_id, document_id),
    ).fetchone()
    if row is None:
        return 0  # deleted meanwhile
    old_key_id, sealed_meta, collection, classification, acl = row
    old = keyring.keys(conn, tenant_id, [old_key_id]).get(old_key_id)
    if old is None:
        raise KeyNotFound(f"the key of document {document_id} cannot be opened")
    new = keyring.create_key(conn, tenant_id, "document", ref=str(document_id))
    old_aead, new_aead = Aead(old), Aead(new)
    meta_aad = document_aad(tenant_id=tenant_id, document_id=document_id)
    meta = new_aead.seal(old_aead.open(bytes(sealed_meta), aad=meta_aad), aad=meta_aad)
    chunks = conn.execute(
        "SELECT id, ordinal, sealed FROM securerag.chunks"
        " WHERE tenant_id = %s AND document_id = %s FOR UPDATE",
        (tenant_id, document_id),
    ).fetchall()
    updates = []
    for chunk_id, ordinal, sealed in chunks:
        aad = chunk_aad(
            tenant_id=tenant_id,
            document_id=document_id,
            chunk_id=chunk_id,
            ordinal=ordinal,
            collection=collection,
            classification=classification,
            acl=acl,
        )
        updates.append((new_aead.seal(old_aead.open(bytes(sealed), aad=aad), aad=aad), tenant_id, chunk_id))
    with conn.cursor() as cur:
        cur.executemany("UPDATE securerag.chunks SET sealed = %s WHERE tenant_id = %s AND id = %s", updates)
    conn.execute(
        "UPDATE securerag.documents SET key_id = %s, sealed_meta = %s WHERE tenant_id = %s AND id = %s",
        (new.id, meta, tenant_id, document_id),
    )
    keyring.destroy(conn, tenant_id, [old_key_id])
    return len(chunks)


def each_pending_document(
    conn: psycopg.Connection[Any],
    tenant_id: int,
    pending: Callable[[psycopg.Connection[Any], uuid.UUID | None], list[uuid.UUID]],
    work: Callable[[psycopg.Connection[Any], uuid.UUID], T],
    *,
    on_document: Callable[[], None] | None = None,
) -> tuple[list[T], list[str]]:
    """Run `work` on every document `pending` lists (pages in id order, after the last one
    seen), each in its own admin transaction: (results, documents that did not authenticate).

    A document whose key or ciphertext fails (`DecryptionError`, `KeyNotFound`) is rolled
    back and reported, and not retried in this run. Used by key rotation and by rescans.
    """
    results: list[T] = []
    failed: list[str] = []
    after: uuid.UUID | None = None
    while True:
        with tenant_transaction(conn, tenant_id, access="admin") as tx:
            batch = pending(tx, after)
        if not batch:
            return results, failed
        for document_id in batch:
            try:
                with tenant_transaction(conn, tenant_id, access="admin") as tx:
                    results.append(work(tx, document_id))
            except (DecryptionError, KeyNotFound):
                failed.append(str(document_id))
            if on_document is not None:
                on_document()
        after = batch[-1]


def rotate_tenant(
    conn: psycopg.Connection[Any],
    keyring: Keyring,
    audit: AuditLog,
    tenant: TenantRef,
    *,
    actor: str,
    on_start: Callable[[int], None] | None = None,
    on_document: Callable[[], None] | None = None,
) -> RotationReport:
    """Rotate (or resume rotating) one tenant's keys, one document per transaction."""
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        active, started = keyring.retire_tenant_key(tx, tenant.id)
        audit.append(
            tx,
            tenant.id,
            actor=actor,
            action="keys.rotate.begin" if started else "keys.rotate.resume",
            detail={"tenant_key": str(active.id)},
        )
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        total = count_pending(tx, keyring, tenant.id)
    if on_start is not None:
        on_start(total)
    # A document that does not authenticate keeps its old key (and so the retired tenant
    # key); it is reported, never silently re-sealed.
    rekeyed, failed = each_pending_document(
        conn,
        tenant.id,
        lambda tx, after: pending_documents(tx, keyring, tenant.id, after=after),
        lambda tx, document_id: rekey_document(tx, keyring, tenant.id, document_id),
        on_document=on_document,
    )
    documents, chunks = len(rekeyed), sum(rekeyed)
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        sessions = keyring.rewrap_children(tx, tenant.id, purpose="session")
        destroyed = keyring.drop_retired(tx, tenant.id)
        audit.append(
            tx,
            tenant.id,
            actor=actor,
            action="keys.rotate.end",
            detail={
                "tenant_key": str(active.id),
                "documents": documents,
                "chunks": chunks,
                "sessions": sessions,
                "failed": len(failed),
                "retired_keys_destroyed": destroyed,
            },
        )
    return RotationReport(started, documents, chunks, sessions, tuple(failed), destroyed)
