"""The audit trail: an append-only, per-tenant chain of HMAC-linked entries.

Each entry's MAC covers the previous entry's MAC and the entry itself, keyed
with a secret derived from the master key. The database owner can change rows,
but cannot recompute the chain without the master key, so `verify` finds any
change, insertion or deletion inside the chain. The query role may insert and
read, never update or delete (no grant and no policy for it).

Entries never hold plaintext content, queries, memory or keys.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from securerag.protocols import Secrets

_LOCK_CLASS = 0x5EC0_A0D1 & 0x7FFFFFFF
_GENESIS = b"\x00" * 32


def _canonical(tenant_id: int, seq: int, at: datetime, actor: str, action: str, detail: Any) -> bytes:
    body = {
        "tenant_id": tenant_id,
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(),
        "actor": actor,
        "action": action,
        "detail": detail,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class AuditLog:
    """Appends to and verifies the HMAC chain."""

    __slots__ = ("_key",)

    def __init__(self, secrets: Secrets) -> None:
        self._key = secrets.derive("audit-chain")

    def _mac(self, prev: bytes, entry: bytes) -> bytes:
        return hmac.new(self._key, prev + entry, hashlib.sha256).digest()

    def append(
        self,
        conn: psycopg.Connection[Any],
        tenant_id: int,
        *,
        actor: str,
        action: str,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one entry inside the caller's transaction (tenant context set); its seq."""
        # One writer per tenant chain at a time; the lock ends with the transaction.
        ctx = conn.execute(
            "SELECT current_setting('securerag.tenant_id', true), pg_advisory_xact_lock(%s, %s)",
            (_LOCK_CLASS, tenant_id),
        ).fetchone()
        if ctx is None or ctx[0] != str(tenant_id):
            # The head is only visible inside the tenant's own context: appending elsewhere
            # would restart the chain at 1.
            raise RuntimeError("audit append outside the tenant's transaction context")
        row = conn.execute("SELECT seq, mac FROM securerag.audit_head(%s::integer)", (tenant_id,)).fetchone()
        seq, prev = (1, _GENESIS) if row is None else (int(row[0]) + 1, bytes(row[1]))
        at = datetime.now(UTC)
        # Round-trip through JSON so what is stored is exactly what was MACed.
        payload = json.loads(json.dumps(dict(detail or {}), sort_keys=True, default=str))
        mac = self._mac(prev, _canonical(tenant_id, seq, at, actor, action, payload))
        conn.execute(
            "INSERT INTO securerag.audit_log (tenant_id, seq, at, actor, action, detail, prev_mac, mac)"
            " VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s)",
            (tenant_id, seq, at, actor, action, json.dumps(payload), prev, mac),
        )
        return seq

    def verify(self, conn: psycopg.Connection[Any]) -> list[AuditProblem]:
        """Check every tenant's chain (run as the owner); the problems found."""
        problems: list[AuditProblem] = []
        expected: dict[int, tuple[int, bytes]] = {}
        for tenant_id, seq, at, actor, action, detail, prev, mac in _rows(conn):
            want_seq, want_prev = expected.get(tenant_id, (1, _GENESIS))
            if seq != want_seq:
                problems.append(AuditProblem(tenant_id, seq, f"expected entry {want_seq}"))
            if bytes(prev) != want_prev:
                problems.append(AuditProblem(tenant_id, seq, "does not follow the previous entry"))
            good = self._mac(bytes(prev), _canonical(tenant_id, seq, at, actor, action, detail))
            if not hmac.compare_digest(good, bytes(mac)):
                problems.append(AuditProblem(tenant_id, seq, "entry was altered"))
            expected[tenant_id] = (seq + 1, bytes(mac))
        return problems


def missing_from(conn: psycopg.Connection[Any], exported: Iterable[Mapping[str, Any]]) -> list[AuditProblem]:
    """Entries of an earlier export that the live trail no longer holds unchanged (owner).

    The chain alone cannot show that its newest entries were cut off; an export kept
    elsewhere can: every entry in it must still be there with the same MAC.
    """
    live = {
        (str(name), int(seq)): bytes(mac).hex()
        for name, seq, mac in conn.execute(
            "SELECT t.name, a.seq, a.mac"
            "  FROM securerag.audit_log a JOIN securerag.tenants t ON t.id = a.tenant_id"
        )
    }
    ids = dict(conn.execute("SELECT name, id FROM securerag.tenants").fetchall())
    problems = []
    for entry in exported:
        key = (str(entry["tenant"]), int(entry["seq"]))
        if live.get(key) != entry["mac"]:
            what = "missing" if key not in live else "altered"
            problems.append(AuditProblem(int(ids.get(key[0], -1)), key[1], f"exported entry {what}"))
    return problems


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One place where the chain does not verify."""

    tenant_id: int
    seq: int
    problem: str


def export(conn: psycopg.Connection[Any], *, tenant: str | None = None) -> Iterator[dict[str, Any]]:
    """Every entry (of one tenant, by name, if given) as a JSON-ready dict, in chain order,
    with the MACs in hex so the export can be checked against the live chain (owner)."""
    sql = (
        "SELECT t.name, a.seq, a.at, a.actor, a.action, a.detail, a.prev_mac, a.mac"
        "  FROM securerag.audit_log a JOIN securerag.tenants t ON t.id = a.tenant_id"
        " WHERE %(tenant)s::text IS NULL OR t.name = %(tenant)s"
        " ORDER BY a.tenant_id, a.seq"
    )
    with conn.cursor(name="audit_export") as cur:
        cur.execute(sql, {"tenant": tenant})
        for name, seq, at, actor, action, detail, prev, mac in cur:
            yield {
                "tenant": name,
                "seq": seq,
                "at": at.astimezone(UTC).isoformat(),
                "actor": actor,
                "action": action,
                "detail": detail,
                "prev_mac": bytes(prev).hex(),
                "mac": bytes(mac).hex(),
            }


def _rows(conn: psycopg.Connection[Any]) -> Iterator[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT tenant_id, seq, at, actor, action, detail, prev_mac, mac"
            " FROM securerag.audit_log ORDER BY tenant_id, seq"
        )
        yield from cur
