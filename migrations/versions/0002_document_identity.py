"""Document identity and content MACs, for idempotent re-ingestion.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

`source_mac` is HMAC(collection, source key) and `content_mac` is HMAC of
everything that decides a document's rows (text, title, acl, declared level,
hidden text, embedding model), both keyed with a secret derived from the
master key: a plain hash of the text would let anyone holding the table test
guesses of a document's content.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE securerag.documents ADD COLUMN source_mac bytea, ADD COLUMN content_mac bytea")
    op.execute(
        "CREATE UNIQUE INDEX documents_source ON securerag.documents (tenant_id, source_mac)"
        " WHERE source_mac IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX securerag.documents_source")
    op.execute("ALTER TABLE securerag.documents DROP COLUMN source_mac, DROP COLUMN content_mac")
