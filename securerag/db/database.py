"""Connections: an owner connection for migrations, the query role for everything else.

The application never queries as the owner or as a superuser: row-level
security does not apply to either, so every query runs as `securerag_app`, a
role that owns nothing, is not a superuser and cannot bypass RLS.
"""

from __future__ import annotations

import base64
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from securerag.config import Settings
from securerag.db import embedded
from securerag.errors import ConfigError
from securerag.protocols import KeyProvider

APP_ROLE = "securerag_app"
"""The query role. Created by the first migration; cluster-wide, like every role."""


def app_role_password(keys: KeyProvider) -> str:
    """The query role's password, derived from the master key so that no extra
    secret has to be stored: every process that holds the master key can log in."""
    return base64.urlsafe_b64encode(keys.derive("db/app-role-password")).decode().rstrip("=")


def _configure(conn: psycopg.Connection[Any]) -> None:
    register_vector(conn)


class Database:
    """Where the database is and how to reach it as the owner and as the query role."""

    __slots__ = ("_admin", "_app")

    def __init__(self, *, admin_conninfo: str, app_conninfo: str) -> None:
        self._admin = admin_conninfo
        self._app = app_conninfo

    def __repr__(self) -> str:  # conninfo strings may hold passwords
        host = conninfo_to_dict(self._app).get("host", "?")
        return f"Database(host={host!r})"

    @classmethod
    def from_settings(cls, settings: Settings, keys: KeyProvider) -> Database:
        """Resolve the owner URL (starting the embedded server if needed) and the app URL."""
        if settings.database_url is None:
            admin = embedded.ensure_server(settings)
        else:
            admin = settings.database_url.get_secret_value()
        if settings.app_database_url is not None:
            app = settings.app_database_url.get_secret_value()
        else:
            try:
                params = conninfo_to_dict(admin)
            except psycopg.ProgrammingError:
                raise ConfigError("SECURERAG_DATABASE_URL is not a valid PostgreSQL URL") from None
            params.update(user=APP_ROLE, password=app_role_password(keys))
            app = make_conninfo("", **{k: v for k, v in params.items() if v is not None})
        return cls(admin_conninfo=admin, app_conninfo=_with_timeout(app, settings.statement_timeout_ms))

    @property
    def admin_conninfo(self) -> str:
        """Owner conninfo (for migrations and operator commands)."""
        return self._admin

    def connect_admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection as the owner. Never used to read tenant data."""
        try:
            return psycopg.connect(self._admin, autocommit=True, application_name="securerag-admin")
        except psycopg.OperationalError as exc:
            raise ConfigError(f"cannot connect to the database as its owner: {_first_line(exc)}") from None

    def connect(self) -> psycopg.Connection[Any]:
        """A connection as the query role, with pgvector types registered."""
        try:
            conn = psycopg.connect(
                self._app,
                # Automatic prepared statements let PostgreSQL switch to a generic
                # plan that ignores per-transaction planner settings; never prepare.
                prepare_threshold=None,
                # Every unit of work opens its own explicit transaction (tenant_transaction).
                autocommit=True,
                application_name="securerag",
            )
        except psycopg.OperationalError as exc:
            raise ConfigError(
                f"cannot connect as {APP_ROLE}: {_first_line(exc)}; run `securerag init`"
            ) from None
        _configure(conn)
        return conn

    def pool(self, *, min_size: int = 1, max_size: int = 8) -> ConnectionPool[psycopg.Connection[Any]]:
        """A pool of query-role connections for a long-running service."""
        return ConnectionPool(
            self._app,
            min_size=min_size,
            max_size=max_size,
            kwargs={"prepare_threshold": None, "autocommit": True, "application_name": "securerag"},
            configure=_configure,
            open=True,
            name="securerag",
        )


def _with_timeout(conninfo: str, timeout_ms: int) -> str:
    """`conninfo` with a server-side statement timeout on every session it opens."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        raise ConfigError("SECURERAG_APP_DATABASE_URL is not a valid PostgreSQL URL") from None
    options = " ".join(
        filter(None, [str(params.get("options") or ""), f"-c statement_timeout={int(timeout_ms)}"])
    )
    return make_conninfo(conninfo, options=options)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
