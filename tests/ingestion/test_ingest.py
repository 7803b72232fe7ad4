"""Ingesting files into the real database: idempotent, atomic, no plaintext left anywhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from securerag.config import Settings
from securerag.ingestion.files import IngestSummary, ingest_files, list_files
from securerag.runtime import Runtime
from securerag.tenants import TenantRef


def _ingest(
    runtime: Runtime, conn: psycopg.Connection[Any], tenant: TenantRef, folder: Path, collection: str = "docs"
) -> IngestSummary:
    files, _ = list_files([folder])
    return ingest_files(conn, runtime.ingestor, tenant, files, collection=collection, actor="test")


def _doc_count(admin_conn: psycopg.Connection[Any], tenant: TenantRef) -> int:
    row = admin_conn.execute("SELECT count(*) FROM securerag.documents WHERE tenant_id = %s", (tenant.id,))
    return int(row.fetchone()[0])


def test_reingesting_unchanged_files_is_a_noop(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    tmp_path: Path,
) -> None:
    """The second run of the same folder stores nothing and reports every document unchanged."""
    tenant = make_tenant()
    for i in range(3):
        (tmp_path / f"{i}.md").write_text(f"# Doc {i}\n\nBody of document {i}.\n")
    first = _ingest(runtime, conn, tenant, tmp_path)
    ids = set(first.document_ids)
    second = _ingest(runtime, conn, tenant, tmp_path)
    assert (first.documents, second.documents, second.unchanged) == (3, 0, 3)
    assert _doc_count(admin_conn, tenant) == 3
    assert {
        str(r[0])
        for r in admin_conn.execute(
            "SELECT id FROM securerag.documents WHERE tenant_id = %s", (tenant.id,)
        ).fetchall()
    } == ids


def test_a_changed_file_replaces_its_document(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    tmp_path: Path,
) -> None:
    """Changing a file replaces that document (new chunks, old ones and their key gone)."""
    tenant = make_tenant(policy="p, bob, {T}, collection:*, read\np, bob, {T}, clearance:restricted, read\n")
    (tmp_path / "a.md").write_text("# A\n\nOld hotel limit is 150.\n")
    (tmp_path / "b.md").write_text("# B\n\nUntouched.\n")
    first = _ingest(runtime, conn, tenant, tmp_path)
    old_key = admin_conn.execute(
        "SELECT key_id FROM securerag.documents WHERE id = %s", (first.document_ids[0],)
    ).fetchone()[0]
    (tmp_path / "a.md").write_text("# A\n\nNew hotel limit is 200.\n")
    second = _ingest(runtime, conn, tenant, tmp_path)
    assert (second.documents, second.replaced, second.unchanged) == (1, 1, 1)
    assert _doc_count(admin_conn, tenant) == 2
    texts = [c.text for c in runtime.retriever.retrieve(conn, tenant, "bob", "hotel limit", k=5).chunks]
    assert any("200" in t for t in texts)
    assert not any("150" in t for t in texts)
    assert admin_conn.execute(
        "SELECT count(*) FROM securerag.data_keys WHERE id = %s", (old_key,)
    ).fetchone() == (0,)


def test_same_file_in_another_collection_is_another_document(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    tmp_path: Path,
) -> None:
    """A document's identity is its source within a collection."""
    tenant = make_tenant()
    (tmp_path / "a.md").write_text("# A\n\ntext\n")
    _ingest(runtime, conn, tenant, tmp_path, "one")
    _ingest(runtime, conn, tenant, tmp_path, "two")
    assert _doc_count(admin_conn, tenant) == 2


def test_empty_files_are_skipped_with_a_reason(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    tmp_path: Path,
) -> None:
    """A file with no text is reported as skipped, not failed."""
    (tmp_path / "empty.txt").write_text("   \n")
    summary = _ingest(runtime, conn, make_tenant(), tmp_path)
    assert summary.skipped == [(str(tmp_path / "empty.txt"), "no text found")]
    assert summary.failed == []


@pytest.mark.slow
def test_a_killed_ingest_leaves_no_partial_document(
    cli_env: dict[str, str],
    admin_conn: psycopg.Connection[Any],
    tmp_path: Path,
    db: Any,
) -> None:
    """SIGKILL in the middle of an ingest: every stored document is complete, nothing half-written."""
    tenant = f"kill-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "many"
    folder.mkdir()
    paragraph = "Travel expenses are reimbursed within thirty days of the claim. " * 40
    for i in range(60):
        (folder / f"{i:03}.md").write_text(f"# Document {i}\n\n" + "\n\n".join([paragraph] * 6))
    proc = subprocess.Popen(
        [sys.executable, "-m", "securerag", "ingest", str(folder), "--tenant", tenant, "--collection", "c"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            row = admin_conn.execute(
                "SELECT count(*) FROM securerag.documents d JOIN securerag.tenants t ON t.id = d.tenant_id"
                " WHERE t.name = %s",
                (tenant,),
            ).fetchone()
            if row and row[0] >= 2:
                break
            assert proc.poll() is None, "ingest ended before it could be interrupted"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    rows = admin_conn.execute(
        "SELECT d.id, d.n_chunks, (SELECT count(*) FROM securerag.chunks c"
        " WHERE c.tenant_id = d.tenant_id AND c.document_id = d.id)"
        " FROM securerag.documents d JOIN securerag.tenants t ON t.id = d.tenant_id WHERE t.name = %s",
        (tenant,),
    ).fetchall()
    assert 2 <= len(rows) < 60
    assert all(n == have and n > 0 for _, n, have in rows)
    stats = admin_conn.execute(
        "SELECT coalesce(sum(s.n_chunks), 0) FROM securerag.collection_stats s"
        " JOIN securerag.tenants t ON t.id = s.tenant_id WHERE t.name = %s",
        (tenant,),
    ).fetchone()
    assert stats == (sum(n for _, n, _ in rows),)


CANARY = "OKAPI-CANARY-5531"


def test_no_plaintext_in_any_database_file(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
    settings: Settings,
) -> None:
    """After ingesting and deleting documents that hold a canary, no file of the database
    (tables, indexes, WAL) holds it in plaintext."""
    if not settings.embedded:
        pytest.skip("needs the embedded server's data folder")
    tenant = make_tenant()
    # Positive control: collection names are stored in clear by design, so this one must be found.
    clear = f"clear-{uuid.uuid4().hex[:12]}"
    kept = ingest(tenant, clear, f"Keep {CANARY} here. " * 30, title=f"Title {CANARY}")
    gone = ingest(tenant, clear, f"Delete {CANARY} now. " * 30)
    from securerag.db import tenant_transaction

    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        assert runtime.ingestor.delete(tx, tenant.id, gone.document_id, actor="test")
    assert kept.chunks > 0
    admin_conn.execute("CHECKPOINT")
    needles = [CANARY.encode(), CANARY.encode("utf-16-le")]
    hits, control = [], []
    for path in (settings.home / "pgdata").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [str(path) for needle in needles if needle in data]
            control += [str(path)] if clear.encode() in data else []
    assert control, "the scan found not even the plaintext collection name: it reads nothing"
    assert hits == []
