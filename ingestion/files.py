"""Ingesting files and folders: one transaction per document, one bad file never
stops or corrupts the rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from securerag.db import tenant_transaction
from securerag.errors import SecureRagError
from securerag.ingestion.loaders import Skipped, iter_files, load_file
from securerag.ingestion.pipeline import DocumentInput, Ingestor
from securerag.models import Level
from securerag.tenants import TenantRef

Progress = Callable[[Path], None]


@dataclass(slots=True)
class IngestSummary:
    """What an ingestion run did, file by file."""

    documents: int = 0
    chunks: int = 0
    flagged: int = 0
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
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


def list_files(paths: Sequence[Path]) -> tuple[list[Path], list[Skipped]]:
    """The files to ingest and the ones that will be skipped."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for item in iter_files(paths):
        (skipped if isinstance(item, Skipped) else files).append(item)  # type: ignore[arg-type]
    return files, skipped


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
    on_file: Progress | None = None,
    on_error: Callable[[Path, str], None] | None = None,
) -> IngestSummary:
    """Ingest each file's documents; a failing file is reported and the rest go on."""
    summary = IngestSummary()
    for path in files:
        try:
            for source in load_file(path):
                doc = DocumentInput(
                    collection=collection,
                    title=source.title,
                    text=source.text,
                    acl=tuple(acl),
                    classification=classification,
                    source=source.source,
                )
                prepared = ingestor.prepare(doc)
                with tenant_transaction(conn, tenant.id, access="admin") as tx:
                    stored = ingestor.store(tx, tenant.id, prepared, actor=actor)
                summary.documents += 1
                summary.chunks += stored.chunks
                summary.flagged += stored.flagged + stored.withheld
                label = stored.classification.label
                summary.by_classification[label] = summary.by_classification.get(label, 0) + 1
                summary.document_ids.append(str(stored.document_id))
        except SecureRagError as exc:
            summary.failed.append((str(path), str(exc)))
            if on_error is not None:
                on_error(path, str(exc))
        if on_file is not None:
            on_file(path)
    return summary
