"""Session-memory sweeper: hard-delete expired entries across tenants.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

The query role sees memory rows of the user set in its transaction only, so
it cannot sweep other users' sessions. `securerag.sweep_memory()` runs as the
schema owner and does exactly one thing: delete entries whose `expires_at`
has passed (database time), returning how many. Nothing that is still live
can be reached through it, so the query role may call it (the server's
background sweeper does).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APP = "securerag_app"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION securerag.sweep_memory(p_limit integer DEFAULT 10000) RETURNS bigint
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          WITH expired AS (
            SELECT tenant_id, id FROM securerag.memory_entries
             WHERE expires_at <= now() ORDER BY expires_at LIMIT greatest(p_limit, 0)
             FOR UPDATE SKIP LOCKED
          ), gone AS (
            DELETE FROM securerag.memory_entries e USING expired x
             WHERE e.tenant_id = x.tenant_id AND e.id = x.id RETURNING 1
          )
          SELECT count(*) FROM gone
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION securerag.sweep_memory(integer) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION securerag.sweep_memory(integer) TO {APP}")


def downgrade() -> None:
    op.execute("DROP FUNCTION securerag.sweep_memory(integer)")
