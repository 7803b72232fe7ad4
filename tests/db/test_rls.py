"""Row-level security and the query role: a query that forgets its filter still sees nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from securerag.authz import apply_read_filter, compile_read_filter
from securerag.db import Database, tenant_transaction
from securerag.db.checks import check_query_role
from securerag.errors import ConfigError
from securerag.runtime import Runtime

POLICY = """
p, role:fin, {T}, collection:finance/*, read
p, role:fin, {T}, clearance:confidential, read
g, alice, role:fin, {T}
"""

TENANT_TABLES = (
    "documents",
    "chunks",
    "collection_stats",
    "casbin_rule",
    "data_keys",
    "api_keys",
    "memory_sessions",
    "memory_entries",
    "audit_log",
    "tenants",
)


def test_query_role_is_subject_to_rls(conn: psycopg.Connection[Any]) -> None:
    """The application's role is not a superuser, owns nothing and cannot bypass RLS."""
    row = conn.execute(
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == ("securerag_app", False, False)
    check_query_role(conn)


def test_start_up_check_refuses_a_superuser(db: Database) -> None:
    """Connected as the embedded server's superuser, the start-up check refuses to run."""
    with db.connect_admin() as admin, pytest.raises(ConfigError, match="superuser"):
        check_query_role(admin)


def test_start_up_check_refuses_unforced_rls(db: Database, admin_conn: psycopg.Connection[Any]) -> None:
    """If RLS is not forced on a table, the start-up check refuses to run."""
    admin_conn.execute("ALTER TABLE securerag.documents NO FORCE ROW LEVEL SECURITY")
    try:
        with db.connect() as conn, pytest.raises(ConfigError, match="not enabled and forced"):
            check_query_role(conn)
    finally:
        admin_conn.execute("ALTER TABLE securerag.documents FORCE ROW LEVEL SECURITY")
    with db.connect() as conn:
        check_query_role(conn)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_every_tenant_table_forces_rls(admin_conn: psycopg.Connection[Any], table: str) -> None:
    """RLS is enabled and forced on every tenant-scoped table."""
    row = admin_conn.execute(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
        (f"securerag.{table}",),
    ).fetchone()
    assert row == (True, True)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_no_context_sees_nothing(
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    runtime: Runtime,
    make_tenant: Callable[..., Any],
    ingest: Callable[..., Any],
    table: str,
) -> None:
    """Without tenant settings, every tenant table reads as empty to the query role."""
    tenant = make_tenant(policy=POLICY)
    ingest(tenant, "finance/q1", "Revenue grew.")
    with tenant_transaction(conn, tenant.id, access="admin", user="alice") as tx:
        runtime.api_keys.create(tx, tenant, "alice")
        runtime.memory.append(tx, tenant, "alice", "s1", role="user", content="hello")
    total = admin_conn.execute(f"SELECT count(*) FROM securerag.{table}").fetchone()
    assert total is not None
    assert total[0] > 0
    assert conn.execute(f"SELECT count(*) FROM securerag.{table}").fetchone() == (0,)


def test_settings_do_not_outlive_their_transaction(
    conn: psycopg.Connection[Any], make_tenant: Callable[..., Any], ingest: Callable[..., Any]
) -> None:
    """Context set in one transaction is gone in the next on the same connection."""
    tenant = make_tenant(policy=POLICY)
    ingest(tenant, "finance/q1", "Revenue grew.")
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        seen = tx.execute("SELECT count(*) FROM securerag.chunks").fetchone()
    assert seen is not None
    assert seen[0] >= 1
    assert conn.execute("SELECT count(*) FROM securerag.chunks").fetchone() == (0,)
    assert conn.execute("SELECT current_setting('securerag.tenant_id', true)").fetchone() in (("",), (None,))


def test_other_tenant_invisible_even_to_admin_access(
    conn: psycopg.Connection[Any], make_tenant: Callable[..., Any], ingest: Callable[..., Any]
) -> None:
    """Whole-tenant (admin) access of tenant A sees none of tenant B's rows."""
    a, b = make_tenant(policy=POLICY), make_tenant(policy=POLICY)
    ingest(b, "finance/q1", "B's secret revenue.")
    with tenant_transaction(conn, a.id, access="admin") as tx:
        for table in ("documents", "chunks", "data_keys", "casbin_rule", "audit_log"):
            row = tx.execute(f"SELECT count(*) FROM securerag.{table} WHERE tenant_id = %s", (b.id,))
            assert row.fetchone() == (0,), table


def test_insert_into_other_tenant_is_refused(
    conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """A row written with another tenant's id violates the policy's WITH CHECK."""
    a, b = make_tenant(), make_tenant()
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        tenant_transaction(conn, a.id, access="admin") as tx,
    ):
        tx.execute(
            "INSERT INTO securerag.casbin_rule (tenant_id, ptype, v0, v1, v2)"
            " VALUES (%s, 'g', 'eve', 'role:x', %s)",
            (b.id, b.name),
        )


def test_read_access_cannot_write(conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]) -> None:
    """Read access (a retrieval) cannot change policy, documents or keys."""
    tenant = make_tenant()
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        tenant_transaction(conn, tenant.id, access="read") as tx,
    ):
        tx.execute(
            "INSERT INTO securerag.casbin_rule (tenant_id, ptype, v0, v1, v2)"
            " VALUES (%s, 'g', 'eve', 'role:admin', %s)",
            (tenant.id, tenant.name),
        )


def test_partitions_cannot_be_read_directly(
    conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """A tenant's chunk partition is reachable only through the parent and its policies."""
    tenant = make_tenant()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"SELECT count(*) FROM securerag.chunks_t{tenant.id}")


def test_query_without_where_returns_only_readable_rows(
    conn: psycopg.Connection[Any],
    runtime: Runtime,
    make_tenant: Callable[..., Any],
    ingest: Callable[..., Any],
) -> None:
    """With a reader's filter set, a SELECT with no WHERE returns exactly the readable chunks."""
    from securerag.models import Level

    tenant = make_tenant(policy=POLICY)
    ingest(tenant, "finance/q1", "readable finance text", level=Level.CONFIDENTIAL)
    ingest(tenant, "finance/q2", "too secret", level=Level.RESTRICTED)
    ingest(tenant, "hr/salaries", "not allowed collection", level=Level.PUBLIC)
    ingest(tenant, "hr/shared", "shared with alice", level=Level.INTERNAL, acl=("alice",))
    with tenant_transaction(conn, tenant.id, access="read", user="alice") as tx:
        policy = runtime.authorizer.policy(tx, tenant)
        apply_read_filter(tx, compile_read_filter(policy, "alice"))
        rows = tx.execute("SELECT collection FROM securerag.chunks ORDER BY collection").fetchall()
        docs = tx.execute("SELECT collection FROM securerag.documents ORDER BY collection").fetchall()
    assert [r[0] for r in rows] == ["finance/q1", "hr/shared"]
    assert [r[0] for r in docs] == ["finance/q1", "hr/shared"]


def test_read_access_without_filter_sees_nothing(
    conn: psycopg.Connection[Any], make_tenant: Callable[..., Any], ingest: Callable[..., Any]
) -> None:
    """Read access with the tenant set but no reader filter fails closed."""
    tenant = make_tenant(policy=POLICY)
    ingest(tenant, "finance/q1", "text")
    with tenant_transaction(conn, tenant.id, access="read") as tx:
        assert tx.execute("SELECT count(*) FROM securerag.chunks").fetchone() == (0,)


def test_audit_log_is_append_only_for_the_query_role(
    conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """The query role may insert audit entries but never update or delete them."""
    tenant = make_tenant(policy=POLICY)  # policy load wrote an audit entry
    for statement in ("UPDATE securerag.audit_log SET actor = 'x'", "DELETE FROM securerag.audit_log"):
        with (
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            tenant_transaction(conn, tenant.id, access="admin") as tx,
        ):
            tx.execute(statement)


def _reader(conn: psycopg.Connection[Any], runtime: Runtime, tenant: Any, user: str) -> Any:
    ctx = tenant_transaction(conn, tenant.id, access="read", user=user)
    tx = ctx.__enter__()
    apply_read_filter(tx, runtime.authorizer.grants(tx, tenant, user).read)
    return ctx, tx


def test_readers_see_only_their_own_metadata(
    conn: psycopg.Connection[Any],
    runtime: Runtime,
    make_tenant: Callable[..., Any],
    ingest: Callable[..., Any],
) -> None:
    """In read mode: stats only of readable collections, shares only of one's subjects, keys only
    of readable documents, no API keys and no audit rows."""
    from securerag.models import Level

    tenant = make_tenant(policy=POLICY)
    ingest(tenant, "finance/q1", "mine", level=Level.CONFIDENTIAL)
    ingest(tenant, "hr/secret", "not mine", level=Level.INTERNAL)
    ingest(tenant, "hr/shared-elsewhere", "shared with bob", level=Level.PUBLIC, acl=("bob",))
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        runtime.api_keys.create(tx, tenant, "alice")
    ctx, tx = _reader(conn, runtime, tenant, "alice")
    try:
        stats = [r[0] for r in tx.execute("SELECT collection FROM securerag.collection_stats").fetchall()]
        shares = tx.execute("SELECT count(*) FROM securerag.document_shares").fetchone()
        doc_keys = tx.execute(
            "SELECT count(*) FROM securerag.data_keys WHERE purpose = 'document'"
        ).fetchone()
        api_keys = tx.execute("SELECT count(*) FROM securerag.api_keys").fetchone()
        audit = tx.execute("SELECT count(*) FROM securerag.audit_log").fetchone()
    finally:
        ctx.__exit__(None, None, None)
    assert stats == ["finance/q1"]
    assert shares == (0,)
    assert doc_keys == (1,)
    assert api_keys == (0,)
    assert audit == (0,)


@pytest.mark.parametrize("table", ["collection_stats", "document_shares"])
def test_trigger_maintained_tables_are_read_only_for_the_query_role(
    conn: psycopg.Connection[Any], make_tenant: Callable[..., Any], table: str
) -> None:
    """Only the documents trigger writes the estimate's tables; the query role cannot."""
    tenant = make_tenant()
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        tenant_transaction(conn, tenant.id, access="admin") as tx,
    ):
        tx.execute(f"DELETE FROM securerag.{table}")
