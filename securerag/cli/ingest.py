"""`securerag ingest`: files to documents, with a progress bar on a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from securerag.db import tenant_transaction
from securerag.errors import InvalidInput
from securerag.ingestion.files import IngestSummary, ingest_files, list_files
from securerag.models import Level, validate_collection
from securerag.tenants import ensure_tenant

if TYPE_CHECKING:
    from securerag.runtime import Runtime


def run_ingest(
    rt: Runtime,
    paths: Sequence[Path],
    *,
    tenant: str,
    collection: str,
    acl: tuple[str, ...],
    classification: Level | None,
    actor: str,
    console: Console,
    show_progress: bool,
) -> IngestSummary:
    """Ingest `paths`, reporting each bad file on stderr as it happens."""
    validate_collection(collection)
    files, skipped = list_files(paths)
    for item in skipped:
        console.print(
            f"{'error' if item.failed else 'skipped'}: {escape(str(item.path))}: {escape(item.reason)}",
            markup=True,
        )
    if not files and not skipped:
        raise InvalidInput("nothing to ingest")
    with rt.connect() as conn:
        ref = ensure_tenant(conn, tenant)
        with tenant_transaction(conn, ref.id, access="admin") as tx:
            rt.keyring.tenant_key(tx, ref.id)
        ingestor = rt.ingestor  # loads the model before the bar starts
        progress = Progress(
            TextColumn("ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[name]}"),
            console=console,
            transient=True,
            disable=not (show_progress and console.is_terminal),
        )
        with progress:
            task = progress.add_task("ingest", total=len(files), name="")
            summary = ingest_files(
                conn,
                ingestor,
                ref,
                files,
                collection=collection,
                acl=acl,
                classification=classification,
                actor=actor,
                on_file=lambda p: progress.update(task, advance=1, name=p.name),
                on_error=lambda where, why: console.print(f"error: {escape(where)}: {escape(why)}"),
            )
    summary.skipped = [(str(s.path), s.reason) for s in skipped if not s.failed]
    summary.failed += [(str(s.path), s.reason) for s in skipped if s.failed]
    return summary
