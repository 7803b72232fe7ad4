"""Writing documents: seal every chunk under a fresh document key and load the rows.

Rows are loaded with COPY into a session-local staging table and moved with one
INSERT ... SELECT: COPY cannot write a table under row-level security, and the
INSERT is still checked by the policies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from securerag.crypto.aead import Aead
from securerag.crypto.binding import chunk_aad, document_aad
from securerag.crypto.keyring import Keyring
from securerag.ingestion.chunking import Chunk
from securerag.ingestion.classification import Finding

if TYPE_CHECKING:
    from securerag.ingestion.pipeline import PreparedDocument

_CHUNK_COLUMNS = (
    "tenant_id, id, document_id, ordinal, collection, classification, acl, embedding, sealed,"
    " scan_score, scan_action, scan_reasons, scanner_version"
)


@dataclass(frozen=True, slots=True)
class ExistingDocument:
    """The stored version of a document with the same identity."""

    id: uuid.UUID
    content_mac: bytes | None
    collection: str
    classification: int
    n_chunks: int


def find_unchanged(
    conn: psycopg.Connection[Any], tenant_id: int, source_mac: bytes, content_mac: bytes
) -> uuid.UUID | None:
    """The id of the stored document with this identity and content, if there is one."""
    row = conn.execute(
        "SELECT id FROM securerag.documents WHERE tenant_id = %s AND source_mac = %s AND content_mac = %s",
        (tenant_id, source_mac, content_mac),
    ).fetchone()
    return None if row is None else row[0]


def lock_source(conn: psycopg.Connection[Any], tenant_id: int, source_mac: bytes) -> ExistingDocument | None:
    """Serialise writers of one document identity (until commit); its stored version."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('securerag.document'), hashtext(encode(%s, 'hex')))",
        (source_mac,),
    )
    row = conn.execute(
        "SELECT id, content_mac, collection, classification, n_chunks FROM securerag.documents"
        " WHERE tenant_id = %s AND source_mac = %s",
        (tenant_id, source_mac),
    ).fetchone()
    if row is None:
        return None
    return ExistingDocument(row[0], None if row[1] is None else bytes(row[1]), row[2], row[3], row[4])


def delete_document(
    conn: psycopg.Connection[Any], keyring: Keyring, tenant_id: int, document_id: uuid.UUID
) -> bool:
    """Delete the document (its chunks and vectors cascade) and destroy its key."""
    row = conn.execute(
        "DELETE FROM securerag.documents WHERE tenant_id = %s AND id = %s RETURNING key_id",
        (tenant_id, document_id),
    ).fetchone()
    if row is None:
        return False
    keyring.destroy(conn, tenant_id, [row[0]])
    return True


def _chunk_pii(chunk: Chunk, findings: Sequence[Finding]) -> list[list[Any]]:
    """Personal-data spans overlapping the chunk, relative to its start."""
    return [
        [max(f.start, chunk.start) - chunk.start, min(f.end, chunk.end) - chunk.start, f.kind]
        for f in findings
        if f.category == "pii" and f.start < chunk.end and chunk.start < f.end
    ]


def write_document(
    conn: psycopg.Connection[Any],
    keyring: Keyring,
    tenant_id: int,
    prepared: PreparedDocument,
    *,
    scanner_version: int,
) -> uuid.UUID:
    """Insert the document and its sealed chunks; its new id."""
    doc = prepared.input
    level = int(prepared.classification.level)
    acl = sorted(set(doc.acl))
    document_id = uuid.uuid4()
    key = keyring.create_key(conn, tenant_id, "document", ref=str(document_id))
    aead = Aead(key)
    meta_fields: dict[str, Any] = {"title": doc.title, "source": doc.source}
    if prepared.title_scan is not None:
        # Titles are shown outside the data fences; their verdict is sealed like a chunk's.
        meta_fields["title_scan"] = {
            "score": prepared.title_scan.score,
            "reasons": list(prepared.title_scan.reasons),
            "version": scanner_version,
        }
    meta = json.dumps(meta_fields).encode()
    conn.execute(
        "INSERT INTO securerag.documents (tenant_id, id, collection, classification, acl, key_id,"
        " sealed_meta, n_chunks, source_mac, content_mac) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            tenant_id,
            document_id,
            doc.collection,
            level,
            acl,
            key.id,
            aead.seal(meta, aad=document_aad(tenant_id=tenant_id, document_id=document_id)),
            len(prepared.chunks),
            prepared.source_mac,
            prepared.content_mac,
        ),
    )
    rows = []
    for chunk, scan, vector in zip(prepared.chunks, prepared.scans, prepared.embeddings, strict=True):
        chunk_id = uuid.uuid4()
        payload = {
            "text": chunk.text,
            "start": chunk.start,
            "end": chunk.end,
            "pii": _chunk_pii(chunk, prepared.classification.findings),
            # The verdict travels sealed: the plaintext columns are for queries and
            # statistics, never trusted for the decision to show a chunk.
            "scan": {
                "score": scan.score,
                "action": int(scan.action),
                "reasons": list(scan.reasons),
                "version": scanner_version,
            },
        }
        sealed = aead.seal(
            json.dumps(payload).encode(),
            aad=chunk_aad(
                tenant_id=tenant_id,
                document_id=document_id,
                chunk_id=chunk_id,
                ordinal=chunk.ordinal,
                collection=doc.collection,
                classification=level,
                acl=acl,
            ),
        )
        rows.append(
            (
                tenant_id,
                chunk_id,
                document_id,
                chunk.ordinal,
                doc.collection,
                level,
                acl,
                vector,
                sealed,
                scan.score,
                int(scan.action),
                list(scan.reasons),
                scanner_version,
            )
        )
    _load_chunks(conn, rows)
    return document_id


def _load_chunks(conn: psycopg.Connection[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    # Session-local staging table, emptied at every commit; created once per connection.
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS chunk_load"
        " (LIKE securerag.chunks INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        with cur.copy(f"COPY chunk_load ({_CHUNK_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO securerag.chunks ({_CHUNK_COLUMNS}) SELECT {_CHUNK_COLUMNS} FROM chunk_load"
        )
        cur.execute("TRUNCATE chunk_load")
