"""The ingestion pipeline: classify, chunk, scan, embed (here), then seal and store
(`securerag.ingestion.store`).

CPU work (`prepare`, `prepare_many`) is separate from the database work
(`Ingestor.store`), which runs in the caller's admin transaction, so a
document is stored whole or not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import psycopg

from securerag.audit import AuditLog
from securerag.crypto.keyring import Keyring
from securerag.errors import InvalidInput
from securerag.ingestion import store
from securerag.ingestion.chunking import Chunk, split_text
from securerag.ingestion.classification import Classification, classify
from securerag.models import Action, Level, ScanResult, require_text, validate_collection, validate_subject
from securerag.protocols import Embedder, Scanner, Secrets

MAX_TEXT_CHARS = 5_000_000
MAX_TITLE_CHARS = 1_000

Status = Literal["created", "replaced", "unchanged"]


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
    """Where it came from, kept sealed for citations."""
    key: str | None = None
    """Its identity in the collection: ingesting the same key again updates the same
    document (or does nothing if it is unchanged). None always creates a new one."""
    hidden: str = ""
    """Text no reader sees (hidden HTML): scanned for injection, never stored."""

    def __post_init__(self) -> None:
        validate_collection(self.collection)
        require_text(self.title, "the title")
        require_text(self.text, "the text")
        require_text(self.hidden, "the hidden text")
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
    source_mac: bytes | None
    content_mac: bytes
    title_scan: ScanResult | None = None


@dataclass(frozen=True, slots=True)
class IngestedDocument:
    """What was stored for one document."""

    document_id: uuid.UUID
    collection: str
    classification: Level
    chunks: int
    flagged: int
    withheld: int
    status: Status = "created"


def _merge_hidden(scan: ScanResult, hidden: ScanResult | None) -> ScanResult:
    """A chunk's verdict, raised by what the document hides from its readers."""
    if hidden is None or hidden.action == Action.ALLOW:
        return scan
    reasons = tuple(dict.fromkeys((*scan.reasons, *(f"hidden:{r}" for r in hidden.reasons))))
    if hidden.score <= scan.score:
        return replace(scan, reasons=reasons)
    return ScanResult(score=hidden.score, action=max(scan.action, hidden.action), reasons=reasons)


class Ingestor:
    """Turns `DocumentInput`s into sealed, embedded, scanned rows."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        scanner: Scanner,
        keyring: Keyring,
        audit: AuditLog,
        secrets: Secrets,
        max_tokens: int | None = None,
        overlap_tokens: int = 32,
    ) -> None:
        self._embedder = embedder
        self._scanner = scanner
        self._keyring = keyring
        self._audit = audit
        self._max_tokens = min(max_tokens or embedder.max_tokens, embedder.max_tokens)
        self._overlap = overlap_tokens
        self._mac_key = secrets.derive("content-mac")

    # -- identity ---------------------------------------------------------------
    def _mac(self, *parts: Any) -> bytes:
        body = json.dumps(parts, separators=(",", ":"), ensure_ascii=True).encode()
        return hmac.new(self._mac_key, body, hashlib.sha256).digest()

    def macs(self, doc: DocumentInput) -> tuple[bytes | None, bytes]:
        """The document's keyed identity (None without a key) and content MAC."""
        source = None if doc.key is None else self._mac("source", doc.collection, doc.key)
        content = self._mac(
            "content",
            doc.collection,
            doc.title,
            doc.text,
            doc.hidden,
            sorted(set(doc.acl)),
            None if doc.classification is None else doc.classification.label,
            doc.source,
            self._embedder.name,
            self._max_tokens,
            self._overlap,
        )
        return source, content

    def unchanged(
        self, conn: psycopg.Connection[Any], tenant_id: int, doc: DocumentInput
    ) -> uuid.UUID | None:
        """The id of a stored document identical to `doc`, so that its work can be skipped."""
        source, content = self.macs(doc)
        return None if source is None else store.find_unchanged(conn, tenant_id, source, content)

    # -- CPU work ---------------------------------------------------------------
    def _analyse(
        self, doc: DocumentInput
    ) -> tuple[Classification, list[Chunk], list[ScanResult], ScanResult]:
        classification = classify(doc.text, doc.classification)
        chunks = split_text(
            doc.text,
            max_tokens=self._max_tokens,
            overlap_tokens=self._overlap,
            count_tokens=self._embedder.count_tokens,
        )
        hidden = self._scanner.scan(doc.hidden) if doc.hidden.strip() else None
        title, *verdicts = self._scanner.scan_many([doc.title, *(c.text for c in chunks)])
        return classification, chunks, [_merge_hidden(v, hidden) for v in verdicts], title

    def prepare(self, doc: DocumentInput) -> PreparedDocument:
        """Classify, chunk, scan and embed one document (no database access)."""
        return self.prepare_many([doc])[0]

    def prepare_many(self, docs: Sequence[DocumentInput]) -> list[PreparedDocument]:
        """Like `prepare`, with one embedding call for all chunks of all `docs`."""
        analysed = [self._analyse(doc) for doc in docs]
        texts = [c.text for _, chunks, _, _ in analysed for c in chunks]
        vectors = self._embedder.embed(texts)
        out: list[PreparedDocument] = []
        offset = 0
        for doc, (classification, chunks, scans, title_scan) in zip(docs, analysed, strict=True):
            source, content = self.macs(doc)
            out.append(
                PreparedDocument(
                    doc,
                    classification,
                    tuple(chunks),
                    tuple(scans),
                    vectors[offset : offset + len(chunks)],
                    source,
                    content,
                    title_scan,
                )
            )
            offset += len(chunks)
        return out

    # -- database work ------------------------------------------------------------
    def store(
        self, conn: psycopg.Connection[Any], tenant_id: int, prepared: PreparedDocument, *, actor: str
    ) -> IngestedDocument:
        """Seal and write one document in the caller's admin transaction: created, or
        replacing the previous version of the same key, or nothing if unchanged."""
        replaced: uuid.UUID | None = None
        if prepared.source_mac is not None:
            existing = store.lock_source(conn, tenant_id, prepared.source_mac)
            if existing is not None and existing.content_mac == prepared.content_mac:
                return IngestedDocument(
                    existing.id,
                    existing.collection,
                    Level(existing.classification),
                    existing.n_chunks,
                    0,
                    0,
                    "unchanged",
                )
            if existing is not None:
                replaced = existing.id
                store.delete_document(conn, self._keyring, tenant_id, existing.id)
        document_id = store.write_document(
            conn, self._keyring, tenant_id, prepared, scanner_version=self._scanner.version
        )
        level = prepared.classification.level
        flagged = sum(1 for s in prepared.scans if s.action == Action.FLAG)
        withheld = sum(1 for s in prepared.scans if s.action == Action.WITHHOLD)
        self._audit.append(
            conn,
            tenant_id,
            actor=actor,
            action="document.ingest",
            detail={
                "document_id": str(document_id),
                "replaces": str(replaced) if replaced else None,
                "collection": prepared.input.collection,
                "classification": level.label,
                "chunks": len(prepared.chunks),
                "flagged": flagged,
                "withheld": withheld,
                "findings": prepared.classification.kinds,
            },
        )
        return IngestedDocument(
            document_id,
            prepared.input.collection,
            level,
            len(prepared.chunks),
            flagged,
            withheld,
            "replaced" if replaced else "created",
        )

    def delete(
        self, conn: psycopg.Connection[Any], tenant_id: int, document_id: uuid.UUID, *, actor: str
    ) -> bool:
        """Delete a document, its chunks and vectors, and destroy its key (admin transaction)."""
        if not store.delete_document(conn, self._keyring, tenant_id, document_id):
            return False
        self._audit.append(
            conn, tenant_id, actor=actor, action="document.delete", detail={"document_id": str(document_id)}
        )
        return True
