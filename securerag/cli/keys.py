"""`securerag keys rotate`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console

from securerag.db import tenant_transaction
from securerag.tenants import TenantRef, find_tenant

if TYPE_CHECKING:
    from securerag.runtime import Runtime


def rotate(rt: Runtime, *, tenant: str | None, actor: str, console: Console) -> None:
    """Rotate the tenant key of one tenant, or of every tenant."""
    with rt.connect() as conn:
        if tenant is not None:
            tenants = [find_tenant(conn, tenant)]
        else:
            with rt.db.connect_admin() as admin:
                tenants = [
                    TenantRef(int(i), str(n))
                    for i, n in admin.execute("SELECT id, name FROM securerag.tenants ORDER BY id").fetchall()
                ]
        for ref in tenants:
            with tenant_transaction(conn, ref.id, access="admin") as tx:
                new_id, rewrapped = rt.keyring.rotate_tenant_key(tx, ref.id)
                rt.audit.append(
                    tx,
                    ref.id,
                    actor=actor,
                    action="keys.rotate",
                    detail={"tenant_key": str(new_id), "rewrapped": rewrapped},
                )
            console.print(f"{ref.name}: new tenant key {new_id}, {rewrapped} keys re-wrapped")
