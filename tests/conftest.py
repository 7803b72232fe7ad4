"""Shared fixtures: one real PostgreSQL + pgvector per test session, one tenant per test.

By default the embedded server runs under a temporary SECURERAG_HOME; set
SECURERAG_TEST_DATABASE_URL to use an external PostgreSQL with pgvector.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from securerag.authz import add_lines, parse_policy
from securerag.config import Settings
from securerag.crypto.master import LocalKeyProvider
from securerag.db import Database, initialize, tenant_transaction
from securerag.ingestion import DocumentInput, IngestedDocument
from securerag.models import Level
from securerag.runtime import Runtime
from securerag.tenants import TenantRef, ensure_tenant
from tests.fakes import HashEmbedder

MASTER_KEY = base64.b64encode(b"k" * 32).decode()


@pytest.fixture(scope="session", autouse=True)
def _clean_environment() -> Iterator[None]:
    """Tests never pick up the developer's SECURERAG_* configuration."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("SECURERAG_") and name != "SECURERAG_TEST_DATABASE_URL":
                mp.delenv(name)
        yield


@pytest.fixture(scope="session", autouse=True)
def _stop_embedded_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Stop every embedded server the session started (its own, and those the CLI tests start
    under their own SECURERAG_HOME), so a test run leaves no postgres behind. Only servers
    under this session's temporary folder, and only live ones (`stop_server` checks)."""
    yield
    from securerag.db.embedded import stop_server

    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    for pid_file in tmp_path_factory.getbasetemp().rglob("pgdata/postmaster.pid"):
        try:
            stop_server(Settings(home=pid_file.parent.parent))
        except Exception as exc:  # reported, not raised: the tests themselves have passed or failed
            if reporter is not None:
                reporter.write_line(f"could not stop the embedded server under {pid_file.parent}: {exc!r}")


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("securerag-home")


@pytest.fixture(scope="session")
def settings(home: Path) -> Settings:
    external = os.environ.get("SECURERAG_TEST_DATABASE_URL")
    return Settings(home=home, master_key=MASTER_KEY, database_url=external or None)


@pytest.fixture(scope="session")
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for CLI subprocesses that share the session's database and key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURERAG_")}
    env.update(SECURERAG_HOME=str(settings.home), SECURERAG_MASTER_KEY=MASTER_KEY)
    if settings.database_url is not None:
        env["SECURERAG_DATABASE_URL"] = settings.database_url.get_secret_value()
    return env


@pytest.fixture(scope="session")
def keys(settings: Settings) -> LocalKeyProvider:
    return LocalKeyProvider(base64.b64decode(MASTER_KEY))


@pytest.fixture(scope="session")
def db(settings: Settings, keys: LocalKeyProvider) -> Database:
    database, _ = initialize(settings, keys)  # migrations run once per session
    return database


@pytest.fixture(scope="session")
def runtime(settings: Settings, keys: LocalKeyProvider, db: Database) -> Runtime:
    """Services with the fast hash embedder."""
    return Runtime(settings, keys=keys, db=db, embedder=HashEmbedder())


@pytest.fixture(scope="session")
def real_runtime(settings: Settings, keys: LocalKeyProvider, db: Database) -> Runtime:
    """Services with the real all-MiniLM-L6-v2 model."""
    rt = Runtime(settings, keys=keys, db=db)
    rt.embedder  # noqa: B018 - load once per session
    return rt


@pytest.fixture
def conn(db: Database) -> Iterator[psycopg.Connection[Any]]:
    """A query-role connection."""
    with db.connect() as connection:
        yield connection


@pytest.fixture
def admin_conn(db: Database) -> Iterator[psycopg.Connection[Any]]:
    """An owner connection (RLS does not apply): for inspecting raw tables."""
    with db.connect_admin() as connection:
        yield connection


@pytest.fixture
def make_tenant(conn: psycopg.Connection[Any], runtime: Runtime) -> Callable[..., TenantRef]:
    """Create a fresh tenant (unique name unless one is given) with its key and policy."""

    def make(name: str | None = None, policy: str = "") -> TenantRef:
        tenant = ensure_tenant(conn, name or f"t-{uuid.uuid4().hex[:12]}")
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            runtime.keyring.tenant_key(tx, tenant.id)
            if policy.strip():
                lines = parse_policy(policy.replace("{T}", tenant.name).splitlines(), tenant=tenant.name)
                add_lines(tx, tenant, lines, actor="test", audit=runtime.audit)
        return tenant

    return make


@pytest.fixture
def ingest(conn: psycopg.Connection[Any], runtime: Runtime) -> Callable[..., IngestedDocument]:
    """Ingest one document with the hash embedder."""

    def ingest_one(
        tenant: TenantRef,
        collection: str,
        text: str,
        *,
        title: str = "doc",
        acl: tuple[str, ...] = (),
        level: Level | None = Level.INTERNAL,
        rt: Runtime | None = None,
    ) -> IngestedDocument:
        services = rt or runtime
        prepared = services.ingestor.prepare(
            DocumentInput(collection=collection, title=title, text=text, acl=acl, classification=level)
        )
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            return services.ingestor.store(tx, tenant.id, prepared, actor="test")

    return ingest_one


@pytest.fixture
def scan_batches(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every non-empty batch of texts the runtime's scanner is asked to scan from now on in the
    test (the texts as a list each): a spy on its `scan_many`, which `scan` goes through too."""
    batches: list[list[str]] = []
    original = type(runtime.scanner).scan_many

    def spy(self: Any, texts: Any, **kw: Any) -> Any:
        if texts:
            batches.append(list(texts))
        return original(self, texts, **kw)

    monkeypatch.setattr(type(runtime.scanner), "scan_many", spy)
    return batches
