"""Alembic migrations: the only way securerag's schema changes."""
