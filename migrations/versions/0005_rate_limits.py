"""Rate-limit counters shared by every worker.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

Fixed-window counters for `limits` (securerag.api.ratelimit). The table is
UNLOGGED: counters are cheap to lose in a crash and are written on every
request. It holds no tenant content (keys name a principal and a window), and
the query role reaches it only through these functions.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APP = "securerag_app"
FUNCTIONS = (
    "rate_incr(text, double precision, integer)",
    "rate_get(text)",
    "rate_clear(text)",
    "rate_prune()",
)
# What the query role may call; `rate_clear` stays the owner's.
GRANTED = ("rate_incr(text, double precision, integer)", "rate_get(text)", "rate_prune()")


def upgrade() -> None:
    op.execute(
        """
        CREATE UNLOGGED TABLE securerag.rate_limits (
          key text PRIMARY KEY,
          count bigint NOT NULL,
          expires_at timestamptz NOT NULL
        )
        """
    )
    # Like every securerag table: RLS on and forced. Only the owner (through the
    # functions below) has a policy; the query role has neither grant nor policy.
    op.execute("ALTER TABLE securerag.rate_limits ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE securerag.rate_limits FORCE ROW LEVEL SECURITY")
    op.execute(
        "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON securerag.rate_limits TO %I"
        " USING (true) WITH CHECK (true)', current_user); END $$"
    )
    op.execute(
        """
        CREATE FUNCTION securerag.rate_incr(p_key text, p_expiry double precision, p_amount integer)
        RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
          v_now timestamptz := clock_timestamp();  -- one instant for the whole decision
          counted bigint;
        BEGIN
          INSERT INTO securerag.rate_limits AS r (key, count, expires_at)
          VALUES (p_key, p_amount, v_now + make_interval(secs => p_expiry))
          ON CONFLICT (key) DO UPDATE SET
            count = CASE WHEN r.expires_at <= v_now THEN p_amount ELSE r.count + p_amount END,
            expires_at = CASE WHEN r.expires_at <= v_now THEN v_now + make_interval(secs => p_expiry)
                              ELSE r.expires_at END
          RETURNING r.count INTO counted;
          RETURN counted;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION securerag.rate_get(p_key text)
        RETURNS TABLE (count bigint, expires_at timestamptz)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT r.count, r.expires_at FROM securerag.rate_limits r
           WHERE r.key = p_key AND r.expires_at > clock_timestamp()
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION securerag.rate_clear(p_key text) RETURNS void
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          DELETE FROM securerag.rate_limits WHERE key = p_key
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION securerag.rate_prune() RETURNS bigint
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          WITH gone AS (
            DELETE FROM securerag.rate_limits WHERE expires_at <= clock_timestamp() RETURNING 1
          ) SELECT count(*) FROM gone
        $$
        """
    )
    for function in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION securerag.{function} FROM PUBLIC")
    for function in GRANTED:
        op.execute(f"GRANT EXECUTE ON FUNCTION securerag.{function} TO {APP}")


def downgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION securerag.{function}")
    op.execute("DROP TABLE securerag.rate_limits")
