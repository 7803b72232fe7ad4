"""Per-principal rate limits that every worker shares.

The strategy and the limit syntax (`"120/minute"`) are the `limits`
library's; the counters live in PostgreSQL (migration 0005), so N server
processes enforce one limit, and a restart of one of them forgets nothing.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

import psycopg
from limits import RateLimitItem, parse
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter
from psycopg_pool import ConnectionPool

from securerag.errors import RateLimited


class PostgresStorage(Storage):
    """`limits` storage on securerag's `rate_*` functions."""

    STORAGE_SCHEME = ["securerag-postgresql"]  # noqa: RUF012 - the base class declares it so

    def __init__(self, pool: ConnectionPool[psycopg.Connection[Any]]) -> None:
        super().__init__()
        self._pool = pool

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return psycopg.Error

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT securerag.rate_incr(%s, %s, %s)", (key, expiry, amount)).fetchone()
        return int(row[0]) if row else 0

    def get(self, key: str) -> int:
        row = self._read(key)
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._read(key)
        return row[1].timestamp() if row else time.time()

    def _read(self, key: str) -> tuple[int, datetime] | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT count, expires_at FROM securerag.rate_get(%s)", (key,)).fetchone()
        return (int(row[0]), row[1]) if row else None

    def check(self) -> bool:
        with self._pool.connection() as conn:
            conn.execute("SELECT 1")
        return True

    def reset(self) -> int | None:
        return None  # counters expire on their own; there is no "forget everyone" switch

    def clear(self, key: str) -> None:
        # Forgiving a principal is the owner's call (`SELECT securerag.rate_clear(key)`);
        # the query role may not.
        raise NotImplementedError("rate-limit counters are cleared by the database owner")

    def prune(self) -> int:
        """Delete counters whose window has passed; how many."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT securerag.rate_prune()").fetchone()
        return int(row[0]) if row else 0


class RateLimiter:
    """One limit per (tenant, user), e.g. `"120/minute"`."""

    def __init__(self, storage: PostgresStorage, limit: str) -> None:
        self.storage = storage
        self._item: RateLimitItem = parse(limit)
        self._limiter = FixedWindowRateLimiter(storage)

    def hit(self, tenant: str, user: str) -> None:
        """Count one request; `RateLimited` (with seconds to wait) when over the limit."""
        if not self._limiter.hit(self._item, tenant, user):
            reset_at, _ = self._limiter.get_window_stats(self._item, tenant, user)
            raise RateLimited(max(1, math.ceil(reset_at - time.time())))
