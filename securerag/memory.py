"""Session memory: entries sealed under a per-session key, scoped to
(tenant, user, session id), with a time to live.

Isolation is enforced twice: every query names the user and session, and the
row-level security policies admit only rows of the user set in the
transaction. Another user asking for the same session id sees an empty
session. Expired entries are never returned; deleting a session destroys its
key, so its ciphertext can no longer be read.

Memory can carry what a tool or a pasted document said, so each entry is
scanned for prompt injection when it is written and the verdict is sealed with
it (with the scanner's version), as a chunk's is: a retrieval reads the sealed
verdict and rescans only entries whose verdict is older than the running
scanner, or that were written without one.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, LiteralString

import psycopg

from securerag.audit import AuditLog
from securerag.crypto.aead import Aead, DataKey, sealed_key_id
from securerag.crypto.binding import memory_aad
from securerag.crypto.keyring import Keyring
from securerag.errors import DecryptionError, InvalidInput, QuotaExceeded
from securerag.models import ScanResult, require_text
from securerag.protocols import Scanner
from securerag.tenants import TenantRef

Role = Literal["user", "assistant"]
Clock = Callable[[], datetime]

_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
MAX_CONTENT_CHARS = 32_000
MAX_TTL_SECONDS = 366 * 86_400


def _utcnow() -> datetime:
    return datetime.now(UTC)


def validate_session_id(session_id: str) -> str:
    """Return `session_id` if it is 1-128 letters, digits, '.', '_', ':' or '-'."""
    if not _SESSION_ID.fullmatch(session_id):
        raise InvalidInput("session id must be 1-128 letters, digits, '.', '_', ':' or '-'")
    return session_id


@dataclass(frozen=True, slots=True)
class MemoryEntry:
    """One remembered turn."""

    role: Role
    content: str
    created_at: datetime
    expires_at: datetime | None
    injection: ScanResult | None = None
    """Set on entries the injection scanner flagged when they were read back for a context."""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as stored, with the verdict sealed with it (None: written without one)."""

    entry: MemoryEntry
    sealed_scan: Mapping[str, object] | None


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    """Quotas per session."""

    max_entries: int = 1_000
    max_bytes: int = 2_000_000


class MemoryStore:
    """Reads and writes session memory inside the caller's tenant transaction (user set)."""

    def __init__(
        self,
        keyring: Keyring,
        *,
        default_ttl_seconds: int | None = 86_400,
        ttl_by_tenant: Mapping[str, int] | None = None,
        limits: MemoryLimits | None = None,
        clock: Clock = _utcnow,
        audit: AuditLog | None = None,
        scanner: Scanner | None = None,
    ) -> None:
        """Args:
        default_ttl_seconds: the TTL of entries written without one (None: until deleted).
        ttl_by_tenant: per tenant name, a default TTL that replaces `default_ttl_seconds`.
        audit: when given, each session deletion (a key destroyed) goes on the audit trail.
        scanner: when given, each entry's injection verdict is sealed with it on writing
            (without one, every retrieval scans the entry).
        """
        self._audit = audit
        self._scanner = scanner
        for ttl in (default_ttl_seconds, *(ttl_by_tenant or {}).values()):
            if ttl is not None and not 1 <= ttl <= MAX_TTL_SECONDS:
                raise ValueError(f"a default memory TTL must be between 1 and {MAX_TTL_SECONDS} seconds")
        self._keyring = keyring
        self._default_ttl = default_ttl_seconds
        self._ttl_by_tenant = dict(ttl_by_tenant or {})
        self._limits = limits or MemoryLimits()
        self._clock = clock

    def default_ttl(self, tenant: str) -> int | None:
        """The TTL given to `tenant`'s entries written without one."""
        return self._ttl_by_tenant.get(tenant, self._default_ttl)

    def append(
        self,
        conn: psycopg.Connection[Any],
        tenant: TenantRef,
        user: str,
        session_id: str,
        *,
        role: Role,
        content: str,
        ttl_seconds: int | None = None,
    ) -> MemoryEntry:
        """Seal and store one entry; `ttl_seconds=None` uses the tenant's default TTL."""
        return self.append_many(conn, tenant, user, session_id, [(role, content)], ttl_seconds=ttl_seconds)[0]

    def append_many(
        self,
        conn: psycopg.Connection[Any],
        tenant: TenantRef,
        user: str,
        session_id: str,
        turns: Sequence[tuple[Role, str]],
        *,
        ttl_seconds: int | None = None,
    ) -> list[MemoryEntry]:
        """`append` for each (role, content) of `turns`, in the caller's transaction: all or none.
        The turns are scanned in one batch."""
        tenant_id = tenant.id
        validate_session_id(session_id)
        for role, content in turns:
            if role not in ("user", "assistant"):
                raise InvalidInput("role must be 'user' or 'assistant'")
            require_text(content, "the content")
            if len(content) > MAX_CONTENT_CHARS:
                raise InvalidInput(f"content longer than {MAX_CONTENT_CHARS} characters")
        ttl = self.default_ttl(tenant.name) if ttl_seconds is None else ttl_seconds
        if ttl is not None and not 1 <= ttl <= MAX_TTL_SECONDS:
            raise InvalidInput(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
        if not turns:
            return []
        key = self._session_key(conn, tenant_id, user, session_id)
        # The whole batch must fit before anything is scanned: a full session costs no scan.
        self._check_quota(
            conn,
            tenant_id,
            user,
            session_id,
            self._clock(),
            sum(len(c.encode()) for _, c in turns),
            len(turns),
        )
        verdicts: list[dict[str, object] | None] = [None] * len(turns)
        if self._scanner is not None:
            scanned = self._scanner.scan_many([content for _, content in turns], tenant=tenant.name)
            version = self._scanner.version
            verdicts = [{"score": v.score, "reasons": list(v.reasons), "version": version} for v in scanned]
        out: list[MemoryEntry] = []
        for (role, content), verdict in zip(turns, verdicts, strict=True):
            now = self._clock()
            expires = None if ttl is None else now + timedelta(seconds=ttl)
            entry_id = uuid.uuid4()
            payload: dict[str, object] = {"content": content}
            if verdict is not None:
                payload["scan"] = verdict
            sealed = Aead(key).seal(
                json.dumps(payload).encode(),
                aad=memory_aad(
                    tenant_id=tenant_id, user=user, session_id=session_id, entry_id=entry_id, role=role
                ),
            )
            conn.execute(
                "INSERT INTO securerag.memory_entries"
                " (tenant_id, id, user_name, session_id, role, sealed, created_at, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (tenant_id, entry_id, user, session_id, role, sealed, now, expires),
            )
            out.append(MemoryEntry(role=role, content=content, created_at=now, expires_at=expires))
        return out

    def _check_quota(
        self,
        conn: psycopg.Connection[Any],
        tenant_id: int,
        user: str,
        session_id: str,
        now: datetime,
        adding: int,
        entries: int = 1,
    ) -> None:
        """Raise `QuotaExceeded` unless `entries` more entries holding `adding` bytes fit."""
        row = conn.execute(
            "SELECT count(*), coalesce(sum(length(sealed)), 0) FROM securerag.memory_entries"
            " WHERE tenant_id = %s AND user_name = %s AND session_id = %s"
            " AND (expires_at IS NULL OR expires_at > %s)",
            (tenant_id, user, session_id, now),
        ).fetchone()
        assert row is not None
        if row[0] + entries > self._limits.max_entries or row[1] + adding > self._limits.max_bytes:
            raise QuotaExceeded(
                f"session memory is full ({self._limits.max_entries} entries or "
                f"{self._limits.max_bytes} bytes); delete the session or let entries expire"
            )

    def _session_key(
        self, conn: psycopg.Connection[Any], tenant_id: int, user: str, session_id: str
    ) -> DataKey:
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('securerag.memory'), hashtext(%s))",
            (f"{tenant_id}\x1f{user}\x1f{session_id}",),
        )
        row = conn.execute(
            "SELECT key_id FROM securerag.memory_sessions"
            " WHERE tenant_id = %s AND user_name = %s AND session_id = %s",
            (tenant_id, user, session_id),
        ).fetchone()
        if row is not None:
            keys = self._keyring.keys(conn, tenant_id, [row[0]])
            if row[0] in keys:
                return keys[row[0]]
            raise DecryptionError()
        key = self._keyring.create_key(conn, tenant_id, "session", ref=session_id, owner=user)
        conn.execute(
            "INSERT INTO securerag.memory_sessions (tenant_id, user_name, session_id, key_id)"
            " VALUES (%s, %s, %s, %s)",
            (tenant_id, user, session_id, key.id),
        )
        return key

    def entries(
        self, conn: psycopg.Connection[Any], tenant: TenantRef, user: str, session_id: str
    ) -> list[MemoryEntry]:
        """The session's live entries, oldest first (empty for anyone but its owner)."""
        return [stored.entry for stored in self.stored(conn, tenant, user, session_id)]

    def stored(
        self, conn: psycopg.Connection[Any], tenant: TenantRef, user: str, session_id: str
    ) -> list[StoredEntry]:
        """`entries`, each with the injection verdict sealed with it."""
        tenant_id = tenant.id
        validate_session_id(session_id)
        rows = conn.execute(
            "SELECT e.id, e.role, e.sealed, e.created_at, e.expires_at"
            "  FROM securerag.memory_entries e"
            " WHERE e.tenant_id = %s AND e.user_name = %s AND e.session_id = %s"
            "   AND (e.expires_at IS NULL OR e.expires_at > %s)"
            " ORDER BY e.seq",
            (tenant_id, user, session_id, self._clock()),
        ).fetchall()
        if not rows:
            return []
        keys = self._keyring.keys(conn, tenant_id, {sealed_key_id(bytes(r[2])) for r in rows})
        out: list[StoredEntry] = []
        for entry_id, role, sealed, created, expires in rows:
            key = keys.get(sealed_key_id(bytes(sealed)))
            if key is None:
                raise DecryptionError()
            payload = json.loads(
                Aead(key).open(
                    bytes(sealed),
                    aad=memory_aad(
                        tenant_id=tenant_id, user=user, session_id=session_id, entry_id=entry_id, role=role
                    ),
                )
            )
            entry = MemoryEntry(role=role, content=payload["content"], created_at=created, expires_at=expires)
            out.append(StoredEntry(entry, payload.get("scan")))
        return out

    def delete_session(
        self, conn: psycopg.Connection[Any], tenant: TenantRef, user: str, session_id: str
    ) -> bool:
        """Delete the session's entries and destroy its key; False if there was none."""
        tenant_id = tenant.id
        validate_session_id(session_id)
        row = conn.execute(
            "DELETE FROM securerag.memory_sessions"
            " WHERE tenant_id = %s AND user_name = %s AND session_id = %s RETURNING key_id",
            (tenant_id, user, session_id),
        ).fetchone()
        if row is None:
            return False
        self._keyring.destroy(conn, tenant_id, [row[0]])
        if self._audit is not None:
            self._audit.append(
                conn, tenant_id, actor=user, action="session.delete", detail={"key_id": str(row[0])}
            )
        return True


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep removed."""

    entries: int
    """Expired entries hard-deleted."""
    sessions: int
    """Idle sessions (no entries left) closed, their keys destroyed."""


def sweep_expired(
    conn: psycopg.Connection[Any],
    *,
    batch: int = 10_000,
    session_batch: int = 500,
    idle_seconds: int = 3_600,
) -> Sweep:
    """Hard-delete every expired entry of every tenant, then close the sessions that hold
    no entry and were opened more than `idle_seconds` ago (their keys destroyed).

    Runs `securerag.sweep_memory()` (migration 0003) in transactions of `batch` rows and
    `securerag.close_idle_memory_sessions()` (migration 0004) in transactions of
    `session_batch` sessions: each closing holds an advisory lock until commit, and
    PostgreSQL's shared lock table is small. Neither can reach a live entry.
    """
    return Sweep(
        entries=_in_batches(conn, "SELECT securerag.sweep_memory(%s)", (batch,), batch),
        sessions=_in_batches(
            conn,
            "SELECT securerag.close_idle_memory_sessions(%s, %s)",
            (session_batch, idle_seconds),
            session_batch,
        ),
    )


def _in_batches(
    conn: psycopg.Connection[Any], sql: LiteralString, params: tuple[int, ...], batch: int
) -> int:
    total = 0
    while True:
        with conn.transaction():
            row = conn.execute(sql, params).fetchone()
        done = int(row[0]) if row else 0
        total += done
        if done < batch:
            return total
