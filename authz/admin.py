"""Administration under policy: who may change a tenant, and policy changes themselves.

Every policy change and every refused administrative call is written to the
audit trail, in the transaction that makes (or refuses) it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from securerag.audit import AuditLog
from securerag.authz import store
from securerag.authz.authorizer import Authorizer
from securerag.authz.compiler import build_policy, unique
from securerag.authz.policy import PolicyLine
from securerag.db import tenant_transaction
from securerag.errors import AccessDenied
from securerag.tenants import TenantRef


def authorize_admin(
    conn: psycopg.Connection[Any],
    tenant: TenantRef,
    user: str,
    *,
    authorizer: Authorizer,
    audit: AuditLog,
    action: str,
) -> None:
    """Raise `AccessDenied` (and audit the refusal) unless `user` holds `admin, write`."""
    with tenant_transaction(conn, tenant.id, access="read", user=user) as tx:
        allowed = authorizer.grants(tx, tenant, user).admin
        if not allowed:
            audit.append(tx, tenant.id, actor=user, action="admin.denied", detail={"action": action})
    if not allowed:
        raise AccessDenied(f"{user!r} does not hold 'admin, write' in tenant {tenant.name!r}")


@contextmanager
def admin_transaction(
    conn: psycopg.Connection[Any],
    tenant: TenantRef,
    user: str,
    *,
    authorizer: Authorizer,
    audit: AuditLog,
    action: str,
) -> Iterator[psycopg.Connection[Any]]:
    """A whole-tenant transaction for `user`, if the policy grants them `admin, write`.

    Raises:
        AccessDenied: the user is not an administrator of the tenant; the refusal
            is in the audit trail.
    """
    authorize_admin(conn, tenant, user, authorizer=authorizer, audit=audit, action=action)
    with tenant_transaction(conn, tenant.id, access="admin", user=user) as tx:
        # Checked again inside the transaction that acts: the policy may have changed.
        authorizer.require_admin(tx, tenant, user)
        yield tx


def add_lines(
    conn: psycopg.Connection[Any],
    tenant: TenantRef,
    lines: Sequence[PolicyLine],
    *,
    actor: str,
    audit: AuditLog,
) -> int:
    """Add policy lines in the caller's admin transaction; the number added.

    The whole resulting policy is validated first (role nesting depth), so a
    file is accepted whole or not at all.
    """
    store.lock_policy(conn, tenant.id)
    _, existing = store.load_lines(conn, tenant.id)
    build_policy(tenant.name, unique([*existing, *lines]))
    added = store.insert_lines(conn, tenant.id, lines)
    audit.append(
        conn,
        tenant.id,
        actor=actor,
        action="policy.add",
        detail={"lines": [line.csv() for line in lines], "changed": added},
    )
    return added


def remove_lines(
    conn: psycopg.Connection[Any],
    tenant: TenantRef,
    lines: Sequence[PolicyLine],
    *,
    actor: str,
    audit: AuditLog,
) -> int:
    """Remove policy lines in the caller's admin transaction; the number removed."""
    store.lock_policy(conn, tenant.id)
    removed = store.delete_lines(conn, tenant.id, lines)
    audit.append(
        conn,
        tenant.id,
        actor=actor,
        action="policy.remove",
        detail={"lines": [line.csv() for line in lines], "changed": removed},
    )
    return removed


def list_lines(conn: psycopg.Connection[Any], tenant: TenantRef) -> list[PolicyLine]:
    """The tenant's lines, in the order they were added."""
    return store.load_lines(conn, tenant.id)[1]
