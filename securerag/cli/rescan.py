"""`securerag rescan`: stored verdicts brought up to the running scanner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console

from securerag.cli.batchwork import chosen_tenants, document_progress
from securerag.ingestion.rescan import rescan_tenant

if TYPE_CHECKING:
    from securerag.runtime import Runtime


def rescan(rt: Runtime, *, tenant: str | None, actor: str, console: Console) -> list[dict[str, Any]]:
    """Rescan the stale verdicts of one tenant, or of every tenant; one summary per tenant
    (`console` shows the progress bars)."""
    summaries = []
    with rt.connect() as conn:
        for ref in chosen_tenants(rt, conn, tenant):
            progress, started, advanced = document_progress(f"rescanning {ref.name}", console)
            with progress:
                report = rescan_tenant(
                    conn,
                    rt.keyring,
                    rt.scanner,
                    rt.audit,
                    ref,
                    actor=actor,
                    on_start=started,
                    on_document=advanced,
                )
            summaries.append(
                {
                    "tenant": ref.name,
                    "scanner_version": rt.scanner.version,
                    "documents": report.documents,
                    "chunks": report.chunks,
                    "changed": report.changed,
                    "failed": list(report.failed),
                }
            )
    return summaries
