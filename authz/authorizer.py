"""The per-process authorizer: current policy per tenant, compiled grants per user.

Every request reads the tenant's policy version in its own transaction and
reloads when it changed, so a policy change is in force for the very next
query in every process, with no invalidation messages to lose.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from securerag.authz import store
from securerag.authz.compiler import Grants, ReadFilter, TenantPolicy
from securerag.authz.decision import CasbinDecider
from securerag.db import set_settings
from securerag.errors import AccessDenied
from securerag.models import DocumentAttrs
from securerag.tenants import TenantRef

_GRANTS_PER_TENANT = 1024
_VERSION = sql.SQL("(SELECT policy_version FROM securerag.tenants WHERE id = %s)")


@dataclass(slots=True)
class _Entry:
    policy: TenantPolicy
    grants: OrderedDict[str, Grants] = field(default_factory=OrderedDict)
    decider: CasbinDecider | None = None


class Authorizer:
    """Compiles and caches grants; thread-safe; one per process."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()

    def _entry(self, conn: psycopg.Connection[Any], tenant: TenantRef) -> _Entry:
        version = store.policy_version(conn, tenant.id)
        with self._lock:
            entry = self._entries.get(tenant.id)
            if entry is not None and entry.policy.version == version:
                return entry
        version, lines = store.load_lines(conn, tenant.id)
        entry = _Entry(TenantPolicy(tenant=tenant.name, lines=tuple(lines), version=version))
        with self._lock:
            self._entries[tenant.id] = entry
        return entry

    def policy(self, conn: psycopg.Connection[Any], tenant: TenantRef) -> TenantPolicy:
        """The tenant's current policy (tenant context must be set on `conn`)."""
        return self._entry(conn, tenant).policy

    def grants(self, conn: psycopg.Connection[Any], tenant: TenantRef, user: str) -> Grants:
        """What `user` is granted under the tenant's current policy."""
        entry = self._entry(conn, tenant)
        with self._lock:
            cached = entry.grants.get(user)
            if cached is not None:
                entry.grants.move_to_end(user)
                return cached
        grants = entry.policy.grants(user)
        with self._lock:
            entry.grants[user] = grants
            if len(entry.grants) > _GRANTS_PER_TENANT:
                entry.grants.popitem(last=False)
        return grants

    def apply(self, conn: psycopg.Connection[Any], tenant: TenantRef, user: str) -> Grants:
        """`user`'s grants under the current policy, with the read filter set for RLS.

        With the grants cached, one statement sets their filter and reads the policy
        version; only if the version moved is the policy reloaded and the filter set
        again. Either way the filter in force is the current policy's.
        """
        with self._lock:
            entry = self._entries.get(tenant.id)
            cached = entry.grants.get(user) if entry is not None else None
            version = entry.policy.version if entry is not None else None
        if cached is not None:
            current = set_settings(
                conn, cached.read.rls_settings(), returning=_VERSION, returning_params=[tenant.id]
            )
            if current == version:
                return cached
        grants = self.grants(conn, tenant, user)
        apply_read_filter(conn, grants.read)
        return grants

    def decider(self, conn: psycopg.Connection[Any], tenant: TenantRef) -> CasbinDecider:
        """A Casbin enforcer over the tenant's current policy."""
        entry = self._entry(conn, tenant)
        if entry.decider is None:
            entry.decider = CasbinDecider(tenant.name, entry.policy.lines)
        return entry.decider

    def can_read(
        self, conn: psycopg.Connection[Any], tenant: TenantRef, user: str, document: DocumentAttrs
    ) -> bool:
        """Casbin's single decision for one document."""
        return self.decider(conn, tenant).can_read(tenant.name, user, document)

    def require_admin(self, conn: psycopg.Connection[Any], tenant: TenantRef, user: str) -> None:
        """Raise `AccessDenied` unless `user` holds `admin, write` in the tenant."""
        if not self.grants(conn, tenant, user).admin:
            raise AccessDenied(f"{user!r} does not hold 'admin, write' in tenant {tenant.name!r}")


def apply_read_filter(conn: psycopg.Connection[Any], read: ReadFilter) -> None:
    """Put the reader's filter into the transaction for row-level security."""
    set_settings(conn, read.rls_settings())
