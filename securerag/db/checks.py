"""Start-up checks: refuse to run if row-level security could be bypassed."""

from __future__ import annotations

from typing import Any

import psycopg

from securerag.errors import ConfigError


def check_query_role(conn: psycopg.Connection[Any]) -> None:
    """Raise `ConfigError` unless the connection's role is subject to RLS everywhere.

    The role (and the session's login role) must not be a superuser or have
    BYPASSRLS, must not own or inherit ownership of any securerag table, every
    securerag table must have RLS enabled and forced, and the per-tenant chunk
    partitions must not be readable directly.
    """
    roles = conn.execute(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname IN (current_user, session_user)"
    ).fetchall()
    for name, superuser, bypass in roles:
        if superuser or bypass:
            raise ConfigError(
                f"refusing to run: database role {name!r} is a superuser or has BYPASSRLS, so "
                "row-level security would not apply; connect as securerag_app"
            )
    owned = conn.execute(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'securerag' AND c.relkind IN ('r', 'p')
           AND pg_has_role(current_user, c.relowner, 'USAGE')
        """
    ).fetchall()
    if owned:
        raise ConfigError(
            f"refusing to run: the query role owns securerag tables ({owned[0][0]}, ...); "
            "the owner is not subject to the read policies"
        )
    unforced = conn.execute(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'securerag' AND c.relkind IN ('r', 'p')
           AND c.relname <> 'alembic_version'
           AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
        """
    ).fetchall()
    if unforced:
        raise ConfigError(
            f"refusing to run: row-level security is not enabled and forced on {unforced[0][0]}"
        )
    open_partitions = conn.execute(
        """
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'securerag.chunks'::regclass
           AND has_table_privilege(current_user, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
        """
    ).fetchall()
    if open_partitions:
        raise ConfigError(
            f"refusing to run: the query role can reach partition {open_partitions[0][0]} "
            "directly, around the parent table's policies"
        )
