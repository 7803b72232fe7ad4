"""Per-transaction tenant context: the settings row-level security reads.

Settings are always transaction-local (`set_config(name, value, true)`): a
session-level setting could outlive its request on a pooled connection and
hand one user's context to the next.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

Access = Literal["read", "admin"]
"""'read': the reader's filter applies; 'admin': the whole tenant (checked by the caller)."""

SettingValue = str | int | Sequence[str]


def _set_config(
    conn: psycopg.Connection[Any],
    values: Mapping[str, SettingValue],
    returning: sql.Composable | None = None,
    returning_params: Sequence[Any] = (),
) -> tuple[Any, ...] | None:
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for name, value in values.items():
        if isinstance(value, str | int):
            parts.append(sql.SQL("set_config(%s, %s::text, true)"))
            params += [f"securerag.{name}", str(value)]
        else:
            # PostgreSQL renders the array literal itself, so quoting is never ours to get wrong.
            parts.append(sql.SQL("set_config(%s, %s::text[]::text, true)"))
            params += [f"securerag.{name}", list(value)]
    if returning is not None:
        parts.append(returning)
        params += list(returning_params)
    return conn.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join(parts)), params).fetchone()


@contextmanager
def tenant_transaction(
    conn: psycopg.Connection[Any],
    tenant_id: int,
    *,
    access: Access,
    user: str | None = None,
    extra: Mapping[str, SettingValue] | None = None,
    snapshot: bool = False,
) -> Iterator[psycopg.Connection[Any]]:
    """Run a block in one transaction with the tenant context set.

    Args:
        access: 'read' or 'admin'; 'admin' must only be passed after the caller
            checked the principal's `admin, write` (or for the operator's CLI).
        user: the acting user, which scopes session memory.
        extra: further settings (the reader's filter, set by `securerag.authz`).
        snapshot: one REPEATABLE READ, READ ONLY snapshot for every statement,
            so a policy, its version and the rows it filters are seen together.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("tenant_transaction needs a connection with no open transaction")
    if snapshot:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
    try:
        with conn.transaction():
            values: dict[str, SettingValue] = {"tenant_id": tenant_id, "access": access}
            if user is not None:
                values["user"] = user
            values.update(extra or {})
            _set_config(conn, values)
            yield conn
    finally:
        if snapshot:
            conn.isolation_level = None
            conn.read_only = None


def set_settings(
    conn: psycopg.Connection[Any],
    values: Mapping[str, SettingValue],
    *,
    returning: sql.Composable | None = None,
    returning_params: Sequence[Any] = (),
) -> Any:
    """Add settings to the current transaction (for example, a reader's filter).

    `returning` is a scalar expression evaluated in the same statement (saving a
    round trip); it must not depend on the settings being made. Its value is returned.
    """
    row = _set_config(conn, values, returning, returning_params)
    return None if returning is None or row is None else row[-1]
