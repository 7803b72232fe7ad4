"""Rate limits on PostgreSQL: one count per principal however many processes hit it."""

from __future__ import annotations

import uuid

import pytest

from securerag.api.ratelimit import PostgresStorage, RateLimiter
from securerag.db import Database
from securerag.errors import RateLimited


def test_two_limiters_on_two_pools_share_one_count(db: Database) -> None:
    """Two limiters (as two workers would hold) count the same principal together; another
    principal has its own count; the refusal says how long to wait."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with db.pool(max_size=1) as first_pool, db.pool(max_size=1) as second_pool:
        first = RateLimiter(PostgresStorage(first_pool), "3/minute")
        second = RateLimiter(PostgresStorage(second_pool), "3/minute")
        first.hit(tenant, "alice")
        second.hit(tenant, "alice")
        first.hit(tenant, "alice")
        with pytest.raises(RateLimited) as refused:
            second.hit(tenant, "alice")
        assert 1 <= refused.value.retry_after <= 60
        first.hit(tenant, "bob")  # bob's count is his own
        first.hit("another-tenant-" + tenant, "alice")  # so is alice's in another tenant


def test_windows_end_and_are_pruned(db: Database) -> None:
    """After its window a principal may ask again, and the past window's row can be pruned."""
    import time

    tenant = f"t-{uuid.uuid4().hex[:8]}"
    with db.pool(max_size=1) as pool:
        storage = PostgresStorage(pool)
        limiter = RateLimiter(storage, "1/second")
        limiter.hit(tenant, "alice")
        with pytest.raises(RateLimited):
            limiter.hit(tenant, "alice")
        time.sleep(1.1)
        assert storage.prune() >= 1
        limiter.hit(tenant, "alice")
