"""Ingesting files and folders: one transaction per document, one bad file never
stops or corrupts the rest, unchanged documents cost one lookup.

Documents are embedded in batches across files (the model is the bottleneck)
and stored one transaction each, so a crash or a kill never leaves half a
document visible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from securerag.db import tenant_transaction
from securerag.errors import SecureRagError
from securerag.ingestion.loaders import Skipped, SourceDocument, iter_files, load_file
from securerag.ingestion.pipeline import DocumentInput, Ingestor
from securerag.models import Level
from securerag.tenants import TenantRef

BATCH_CHARS = 200_000
"""Embed once this much text is queued (about 300-400 chunks)."""


@dataclass(slots=True)
class IngestSummary:
    """What an ingestion run did."""

    documents: int = 0
    chunks: int = 0
    flagged: int = 0
    replaced: int = 0
    unchanged: int = 0
    by_classification: dict[str, int] = field(default_factory=dict)
    document_ids: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The `securerag ingest --json` body."""
        return {
            "documents": self.documents,
            "chunks": self.chunks,
            "documents_by_classification": dict(sorted(self.by_classification.items())),
            "flagged_chunks": self.flagged,
            "document_ids": self.document_ids,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


def list_files(paths: Sequence[Path]) -> tuple[list[Path], list[Skipped]]:
    """The files to ingest and the ones that will be skipped."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for item in iter_files(paths):
        if isinstance(item, Skipped):
            skipped.append(item)
        else:
            files.append(item)
    return files, skipped


@dataclass(slots=True)
class _Run:
    conn: psycopg.Connection[Any]
    ingestor: Ingestor
    tenant: TenantRef
    actor: str
    summary: IngestSummary
    on_error: Callable[[str, str], None] | None
    pending: list[tuple[str, DocumentInput]] = field(default_factory=list)
    pending_chars: int = 0

    def fail(self, where: str, why: str) -> None:
        self.summary.failed.append((where, why))
        if self.on_error is not None:
            self.on_error(where, why)

    def add(self, where: str, doc: DocumentInput) -> None:
        with tenant_transaction(self.conn, self.tenant.id, access="admin") as tx:
            if self.ingestor.unchanged(tx, self.tenant.id, doc) is not None:
                self.summary.unchanged += 1
                return
        self.pending.append((where, doc))
        self.pending_chars += len(doc.text)
        if self.pending_chars >= BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        batch, self.pending, self.pending_chars = self.pending, [], 0
        if not batch:
            return
        try:
            prepared = self.ingestor.prepare_many([doc for _, doc in batch])
        except SecureRagError as exc:
            for where, _ in batch:
                self.fail(where, str(exc))
            return
        for (where, _), item in zip(batch, prepared, strict=True):
            try:
                with tenant_transaction(self.conn, self.tenant.id, access="admin") as tx:
                    stored = self.ingestor.store(tx, self.tenant.id, item, actor=self.actor)
            except SecureRagError as exc:
                self.fail(where, str(exc))
                continue
            s = self.summary
            if stored.status == "unchanged":  # stored by someone else since the lookup
                s.unchanged += 1
                continue
            s.documents += 1
            s.replaced += stored.status == "replaced"
            s.chunks += stored.chunks
            s.flagged += stored.flagged + stored.withheld
            s.by_classification[stored.classification.label] = (
                s.by_classification.get(stored.classification.label, 0) + 1
            )
            s.document_ids.append(str(stored.document_id))


def _document(
    source: SourceDocument, *, collection: str, acl: Sequence[str], classification: Level | None, path: Path
) -> DocumentInput:
    return DocumentInput(
        collection=source.collection or collection,
        title=source.title,
        text=source.text,
        acl=tuple(source.acl) if source.acl is not None else tuple(acl),
        classification=source.classification if source.classification is not None else classification,
        source=source.source,
        # The resolved path: the same file ingested from another folder is the same document.
        key=source.key.replace(str(path), str(path.resolve()), 1),
        hidden=source.hidden,
    )


def ingest_files(
    conn: psycopg.Connection[Any],
    ingestor: Ingestor,
    tenant: TenantRef,
    files: Sequence[Path],
    *,
    collection: str,
    acl: Sequence[str] = (),
    classification: Level | None = None,
    actor: str,
    on_file: Callable[[Path], None] | None = None,
    on_error: Callable[[str, str], None] | None = None,
) -> IngestSummary:
    """Ingest each file's documents; a failing file (or JSON line) is reported and the rest go on."""
    run = _Run(conn, ingestor, tenant, actor, IngestSummary(), on_error)
    for path in files:
        try:
            items = load_file(path)
        except SecureRagError as exc:
            run.fail(str(path), str(exc))
            items = []
        if not items and not any(where == str(path) for where, _ in run.summary.failed):
            run.summary.skipped.append((str(path), "no text found"))
        for item in items:
            if isinstance(item, Skipped):
                run.fail(str(item.path), item.reason)
                continue
            try:
                doc = _document(
                    item, collection=collection, acl=acl, classification=classification, path=path
                )
            except SecureRagError as exc:
                run.fail(item.source, str(exc))
                continue
            run.add(item.source, doc)
        if on_file is not None:
            on_file(path)
    run.flush()
    return run.summary
