"""Trying to read what one may not, on the real database through the real retrieval path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from securerag.db import tenant_transaction
from securerag.models import Level
from securerag.retrieval.search import HNSW_QUERY
from securerag.runtime import Runtime
from securerag.tenants import TenantRef

SAME_NAMES = """
g, alice, role:fin, {T}
p, role:fin, {T}, collection:finance/*, read
p, role:fin, {T}, clearance:confidential, read
"""


def _read(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    tenant: TenantRef,
    user: str,
    query: str = "quarterly numbers",
    k: int = 20,
) -> list[str]:
    return [c.text for c in runtime.retriever.retrieve(conn, tenant, user, query, k=k).chunks]


def test_identical_names_in_two_tenants_never_cross(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
) -> None:
    """Same user, role and collection names in two tenants: each alice sees only her tenant."""
    a, b = make_tenant(policy=SAME_NAMES), make_tenant(policy=SAME_NAMES)
    ingest(a, "finance/q1", "quarterly numbers of tenant A")
    ingest(b, "finance/q1", "quarterly numbers of tenant B")
    assert _read(runtime, conn, a, "alice") == ["quarterly numbers of tenant A"]
    assert _read(runtime, conn, b, "alice") == ["quarterly numbers of tenant B"]


def test_acl_in_other_tenant_does_not_share(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
) -> None:
    """A document in tenant B shared with 'alice' is not visible to alice of tenant A."""
    a, b = make_tenant(policy=SAME_NAMES), make_tenant(policy=SAME_NAMES)
    ingest(b, "hr/private", "B's note shared with alice", acl=("alice",), level=Level.PUBLIC)
    assert _read(runtime, conn, a, "alice", "note shared") == []
    assert _read(runtime, conn, b, "alice", "note shared") == ["B's note shared with alice"]


def test_acl_share_never_lifts_clearance(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
) -> None:
    """A restricted document shared with a confidential-cleared user stays unreadable (no read-up)."""
    tenant = make_tenant(policy=SAME_NAMES)
    ingest(
        tenant, "board/minutes", "restricted board minutes", acl=("alice", "role:fin"), level=Level.RESTRICTED
    )
    ingest(tenant, "board/agenda", "confidential board agenda", acl=("role:fin",), level=Level.CONFIDENTIAL)
    assert _read(runtime, conn, tenant, "alice", "board") == ["confidential board agenda"]


def test_deny_beats_allow_and_share(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
) -> None:
    """A deny on any of the user's subjects beats an allow and an acl share."""
    tenant = make_tenant(policy=SAME_NAMES + "p, role:fin, {T}, collection:finance/payroll/*, read, deny\n")
    ingest(tenant, "finance/q1", "allowed quarterly numbers")
    ingest(tenant, "finance/payroll/2024", "payroll quarterly numbers", acl=("alice",))
    ingest(tenant, "finance/payroll/2025", "payroll shared to the role", acl=("role:fin",))
    assert _read(runtime, conn, tenant, "alice") == ["allowed quarterly numbers"]


@pytest.mark.parametrize(
    ("glob", "visible", "invisible"),
    [
        ("a_b/*", "a_b/x", "axb/x"),
        ("100%/*", "100%/x", "1000/x"),
        ("back\\slash/*", "back\\slash/x", "backslash/x"),
        ("fin*", "finance", "fi"),
    ],
    ids=["underscore", "percent", "backslash", "mid-segment-prefix"],
)
def test_like_metacharacters_match_only_themselves(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
    glob: str,
    visible: str,
    invisible: str,
) -> None:
    """`%`, `_` and `\\` in a glob are literal: the LIKE twin of the allowed collection stays hidden."""
    tenant = make_tenant(policy=f"p, bob, {{T}}, collection:{glob}, read\n")
    ingest(tenant, visible, "visible text", level=Level.PUBLIC)
    ingest(tenant, invisible, "invisible text", level=Level.PUBLIC)
    assert _read(runtime, conn, tenant, "bob", "text") == ["visible text"]


def test_nested_role_share_is_honoured(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
) -> None:
    """A share to a role the user reaches through nested roles grants the read."""
    tenant = make_tenant(policy="g, bob, role:a, {T}\ng, role:a, role:b, {T}\ng, role:b, role:c, {T}\n")
    ingest(tenant, "misc/x", "shared three roles up", acl=("role:c",), level=Level.PUBLIC)
    assert _read(runtime, conn, tenant, "bob", "shared") == ["shared three roles up"]


def _policy_cli(env: dict[str, str], verb: str, tenant: str, lines: str, tmp_path: Path) -> None:
    path = tmp_path / f"{verb}.csv"
    path.write_text(lines)
    result = subprocess.run(
        [sys.executable, "-m", "securerag", "policy", verb, str(path), "--tenant", tenant],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_policy_changes_from_another_process_apply_to_the_next_query(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Revocation and grants made by another process are in force for this process's next query."""
    tenant = make_tenant(policy=SAME_NAMES)
    ingest(tenant, "finance/q1", "quarterly numbers")
    ingest(tenant, "legal/q1", "legal quarterly numbers", level=Level.PUBLIC)
    assert _read(runtime, conn, tenant, "alice") == ["quarterly numbers"]  # policy cached here now
    _policy_cli(cli_env, "remove", tenant.name, f"g, alice, role:fin, {tenant.name}\n", tmp_path)
    assert _read(runtime, conn, tenant, "alice") == []  # revoked: the very next query
    _policy_cli(
        cli_env, "load", tenant.name, f"p, alice, {tenant.name}, collection:legal/*, read\n", tmp_path
    )
    assert _read(runtime, conn, tenant, "alice") == ["legal quarterly numbers"]


def test_vector_query_without_settings_returns_nothing(
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
) -> None:
    """The production k-NN query, run with no context at all, returns no rows."""
    tenant = make_tenant(policy=SAME_NAMES)
    ingest(tenant, "finance/q1", "quarterly numbers")
    params = {
        "tenant": tenant.id,
        "clearance": 3,
        "allow": ["%"],
        "deny": [],
        "subjects": ["alice"],
        "q": np.ones(384, dtype=np.float32) / np.sqrt(384),
        "n": 10,
        "k": 10,
    }
    # Generous parameters, but no transaction settings: RLS has nothing to admit.
    assert conn.execute(HNSW_QUERY, params).fetchall() == []


def test_a_forged_wider_filter_is_cut_back_by_rls(
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., TenantRef],
    ingest: Callable[..., Any],
) -> None:
    """If the query's own WHERE were wrong (wider than the reader's filter), RLS still holds."""
    tenant = make_tenant(policy=SAME_NAMES)
    ingest(tenant, "finance/q1", "quarterly numbers")
    ingest(tenant, "hr/secret", "hr secret", level=Level.PUBLIC)
    params = {
        "tenant": tenant.id,
        "clearance": 3,
        "allow": ["%"],
        "deny": [],
        "subjects": ["alice"],
        "q": np.ones(384, dtype=np.float32) / np.sqrt(384),
        "n": 10,
        "k": 10,
    }
    with tenant_transaction(
        conn,
        tenant.id,
        access="read",
        user="alice",
        extra={"clearance": 2, "allow": ["finance/%"], "deny": [], "subjects": ["alice"]},
    ) as tx:
        rows = tx.execute(HNSW_QUERY, params).fetchall()
    assert [r[3] for r in rows] == ["finance/q1"]
