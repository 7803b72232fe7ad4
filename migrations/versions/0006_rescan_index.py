"""Index for `securerag rescan`: chunks whose stored verdict is older than the scanner.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

`securerag.ingestion.rescan` pages through the documents holding a chunk with
`scanner_version` below the running scanner's, per tenant. Without an index
that is a scan of the tenant's chunks on every page, and again on every run
after the work is done; with it, finding nothing left is one index probe.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX chunks_scanner_version ON securerag.chunks (tenant_id, scanner_version, document_id)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX securerag.chunks_scanner_version")
