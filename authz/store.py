"""Policy lines in PostgreSQL: one tenant at a time (a filtered load)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from securerag.authz.policy import Permission, PolicyLine, from_row


def _columns(line: PolicyLine) -> tuple[str, ...]:
    ptype = "p" if isinstance(line, Permission) else "g"
    values = list(line.fields) + [""] * (6 - len(line.fields))
    return (ptype, *values)


def load_lines(conn: psycopg.Connection[Any], tenant_id: int) -> tuple[int, list[PolicyLine]]:
    """The tenant's policy version and lines, read in the caller's transaction.

    The version is read first: under any isolation level the lines are then at
    least as new as the version, so a cache keyed on it can reload needlessly
    but never serve lines older than the version it claims.
    """
    row = conn.execute("SELECT policy_version FROM securerag.tenants WHERE id = %s", (tenant_id,)).fetchone()
    version = 0 if row is None else int(row[0])
    rows = conn.execute(
        "SELECT ptype, v0, v1, v2, v3, v4, v5 FROM securerag.casbin_rule WHERE tenant_id = %s ORDER BY id",
        (tenant_id,),
    ).fetchall()
    return version, [from_row(r[0], tuple(r[1:])) for r in rows]


def policy_version(conn: psycopg.Connection[Any], tenant_id: int) -> int:
    """The tenant's policy version (bumped in the transaction of every change)."""
    row = conn.execute("SELECT policy_version FROM securerag.tenants WHERE id = %s", (tenant_id,)).fetchone()
    return 0 if row is None else int(row[0])


def insert_lines(conn: psycopg.Connection[Any], tenant_id: int, lines: Sequence[PolicyLine]) -> int:
    """Add lines (repeats ignored); the number actually added."""
    added = 0
    for line in lines:
        cur = conn.execute(
            "INSERT INTO securerag.casbin_rule (tenant_id, ptype, v0, v1, v2, v3, v4, v5)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (tenant_id, *_columns(line)),
        )
        added += cur.rowcount
    return added


def delete_lines(conn: psycopg.Connection[Any], tenant_id: int, lines: Sequence[PolicyLine]) -> int:
    """Remove lines; the number actually removed."""
    removed = 0
    for line in lines:
        ptype, *values = _columns(line)
        cur = conn.execute(
            "DELETE FROM securerag.casbin_rule WHERE tenant_id = %s AND ptype = %s"
            " AND v0 = %s AND v1 = %s AND v2 = %s AND v3 = %s AND v4 = %s AND v5 = %s",
            (tenant_id, ptype, *values),
        )
        removed += cur.rowcount
    return removed


def lock_policy(conn: psycopg.Connection[Any], tenant_id: int) -> None:
    """Serialise policy changes of one tenant until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('securerag.policy'), %s)", (tenant_id,))
