"""Alembic environment: run migrations on the connection `securerag.db.migrate` hands us.

Migrations run as the database owner, never as the query role, inside one
advisory lock so that two processes initialising at once take turns.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from securerag.db.migrate import INIT_LOCK as MIGRATION_LOCK

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `securerag init`, which supplies the connection")

connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
try:
    connection.execute(text("CREATE SCHEMA IF NOT EXISTS securerag"))
    connection.commit()
    context.configure(
        connection=connection,
        version_table_schema="securerag",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
finally:
    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
    connection.commit()
