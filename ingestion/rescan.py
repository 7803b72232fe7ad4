"""Stored verdicts brought up to the running scanner, ahead of retrieval.

Each chunk's verdict is sealed with its text, together with the version of the
scanner that gave it. After a scanner upgrade, retrieval rescans every chunk
with an older verdict each time it is read (`securerag.retrieval`);
`rescan_tenant` does that work once instead. Each document holding an older
verdict is opened, its stale chunks and title are scanned in one batch, and
the new verdicts are sealed again with the same document key (fresh nonces),
one transaction per document. An interrupted run is resumed by running it
again: what is pending is whatever still carries an older version.

The plaintext `scanner_version` column only chooses what to look at; the
sealed version decides what is rescanned, as at retrieval. A verdict that the
document's hidden text raised at ingestion is not lowered
(`securerag.scanning.scanner.refreshed`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from securerag.audit import AuditLog
from securerag.crypto.aead import Aead
from securerag.crypto.binding import chunk_aad, document_aad
from securerag.crypto.keyring import Keyring
from securerag.db import tenant_transaction
from securerag.errors import KeyNotFound
from securerag.ingestion.rotation import each_pending_document
from securerag.models import Level
from securerag.protocols import Scanner
from securerag.scanning.scanner import hidden_floor, is_stale, refreshed
from securerag.tenants import TenantRef

BATCH = 100
# Documents holding a chunk with an older verdict, a page at a time (index chunks_scanner_version).
PENDING = (
    "SELECT DISTINCT document_id FROM securerag.chunks WHERE tenant_id = %s AND scanner_version < %s"
    " AND (%s::uuid IS NULL OR document_id > %s) ORDER BY document_id LIMIT %s"
)


@dataclass(frozen=True, slots=True)
class RescanReport:
    """What one tenant's rescan did."""

    documents: int
    chunks: int
    """Chunks whose verdict was replaced."""
    changed: int
    """Of those, chunks whose action (allow, flag, withhold) changed under the tenant's thresholds."""
    failed: tuple[str, ...]
    """Documents that did not authenticate: left as they were."""


def _pending(
    conn: psycopg.Connection[Any], tenant_id: int, version: int, *, after: uuid.UUID | None
) -> list[uuid.UUID]:
    rows = conn.execute(PENDING, (tenant_id, version, after, after, BATCH)).fetchall()
    return [r[0] for r in rows]


def rescan_document(
    conn: psycopg.Connection[Any],
    keyring: Keyring,
    scanner: Scanner,
    tenant: TenantRef,
    document_id: uuid.UUID,
) -> tuple[int, int] | None:
    """Rescan one document's stale chunks and title (admin transaction): (chunks re-sealed,
    of which changed action), or None when the document was deleted meanwhile."""
    row = conn.execute(
        "SELECT key_id, sealed_meta, collection, classification, acl FROM securerag.documents"
        " WHERE tenant_id = %s AND id = %s FOR UPDATE",
        (tenant.id, document_id),
    ).fetchone()
    if row is None:
        return None
    key_id, sealed_meta, collection, classification, acl = row
    key = keyring.keys(conn, tenant.id, [key_id]).get(key_id)
    if key is None:
        raise KeyNotFound(f"the key of document {document_id} cannot be opened")
    aead = Aead(key)
    meta_aad = document_aad(tenant_id=tenant.id, document_id=document_id)
    meta = json.loads(aead.open(bytes(sealed_meta), aad=meta_aad))
    chunks = []
    for chunk_id, ordinal, sealed in conn.execute(
        "SELECT id, ordinal, sealed FROM securerag.chunks"
        " WHERE tenant_id = %s AND document_id = %s FOR UPDATE",
        (tenant.id, document_id),
    ).fetchall():
        aad = chunk_aad(
            tenant_id=tenant.id,
            document_id=document_id,
            chunk_id=chunk_id,
            ordinal=ordinal,
            collection=collection,
            classification=classification,
            acl=acl,
        )
        payload = json.loads(aead.open(bytes(sealed), aad=aad))
        if is_stale(payload.get("scan"), scanner.version):
            chunks.append((chunk_id, aad, payload))
    title_stale = is_stale(meta.get("title_scan"), scanner.version)
    results = scanner.scan_many([p["text"] for _, _, p in chunks] + ([meta["title"]] if title_stale else []))
    fresh, title = results[: len(chunks)], results[len(chunks) :]
    level = Level(classification).label
    updates, changed = [], 0
    for (chunk_id, aad, payload), result in zip(chunks, fresh, strict=True):
        old = payload.get("scan")
        score, reasons = refreshed(old, result)
        if old is None or scanner.action_for(float(old["score"]), tenant.name, level) != scanner.action_for(
            score, tenant.name, level
        ):
            changed += 1
        action = scanner.action_for(score)  # stored like ingestion stores it: default thresholds
        payload["scan"] = {
            "score": score,
            "action": int(action),
            "reasons": list(reasons),
            "version": scanner.version,
        }
        floor = hidden_floor(old)
        if floor is not None:
            payload["scan"]["hidden"] = floor  # carried to every later rescan
        sealed = aead.seal(json.dumps(payload).encode(), aad=aad)
        updates.append((sealed, score, int(action), list(reasons), scanner.version, tenant.id, chunk_id))
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE securerag.chunks SET sealed = %s, scan_score = %s, scan_action = %s, scan_reasons = %s,"
            " scanner_version = %s WHERE tenant_id = %s AND id = %s",
            updates,
        )
    # Chunks whose sealed verdict was already current: the column catches up with it.
    conn.execute(
        "UPDATE securerag.chunks SET scanner_version = %s"
        " WHERE tenant_id = %s AND document_id = %s AND scanner_version < %s",
        (scanner.version, tenant.id, document_id, scanner.version),
    )
    if title:
        meta["title_scan"] = {
            "score": title[0].score,
            "reasons": list(title[0].reasons),
            "version": scanner.version,
        }
        conn.execute(
            "UPDATE securerag.documents SET sealed_meta = %s WHERE tenant_id = %s AND id = %s",
            (aead.seal(json.dumps(meta).encode(), aad=meta_aad), tenant.id, document_id),
        )
    return len(updates), changed


def rescan_tenant(
    conn: psycopg.Connection[Any],
    keyring: Keyring,
    scanner: Scanner,
    audit: AuditLog,
    tenant: TenantRef,
    *,
    actor: str,
    on_start: Callable[[int], None] | None = None,
    on_document: Callable[[], None] | None = None,
) -> RescanReport:
    """Rescan (or resume rescanning) one tenant's stale verdicts, one document per transaction."""
    version = scanner.version
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        # Audited before any change, so a run that dies half-way is on the chain too.
        audit.append(
            tx, tenant.id, actor=actor, action="scan.rescan.begin", detail={"scanner_version": version}
        )
        total = tx.execute(
            "SELECT count(DISTINCT document_id) FROM securerag.chunks"
            " WHERE tenant_id = %s AND scanner_version < %s",
            (tenant.id, version),
        ).fetchone()
    if on_start is not None:
        on_start(int(total[0]) if total else 0)
    # Never re-sealed: a chunk that does not authenticate stays unreadable.
    results, failed = each_pending_document(
        conn,
        tenant.id,
        lambda tx, after: _pending(tx, tenant.id, version, after=after),
        lambda tx, document_id: rescan_document(tx, keyring, scanner, tenant, document_id),
        on_document=on_document,
    )
    done = [r for r in results if r is not None]  # None: deleted meanwhile
    documents, chunks, changed = len(done), sum(r[0] for r in done), sum(r[1] for r in done)
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        audit.append(
            tx,
            tenant.id,
            actor=actor,
            action="scan.rescan.end",
            detail={
                "scanner_version": version,
                "documents": documents,
                "chunks": chunks,
                "changed": changed,
                "failed": len(failed),
            },
        )
    return RescanReport(documents, chunks, changed, tuple(failed))
