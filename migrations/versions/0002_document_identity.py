"""Document identity and content MACs; the service root secret.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

`source_mac` is HMAC(collection, source key) and `content_mac` is HMAC of
everything that decides a document's rows (text, title, acl, declared level,
hidden text, embedding model), both keyed with a secret derived from the
master key: a plain hash of the text would let anyone holding the table test
guesses of a document's content.

`service_keys` holds the service's root secret, wrapped by the master key.
Long-lived secrets (the audit chain's key, the API-key digest key, the content
MAC key) derive from it rather than from the master key, so rotating the
master key re-wraps one row instead of invalidating every API key, MAC and
audit entry.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


APP = "securerag_app"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE securerag.service_keys (
          name text PRIMARY KEY,
          kek_id text NOT NULL,
          wrapped bytea NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("ALTER TABLE securerag.service_keys ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE securerag.service_keys FORCE ROW LEVEL SECURITY")
    # Readable (useless without the master key), never writable, by the query role.
    op.execute(f"CREATE POLICY app_select ON securerag.service_keys FOR SELECT TO {APP} USING (true)")
    op.execute(
        "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON securerag.service_keys TO %I"
        " USING (true) WITH CHECK (true)', current_user); END $$"
    )
    op.execute(f"GRANT SELECT ON securerag.service_keys TO {APP}")
    op.execute("ALTER TABLE securerag.documents ADD COLUMN source_mac bytea, ADD COLUMN content_mac bytea")
    op.execute(
        "CREATE UNIQUE INDEX documents_source ON securerag.documents (tenant_id, source_mac)"
        " WHERE source_mac IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP TABLE securerag.service_keys")
    op.execute("DROP INDEX securerag.documents_source")
    op.execute("ALTER TABLE securerag.documents DROP COLUMN source_mac, DROP COLUMN content_mac")
