"""The audit trail: any change an owner makes to a row breaks the chain; exports link up."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from securerag.audit import export, missing_from
from securerag.db import tenant_transaction
from securerag.runtime import Runtime

TAMPERING = {
    "actor": "UPDATE securerag.audit_log SET actor = 'mallory' WHERE tenant_id = %(t)s AND seq = 2",
    "action": "UPDATE securerag.audit_log SET action = 'nothing' WHERE tenant_id = %(t)s AND seq = 2",
    "detail": "UPDATE securerag.audit_log SET detail = '{\"n\": 99}' WHERE tenant_id = %(t)s AND seq = 2",
    "time": "UPDATE securerag.audit_log SET at = at - interval '1 day' WHERE tenant_id = %(t)s AND seq = 2",
    "mac": "UPDATE securerag.audit_log SET mac = sha256(mac) WHERE tenant_id = %(t)s AND seq = 2",
    "deleted": "DELETE FROM securerag.audit_log WHERE tenant_id = %(t)s AND seq = 2",
    "renumbered": "UPDATE securerag.audit_log SET seq = seq + 10 WHERE tenant_id = %(t)s AND seq >= 2",
    "swapped": (
        "UPDATE securerag.audit_log a SET detail = b.detail FROM securerag.audit_log b"
        " WHERE a.tenant_id = %(t)s AND b.tenant_id = %(t)s AND a.seq = 2 AND b.seq = 3"
    ),
}


def _trail(runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]) -> Any:
    tenant = make_tenant()
    with tenant_transaction(conn, tenant.id, access="read", user="alice") as tx:
        for n in range(4):
            runtime.audit.append(tx, tenant.id, actor="alice", action="test.event", detail={"n": n})
    return tenant


@pytest.mark.parametrize("change", sorted(TAMPERING))
def test_any_change_to_a_row_breaks_the_chain(
    change: str,
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
) -> None:
    """Editing any field, deleting, renumbering or swapping entries (as the owner) is found,
    and the problem names the tenant. (Each change is rolled back: the trail is shared.)"""
    tenant = _trail(runtime, conn, make_tenant)
    assert [p for p in runtime.audit.verify(admin_conn) if p.tenant_id == tenant.id] == []
    with admin_conn.transaction(force_rollback=True):
        admin_conn.execute(TAMPERING[change], {"t": tenant.id})
        problems = [p for p in runtime.audit.verify(admin_conn) if p.tenant_id == tenant.id]
    assert problems, change
    assert [p for p in runtime.audit.verify(admin_conn) if p.tenant_id == tenant.id] == []


def test_export_is_the_chain_in_order_with_its_macs(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
) -> None:
    """One tenant's export: every entry in order, each `prev_mac` the previous `mac`."""
    tenant = _trail(runtime, conn, make_tenant)
    with admin_conn.transaction():
        entries = list(export(admin_conn, tenant=tenant.name))
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert {e["tenant"] for e in entries} == {tenant.name}
    assert [e["detail"] for e in entries if e["action"] == "test.event"] == [{"n": n} for n in range(4)]
    for before, after in itertools.pairwise(entries):
        assert after["prev_mac"] == before["mac"]


def test_cli_export_writes_json_lines_and_never_overwrites(
    cli_env: dict[str, str],
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
    tmp_path: Any,
) -> None:
    """`securerag audit export --tenant T -o FILE` writes one JSON object per line; an existing
    file is refused with a one-line error."""
    tenant = _trail(runtime, conn, make_tenant)
    target = tmp_path / "audit.jsonl"
    cmd = [sys.executable, "-m", "securerag", "audit", "export", "--tenant", tenant.name, "-o", str(target)]
    done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(lines) >= 4
    assert all(line["tenant"] == tenant.name for line in lines)
    check = [sys.executable, "-m", "securerag", "audit", "verify", "--against", str(target)]
    verified = subprocess.run(check, env=cli_env, capture_output=True, text=True, timeout=240)
    assert verified.returncode == 0, verified.stderr
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_text('{"tenant": "x", "seq": 1, "mac": "00"}\n{"seq": "two"}\n')
    refused = subprocess.run(
        [*check[:-1], str(bogus)], env=cli_env, capture_output=True, text=True, timeout=240
    )
    assert refused.returncode != 0
    assert "line 2: not an `audit export` entry" in refused.stderr
    assert "Traceback" not in refused.stderr
    again = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=240)
    assert again.returncode != 0
    assert again.stderr.strip().count("\n") == 0
    assert "exists" in again.stderr


def test_cutting_off_the_newest_entries_is_found_against_an_export(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
) -> None:
    """Deleting the newest entries leaves a chain that verifies on its own; an earlier export
    kept elsewhere shows them gone."""
    tenant = _trail(runtime, conn, make_tenant)
    with admin_conn.transaction():
        kept = list(export(admin_conn, tenant=tenant.name))
    last = max(e["seq"] for e in kept)
    with admin_conn.transaction(force_rollback=True):
        admin_conn.execute(
            "DELETE FROM securerag.audit_log WHERE tenant_id = %s AND seq = %s", (tenant.id, last)
        )
        assert [p for p in runtime.audit.verify(admin_conn) if p.tenant_id == tenant.id] == []
        found = missing_from(admin_conn, kept)
    assert [(p.tenant_id, p.seq, p.problem) for p in found] == [(tenant.id, last, "exported entry missing")]
    assert missing_from(admin_conn, kept) == []
