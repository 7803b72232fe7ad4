"""Close idle session-memory sessions: a session whose entries have all expired
and been swept loses its row and its key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Without this, a session's key row outlives its last entry forever.
`securerag.close_idle_memory_sessions()` runs as the schema owner and closes
only sessions that hold no entry at all and were opened more than
`p_idle_seconds` ago. It takes the same transaction-level advisory lock that
`MemoryStore.append` holds while it uses a session's key, skips a session it
cannot lock, and checks again for entries once it holds the lock, so it
never destroys a key an append is writing under. A later append simply opens
the session again under a new key.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APP = "securerag_app"


def upgrade() -> None:
    op.execute(
        r"""
        CREATE FUNCTION securerag.close_idle_memory_sessions(
          p_limit integer DEFAULT 1000, p_idle_seconds integer DEFAULT 3600
        ) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
          s record;
          closed bigint := 0;
        BEGIN
          FOR s IN
            SELECT m.tenant_id, m.user_name, m.session_id, m.key_id
              FROM securerag.memory_sessions m
             WHERE m.created_at <= now() - make_interval(secs => greatest(p_idle_seconds, 0))
               AND NOT EXISTS (
                 SELECT 1 FROM securerag.memory_entries e
                  WHERE e.tenant_id = m.tenant_id AND e.user_name = m.user_name
                    AND e.session_id = m.session_id)
             LIMIT greatest(p_limit, 0)
             FOR UPDATE SKIP LOCKED
          LOOP
            -- The lock MemoryStore.append holds while it uses the session's key.
            CONTINUE WHEN NOT pg_try_advisory_xact_lock(
              hashtext('securerag.memory'),
              hashtext(s.tenant_id::text || chr(31) || s.user_name || chr(31) || s.session_id));
            -- An append may have committed an entry before we took the lock.
            CONTINUE WHEN EXISTS (
              SELECT 1 FROM securerag.memory_entries e
               WHERE e.tenant_id = s.tenant_id AND e.user_name = s.user_name
                 AND e.session_id = s.session_id);
            DELETE FROM securerag.memory_sessions
             WHERE tenant_id = s.tenant_id AND user_name = s.user_name AND session_id = s.session_id;
            DELETE FROM securerag.data_keys
             WHERE tenant_id = s.tenant_id AND id = s.key_id AND purpose = 'session';
            closed := closed + 1;
          END LOOP;
          RETURN closed;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION securerag.close_idle_memory_sessions(integer, integer) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION securerag.close_idle_memory_sessions(integer, integer) TO {APP}")


def downgrade() -> None:
    op.execute("DROP FUNCTION securerag.close_idle_memory_sessions(integer, integer)")
