"""What `keys rotate` and `rescan` share: the tenants to work on, and a progress bar that
counts documents once the total is known."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from securerag.tenants import TenantRef, find_tenant

if TYPE_CHECKING:
    from securerag.runtime import Runtime


def chosen_tenants(rt: Runtime, conn: Any, tenant: str | None) -> list[TenantRef]:
    """The tenant named `tenant`, or every tenant."""
    if tenant is not None:
        return [find_tenant(conn, tenant)]
    with rt.db.connect_admin() as admin:
        rows = admin.execute("SELECT id, name FROM securerag.tenants ORDER BY id").fetchall()
    return [TenantRef(int(i), str(n)) for i, n in rows]


def document_progress(
    label: str, console: Console
) -> tuple[Progress, Callable[[int], None], Callable[[], None]]:
    """A bar (shown on a terminal only) and its two callbacks: total known, one document done."""
    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task(label, total=None)

    def started(total: int) -> None:
        progress.update(task, total=total)

    def advanced() -> None:
        progress.advance(task)

    return progress, started, advanced
