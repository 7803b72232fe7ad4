"""`securerag keys rotate` and `securerag keys rotate-master`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from psycopg import sql
from rich.console import Console

from securerag.audit import AuditLog
from securerag.cli.batchwork import chosen_tenants, document_progress
from securerag.cli.operator import operator
from securerag.config import Settings
from securerag.crypto.aead import KEY_BYTES
from securerag.crypto.keyring import Keyring
from securerag.crypto.master import load_key_provider, next_key_file, write_key_file
from securerag.crypto.secrets import ServiceSecrets, rewrap_root
from securerag.db import APP_ROLE, Database, set_settings
from securerag.db.database import app_role_password
from securerag.db.migrate import INIT_LOCK
from securerag.errors import SecureRagError
from securerag.ingestion.rotation import RotationReport, rotate_tenant
from securerag.tenants import TenantRef

if TYPE_CHECKING:
    from securerag.runtime import Runtime


def rotate(rt: Runtime, *, tenant: str | None, actor: str, console: Console) -> None:
    """Rotate the data keys of one tenant, or of every tenant, re-encrypting every document."""
    failed = 0
    with rt.connect() as conn:
        for ref in chosen_tenants(rt, conn, tenant):
            report = _rotate_one(rt, conn, ref, actor=actor, console=console)
            verb = "rotated" if report.started else "resumed and finished rotating"
            console.print(
                f"{ref.name}: {verb} keys: {report.documents} documents ({report.chunks} chunks) "
                f"re-encrypted, {report.sessions} session keys re-wrapped, "
                f"{report.retired_keys_destroyed} old tenant keys destroyed"
            )
            for document_id in report.failed:
                console.print(
                    f"{ref.name}: document {document_id} did not authenticate and keeps its old key"
                )
            failed += len(report.failed)
    if failed:
        raise SecureRagError(f"{failed} documents could not be re-encrypted; see above")


def _rotate_one(rt: Runtime, conn: Any, ref: TenantRef, *, actor: str, console: Console) -> RotationReport:
    progress, started, advanced = document_progress(f"re-encrypting {ref.name}", console)
    with progress:
        return rotate_tenant(
            conn, rt.keyring, rt.audit, ref, actor=actor, on_start=started, on_document=advanced
        )


def rotate_master(settings: Settings, *, console: Console) -> None:
    """Re-wrap everything under a new master key.

    The new key is written to `master.key.next` first, so an interrupted run
    resumes with both keys; the query role's password follows the new key.
    """
    pending = next_key_file(settings)
    if not pending.exists():
        write_key_file(pending, os.urandom(KEY_BYTES))
    keys = load_key_provider(settings)  # next key primary, current one retired
    db = Database.from_settings(settings, keys)
    with db.connect_admin() as admin, admin.transaction():
        admin.execute("SELECT pg_advisory_xact_lock(%s)", (INIT_LOCK,))
        rewrap_root(admin, keys)
        rewrapped = Keyring(keys).rewrap_under_master(admin)
        # A key change for every tenant: on each tenant's chain, in the same transaction.
        audit = AuditLog(ServiceSecrets.load(admin, keys))
        for (tenant_id,) in admin.execute("SELECT id FROM securerag.tenants ORDER BY id").fetchall():
            set_settings(admin, {"tenant_id": int(tenant_id)})  # the chain head is read per tenant
            audit.append(
                admin,
                int(tenant_id),
                actor=operator(),
                action="keys.rotate-master",
                detail={"master_key_id": keys.key_id, "tenant_keys_rewrapped": rewrapped},
            )
        if settings.app_database_url is None:
            admin.execute(
                sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(app_role_password(keys))
                )
            )
    if settings.master_key is not None:
        console.print(
            f"re-wrapped {rewrapped} tenant keys and the service secrets under the new master key; "
            f"set SECURERAG_MASTER_KEY to the contents of {pending}, then delete that file"
        )
        return
    retired = settings.key_file.with_name("master.key.retired")
    os.replace(settings.key_file, retired)
    os.replace(pending, settings.key_file)
    console.print(
        f"re-wrapped {rewrapped} tenant keys and the service secrets; the new master key is in "
        f"{settings.key_file}. The old one is in {retired}: it opens only backups taken before "
        "now. Keep it apart from them, or destroy it to make those backups unreadable."
    )
