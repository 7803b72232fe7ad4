"""`securerag init`: create or migrate the database and prepare the query role."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from securerag.config import Settings
from securerag.crypto.secrets import ensure_root
from securerag.db import migrate
from securerag.db.checks import check_query_role
from securerag.db.database import APP_ROLE, Database, app_role_password
from securerag.protocols import KeyProvider


@dataclass(frozen=True, slots=True)
class InitReport:
    """What `initialize` found and did."""

    revision_before: str | None
    revision_after: str
    embedded: bool


def initialize(settings: Settings, keys: KeyProvider) -> tuple[Database, InitReport]:
    """Migrate to the newest schema, set the query role's password, check the role.

    Idempotent and safe to run from several processes at once.
    """
    db = Database.from_settings(settings, keys)
    with db.connect_admin() as conn:
        before = migrate.current_revision(conn)
    migrate.upgrade(db)
    prepare_service(db, settings, keys)
    with db.connect() as conn:
        check_query_role(conn)
        after = migrate.current_revision(conn)
    assert after is not None
    return db, InitReport(revision_before=before, revision_after=after, embedded=settings.embedded)


def prepare_service(db: Database, settings: Settings, keys: KeyProvider) -> None:
    """Create the root secret and set the query role's password (as the owner).

    Serialised by the init lock: concurrent `ALTER ROLE` on one role fails with
    "tuple concurrently updated" otherwise.
    """
    with db.connect_admin() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (migrate.INIT_LOCK,))
        ensure_root(conn, keys)
        if settings.app_database_url is None:
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(app_role_password(keys))
                )
            )


def open_database(settings: Settings, keys: KeyProvider) -> Database:
    """Reach an initialised database; raise `NotInitialized` or `ConfigError` otherwise."""
    db = Database.from_settings(settings, keys)
    with db.connect() as conn:
        migrate.require_current(conn)
        check_query_role(conn)
    return db
