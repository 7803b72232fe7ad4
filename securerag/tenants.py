"""Tenants: names to ids, created on first use with their own chunk partition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from securerag.errors import NotFound
from securerag.models import validate_tenant


@dataclass(frozen=True, slots=True)
class TenantRef:
    """A tenant's database id and name."""

    id: int
    name: str


def ensure_tenant(conn: psycopg.Connection[Any], name: str) -> TenantRef:
    """The tenant called `name`, created (with its partition) if it does not exist."""
    validate_tenant(name)
    row = conn.execute("SELECT securerag.ensure_tenant(%s)", (name,)).fetchone()
    assert row is not None
    return TenantRef(id=int(row[0]), name=name)


def find_tenant(conn: psycopg.Connection[Any], name: str) -> TenantRef:
    """The existing tenant called `name`; `NotFound` otherwise."""
    validate_tenant(name)
    row = conn.execute("SELECT securerag.tenant_id(%s)", (name,)).fetchone()
    if row is None or row[0] is None:
        raise NotFound(f"no tenant called {name!r}")
    return TenantRef(id=int(row[0]), name=name)
