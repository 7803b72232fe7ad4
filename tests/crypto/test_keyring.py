"""Envelope keys in the database: rotation, its race with ingestion, destruction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from securerag.db import Database, tenant_transaction
from securerag.ingestion import DocumentInput
from securerag.models import Level
from securerag.runtime import Runtime


def test_rotation_rewraps_and_everything_still_decrypts(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
    ingest: Callable[..., Any],
) -> None:
    """After rotation the old tenant key is gone and every document still opens."""
    tenant = make_tenant(policy="p, bob, {T}, collection:*, read\n")
    ingest(tenant, "a/b", "rotate me please", level=Level.PUBLIC)
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        old = runtime.keyring.tenant_key(tx, tenant.id).id
        new, rewrapped = runtime.keyring.rotate_tenant_key(tx, tenant.id)
        remaining = [
            r[0] for r in tx.execute("SELECT id FROM securerag.data_keys WHERE purpose = 'tenant'").fetchall()
        ]
    assert rewrapped >= 1
    assert remaining == [new] != [old]
    runtime.keyring.clear_cache()
    texts = [c.text for c in runtime.retriever.retrieve(conn, tenant, "bob", "rotate", k=5).chunks]
    assert texts == ["rotate me please"]


def _rotate_with_timeout(runtime: Runtime, conn: psycopg.Connection[Any], tenant: Any) -> None:
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        tx.execute("SET LOCAL lock_timeout = '200ms'")
        runtime.keyring.rotate_tenant_key(tx, tenant.id)


def test_rotation_waits_for_an_ingestion_in_flight(
    runtime: Runtime,
    db: Database,
    make_tenant: Callable[..., Any],
) -> None:
    """A rotation cannot retire the tenant key under a document key being created."""
    tenant = make_tenant()
    prepared = runtime.ingestor.prepare(DocumentInput(collection="a", title="t", text="in flight"))
    with db.connect() as ingesting, db.connect() as rotating:
        with tenant_transaction(ingesting, tenant.id, access="admin") as tx:
            runtime.ingestor.store(tx, tenant.id, prepared, actor="test")  # holds the shared lock
            with pytest.raises(psycopg.errors.LockNotAvailable):
                _rotate_with_timeout(runtime, rotating, tenant)
        with tenant_transaction(rotating, tenant.id, access="admin") as other:
            _, rewrapped = runtime.keyring.rotate_tenant_key(other, tenant.id)
    assert rewrapped == 1


def test_a_wrapping_key_cannot_be_deleted_under_its_children(
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
    ingest: Callable[..., Any],
) -> None:
    """The schema refuses to delete a tenant key that still wraps document keys."""
    tenant = make_tenant()
    ingest(tenant, "a", "x")
    with pytest.raises(psycopg.errors.RestrictViolation):
        admin_conn.execute(
            "DELETE FROM securerag.data_keys WHERE tenant_id = %s AND purpose = 'tenant'", (tenant.id,)
        )


def test_document_delete_destroys_its_key(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
    ingest: Callable[..., Any],
) -> None:
    """Deleting a document removes its chunks, its vectors and its wrapped key."""
    tenant = make_tenant()
    doc = ingest(tenant, "a", "soon gone")
    key_id = admin_conn.execute(
        "SELECT key_id FROM securerag.documents WHERE id = %s", (doc.document_id,)
    ).fetchone()[0]
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        assert runtime.ingestor.delete(tx, tenant.id, doc.document_id, actor="test")
    for table, column in (("chunks", "document_id"), ("documents", "id")):
        count = admin_conn.execute(
            f"SELECT count(*) FROM securerag.{table} WHERE {column} = %s", (doc.document_id,)
        ).fetchone()
        assert count == (0,)
    assert admin_conn.execute(
        "SELECT count(*) FROM securerag.data_keys WHERE id = %s", (key_id,)
    ).fetchone() == (0,)
