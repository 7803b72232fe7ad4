"""The ingestion pipeline: classify, chunk, scan, embed, seal, store.

CPU work (`prepare`) is separate from the database work (`store`), which runs
in the caller's admin transaction, so a document is stored whole or not at all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from securerag.audit import AuditLog
from securerag.crypto.aead import Aead
from securerag.crypto.binding import chunk_aad, document_aad
from securerag.crypto.keyring import Keyring
from securerag.errors import InvalidInput
from securerag.ingestion.chunking import Chunk, split_text
from securerag.ingestion.classification import Classification, Finding, classify
from securerag.models import Action, Level, ScanResult, require_text, validate_collection, validate_subject
from securerag.protocols import Embedder, Scanner

MAX_TEXT_CHARS = 5_000_000
MAX_TITLE_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """A document to ingest."""

    collection: str
    title: str
    text: str
    acl: tuple[str, ...] = ()
    classification: Level | None = None
    """The declared level; None classifies automatically (from `internal` up)."""
    source: str = ""

    def __post_init__(self) -> None:
        validate_collection(self.collection)
        require_text(self.title, "the title")
        require_text(self.text, "the text")
        for subject in self.acl:
            validate_subject(subject)
        if len(self.title) > MAX_TITLE_CHARS:
            raise InvalidInput(f"title longer than {MAX_TITLE_CHARS} characters")
        if len(self.text) > MAX_TEXT_CHARS:
            raise InvalidInput(f"text longer than {MAX_TEXT_CHARS} characters")
        if not self.text.strip():
            raise InvalidInput("the document has no text")


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A document after the CPU work, before it touches the database."""

    input: DocumentInput
    classification: Classification
    chunks: tuple[Chunk, ...]
    scans: tuple[ScanResult, ...]
    embeddings: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class IngestedDocument:
    """What was stored for one document."""

    document_id: uuid.UUID
    collection: str
    classification: Level
    chunks: int
    flagged: int
    withheld: int


def _chunk_findings(chunk: Chunk, findings: Sequence[Finding]) -> list[list[Any]]:
    """Personal-data spans overlapping the chunk, relative to its start."""
    return [
        [max(f.start, chunk.start) - chunk.start, min(f.end, chunk.end) - chunk.start, f.kind]
        for f in findings
        if f.category == "pii" and f.start < chunk.end and chunk.start < f.end
    ]


class Ingestor:
    """Turns `DocumentInput`s into sealed, embedded, scanned rows."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        scanner: Scanner,
        keyring: Keyring,
        audit: AuditLog,
        max_tokens: int | None = None,
        overlap_tokens: int = 32,
    ) -> None:
        self._embedder = embedder
        self._scanner = scanner
        self._keyring = keyring
        self._audit = audit
        self._max_tokens = min(max_tokens or embedder.max_tokens, embedder.max_tokens)
        self._overlap = overlap_tokens

    def prepare(self, doc: DocumentInput) -> PreparedDocument:
        """Classify, chunk, scan and embed (no database access)."""
        classification = classify(doc.text, doc.classification)
        chunks = split_text(
            doc.text,
            max_tokens=self._max_tokens,
            overlap_tokens=self._overlap,
            count_tokens=self._embedder.count_tokens,
        )
        scans = tuple(self._scanner.scan(c.text) for c in chunks)
        embeddings = self._embedder.embed([c.text for c in chunks])
        return PreparedDocument(doc, classification, tuple(chunks), scans, embeddings)

    def store(
        self, conn: psycopg.Connection[Any], tenant_id: int, prepared: PreparedDocument, *, actor: str
    ) -> IngestedDocument:
        """Seal and insert one prepared document, in the caller's admin transaction."""
        doc = prepared.input
        level = prepared.classification.level
        acl = sorted(set(doc.acl))
        document_id = uuid.uuid4()
        key = self._keyring.create_key(conn, tenant_id, "document", ref=str(document_id))
        aead = Aead(key)
        meta = json.dumps({"title": doc.title, "source": doc.source}).encode()
        conn.execute(
            "INSERT INTO securerag.documents"
            " (tenant_id, id, collection, classification, acl, key_id, sealed_meta, n_chunks)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                tenant_id,
                document_id,
                doc.collection,
                int(level),
                acl,
                key.id,
                aead.seal(meta, aad=document_aad(tenant_id=tenant_id, document_id=document_id)),
                len(prepared.chunks),
            ),
        )
        rows = []
        for chunk, scan, vector in zip(prepared.chunks, prepared.scans, prepared.embeddings, strict=True):
            chunk_id = uuid.uuid4()
            payload = json.dumps(
                {
                    "text": chunk.text,
                    "start": chunk.start,
                    "end": chunk.end,
                    "pii": _chunk_findings(chunk, prepared.classification.findings),
                    # The verdict travels sealed: the plaintext columns are for queries
                    # and statistics, never trusted for the decision to show a chunk.
                    "scan": {
                        "score": scan.score,
                        "action": int(scan.action),
                        "reasons": list(scan.reasons),
                        "version": self._scanner.version,
                    },
                }
            ).encode()
            sealed = aead.seal(
                payload,
                aad=chunk_aad(
                    tenant_id=tenant_id,
                    document_id=document_id,
                    chunk_id=chunk_id,
                    ordinal=chunk.ordinal,
                    collection=doc.collection,
                    classification=int(level),
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
                    int(level),
                    acl,
                    vector,
                    sealed,
                    scan.score,
                    int(scan.action),
                    list(scan.reasons),
                    self._scanner.version,
                )
            )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO securerag.chunks (tenant_id, id, document_id, ordinal, collection,"
                " classification, acl, embedding, sealed, scan_score, scan_action, scan_reasons,"
                " scanner_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        flagged = sum(1 for s in prepared.scans if s.action == Action.FLAG)
        withheld = sum(1 for s in prepared.scans if s.action == Action.WITHHOLD)
        self._audit.append(
            conn,
            tenant_id,
            actor=actor,
            action="document.ingest",
            detail={
                "document_id": str(document_id),
                "collection": doc.collection,
                "classification": level.label,
                "chunks": len(rows),
                "flagged": flagged,
                "withheld": withheld,
                "findings": prepared.classification.kinds,
            },
        )
        return IngestedDocument(document_id, doc.collection, level, len(rows), flagged, withheld)

    def delete(
        self, conn: psycopg.Connection[Any], tenant_id: int, document_id: uuid.UUID, *, actor: str
    ) -> bool:
        """Delete a document, its chunks and vectors, and destroy its key (admin transaction)."""
        row = conn.execute(
            "DELETE FROM securerag.documents WHERE tenant_id = %s AND id = %s RETURNING key_id",
            (tenant_id, document_id),
        ).fetchone()
        if row is None:
            return False
        self._keyring.destroy(conn, tenant_id, [row[0]])
        self._audit.append(
            conn, tenant_id, actor=actor, action="document.delete", detail={"document_id": str(document_id)}
        )
        return True
