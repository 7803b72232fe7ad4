"""Bring the schema to the newest migration, and tell whether it is there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

import securerag.migrations
from securerag.db.database import Database
from securerag.errors import NotInitialized

# Session advisory lock held while migrating (migrations/env.py) and while
# `securerag init` sets up the query role: catalogue updates such as ALTER ROLE
# fail with "tuple concurrently updated" when two processes run them at once.
INIT_LOCK = 0x5EC0_5A6


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(securerag.migrations.__file__).parent))
    return cfg


def _engine(conninfo: str) -> Engine:
    # Any conninfo psycopg understands (URL or key=value) works through `creator`.
    return create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo), poolclass=NullPool
    )


def upgrade(db: Database) -> None:
    """Run every pending migration as the owner (serialised by an advisory lock)."""
    cfg = _alembic_config()
    engine = _engine(db.admin_conninfo)
    try:
        with engine.connect() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: psycopg.Connection[Any]) -> str | None:
    """The revision the database is at (None if it was never migrated)."""
    row = conn.execute("SELECT to_regclass('securerag.alembic_version') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return None
    version = conn.execute("SELECT version_num FROM securerag.alembic_version").fetchone()
    return None if version is None else str(version[0])


def require_current(conn: psycopg.Connection[Any]) -> None:
    """Raise `NotInitialized` unless the schema is at the newest migration."""
    current = current_revision(conn)
    if current != head_revision():
        state = "not initialised" if current is None else f"at revision {current}"
        raise NotInitialized(f"the database is {state}; run `securerag init`")
