"""Envelope keys in the database: rotation, its race with ingestion, destruction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from securerag.crypto.aead import Aead, sealed_key_id
from securerag.crypto.binding import chunk_aad
from securerag.db import Database, tenant_transaction
from securerag.errors import DecryptionError
from securerag.ingestion import DocumentInput
from securerag.ingestion.rotation import rekey_document, rotate_tenant
from securerag.models import Level
from securerag.runtime import Runtime


def _sealed(admin_conn: psycopg.Connection[Any], tenant: Any) -> dict[Any, bytes]:
    rows = admin_conn.execute("SELECT id, sealed FROM securerag.chunks WHERE tenant_id = %s", (tenant.id,))
    return {r[0]: bytes(r[1]) for r in rows.fetchall()}


def _key_ids(admin_conn: psycopg.Connection[Any], tenant: Any) -> set[Any]:
    rows = admin_conn.execute("SELECT id FROM securerag.data_keys WHERE tenant_id = %s", (tenant.id,))
    return {r[0] for r in rows.fetchall()}


def _texts(runtime: Runtime, conn: psycopg.Connection[Any], tenant: Any) -> list[str]:
    runtime.keyring.clear_cache()
    return sorted(
        c.text for c in runtime.retriever.retrieve(conn, tenant, "bob", "rotation text", k=10).chunks
    )


POLICY = "p, bob, {T}, collection:*, read\np, bob, {T}, clearance:restricted, read\n"


def test_rotation_reencrypts_every_document(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
    ingest: Callable[..., Any],
) -> None:
    """Every chunk is sealed again under new keys; every old key is destroyed; all still reads."""
    tenant = make_tenant(policy=POLICY)
    for i in range(3):
        ingest(tenant, "a", f"rotation text number {i}")
    before_sealed, before_keys = _sealed(admin_conn, tenant), _key_ids(admin_conn, tenant)
    texts = _texts(runtime, conn, tenant)
    report = rotate_tenant(conn, runtime.keyring, runtime.audit, tenant, actor="test")
    assert (report.started, report.documents, report.failed) == (True, 3, ())
    after_sealed, after_keys = _sealed(admin_conn, tenant), _key_ids(admin_conn, tenant)
    assert set(after_sealed) == set(before_sealed)
    assert all(after_sealed[c] != before_sealed[c] for c in before_sealed)
    assert not before_keys & after_keys
    assert _texts(runtime, conn, tenant) == texts


def test_old_ciphertext_does_not_open_with_the_remaining_keys(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
    ingest: Callable[..., Any],
) -> None:
    """A copy of a chunk's ciphertext taken before a rotation opens with no key left afterwards."""
    tenant = make_tenant(policy=POLICY)
    doc = ingest(tenant, "a", "rotation text kept as an old copy")
    [(chunk_id, old)] = _sealed(admin_conn, tenant).items()
    aad = chunk_aad(
        tenant_id=tenant.id,
        document_id=doc.document_id,
        chunk_id=chunk_id,
        ordinal=0,
        collection="a",
        classification=int(Level.INTERNAL),
        acl=(),
    )
    rotate_tenant(conn, runtime.keyring, runtime.audit, tenant, actor="test")
    runtime.keyring.clear_cache()
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        remaining = runtime.keyring.keys(tx, tenant.id, _key_ids(admin_conn, tenant))
    assert remaining
    assert sealed_key_id(old) not in remaining
    for key in remaining.values():
        with pytest.raises(DecryptionError):
            Aead(key).open(old, aad=aad)


def test_an_interrupted_rotation_resumes(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
    ingest: Callable[..., Any],
) -> None:
    """Stopped after one document, everything still reads; running again finishes the rest."""
    tenant = make_tenant(policy=POLICY)
    docs = [ingest(tenant, "a", f"rotation text number {i}") for i in range(3)]
    texts = _texts(runtime, conn, tenant)
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        _, started = runtime.keyring.retire_tenant_key(tx, tenant.id)
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        rekey_document(tx, runtime.keyring, tenant.id, docs[0].document_id)
    assert started
    assert _texts(runtime, conn, tenant) == texts  # half old keys, half new: all readable
    report = rotate_tenant(conn, runtime.keyring, runtime.audit, tenant, actor="test")
    assert (report.started, report.documents, report.retired_keys_destroyed) == (False, 2, 1)
    assert _texts(runtime, conn, tenant) == texts
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        assert runtime.keyring.retired_keys(tx, tenant.id) == []


def _rotate_with_timeout(runtime: Runtime, conn: psycopg.Connection[Any], tenant: Any) -> None:
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        tx.execute("SET LOCAL lock_timeout = '200ms'")
        runtime.keyring.retire_tenant_key(tx, tenant.id)


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
        report = rotate_tenant(rotating, runtime.keyring, runtime.audit, tenant, actor="test")
    assert report.documents == 1


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
