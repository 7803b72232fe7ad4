"""The Python API a chatbot backend embeds: construct once, call per request.

    from securerag import Principal, SecureRetriever

    retriever = SecureRetriever()                 # settings from SECURERAG_* variables
    alice = Principal(tenant="acme", user="alice")  # whom your backend authenticated
    retriever.remember(alice, "chat-42", "What is the hotel limit?")
    result = retriever.retrieve(alice, "hotel limit", k=5, session_id="chat-42")
    prompt = result.context                       # fenced, cited, within the token budget

The backend authenticates its users; securerag decides what each may read.
Every call runs in its own transaction on a pooled query-role connection, with
the same authorization, decryption, scanning and assembly as `POST
/v1/retrieve`. A `SecureRetriever` is safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from securerag.config import Settings
from securerag.db import tenant_transaction
from securerag.memory import MemoryEntry, Role, Sweep, sweep_expired
from securerag.models import Principal
from securerag.retrieval import RetrievalResult, TokenCounter
from securerag.runtime import Runtime
from securerag.tenants import TenantRef, find_tenant


class SecureRetriever:
    """Authorized retrieval, session memory and context assembly for one process."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        runtime: Runtime | None = None,
        count_tokens: TokenCounter | None = None,
        pool_size: int = 8,
    ) -> None:
        """Args:
        settings: configuration (default: read from `SECURERAG_*` environment variables).
        runtime: already built services to reuse (the settings are then the runtime's).
        count_tokens: how the context budget is counted, e.g. your chat model's tokenizer
            (default: `SECURERAG_CONTEXT_TOKENIZER`, else the embedding model's tokenizer).
        pool_size: most database connections held at once.
        """
        if runtime is not None and count_tokens is not None:
            raise ValueError("pass count_tokens to the Runtime you pass in")
        self._runtime = runtime or Runtime(settings or Settings(), count_tokens=count_tokens)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = self._runtime.db.pool(
            min_size=1, max_size=pool_size
        )

    def __repr__(self) -> str:
        return f"SecureRetriever({self._runtime!r})"

    def __enter__(self) -> SecureRetriever:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()

    @property
    def runtime(self) -> Runtime:
        """The services underneath (ingestion, policy, keys), for what this class does not wrap."""
        return self._runtime

    def authenticate(self, api_key: str) -> Principal:
        """The principal a securerag API key stands for; `AuthenticationError` for an
        unknown, expired or revoked key (all alike)."""
        with self._pool.connection() as conn:
            tenant, user = self._runtime.api_keys.authenticate(conn, api_key)
        return Principal(tenant=tenant.name, user=user)

    def retrieve(
        self,
        principal: Principal,
        query: str,
        *,
        k: int = 5,
        session_id: str | None = None,
        max_tokens: int | None = None,
    ) -> RetrievalResult:
        """The `k` nearest chunks `principal` may read, scanned, with the assembled context
        (and the session's memory when `session_id` is given) within `max_tokens`."""
        with self._pool.connection() as conn:
            return self._runtime.retriever.retrieve(
                conn,
                self._tenant(conn, principal),
                principal.user,
                query,
                k=k,
                session_id=session_id,
                max_tokens=max_tokens,
            )

    def remember(
        self,
        principal: Principal,
        session_id: str,
        content: str,
        *,
        role: Role = "user",
        ttl_seconds: int | None = None,
    ) -> MemoryEntry:
        """Seal one turn into the principal's session (`ttl_seconds=None`: the tenant's default)."""
        return self.remember_turns(principal, session_id, [(role, content)], ttl_seconds=ttl_seconds)[0]

    def remember_turns(
        self,
        principal: Principal,
        session_id: str,
        turns: Sequence[tuple[Role, str]],
        *,
        ttl_seconds: int | None = None,
    ) -> list[MemoryEntry]:
        """Seal several (role, content) turns in one transaction: all are stored or none
        (e.g. a question and its answer; `QuotaExceeded` when the session is full)."""
        with self._pool.connection() as conn:
            tenant = self._tenant(conn, principal)
            with tenant_transaction(conn, tenant.id, access="read", user=principal.user) as tx:
                memory = self._runtime.memory
                return memory.append_many(
                    tx, tenant, principal.user, session_id, turns, ttl_seconds=ttl_seconds
                )

    def session(self, principal: Principal, session_id: str) -> list[MemoryEntry]:
        """The principal's live entries of this session, oldest first (unscanned, as written)."""
        with self._pool.connection() as conn:
            tenant = self._tenant(conn, principal)
            with tenant_transaction(conn, tenant.id, access="read", user=principal.user) as tx:
                return self._runtime.memory.entries(tx, tenant, principal.user, session_id)

    def forget(self, principal: Principal, session_id: str) -> bool:
        """Delete the principal's session and destroy its key; False if there was none."""
        with self._pool.connection() as conn:
            tenant = self._tenant(conn, principal)
            with tenant_transaction(conn, tenant.id, access="read", user=principal.user) as tx:
                return self._runtime.memory.delete_session(tx, tenant, principal.user, session_id)

    def sweep_memory(self) -> Sweep:
        """Hard-delete expired memory entries and close empty sessions, in every tenant.

        The HTTP server does this in the background; a backend that only embeds the
        library should call it on a schedule (or run `securerag memory sweep` from cron).
        """
        with self._pool.connection() as conn:
            return sweep_expired(conn)

    @staticmethod
    def _tenant(conn: psycopg.Connection[Any], principal: Principal) -> TenantRef:
        return find_tenant(conn, principal.tenant)
