"""Session memory: encrypted, isolated per (tenant, user, session), with a TTL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from securerag.config import Settings
from securerag.crypto.aead import Aead
from securerag.crypto.binding import memory_aad
from securerag.db import tenant_transaction
from securerag.errors import DecryptionError, InvalidInput, QuotaExceeded
from securerag.memory import MemoryLimits, MemoryStore
from securerag.runtime import Runtime
from tests.fakes import FakeClock


def _append(
    store: MemoryStore,
    conn: psycopg.Connection[Any],
    tenant: Any,
    user: str,
    sid: str,
    content: str,
    ttl: int | None = None,
) -> None:
    with tenant_transaction(conn, tenant.id, access="read", user=user) as tx:
        store.append(tx, tenant, user, sid, role="user", content=content, ttl_seconds=ttl)


def _read(store: MemoryStore, conn: psycopg.Connection[Any], tenant: Any, user: str, sid: str) -> list[str]:
    with tenant_transaction(conn, tenant.id, access="read", user=user) as tx:
        return [e.content for e in store.entries(tx, tenant, user, sid)]


def test_entries_round_trip_in_order(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """A user's entries come back decrypted, oldest first."""
    tenant = make_tenant()
    for text in ("first", "second", "third"):
        _append(runtime.memory, conn, tenant, "alice", "s1", text)
    assert _read(runtime.memory, conn, tenant, "alice", "s1") == ["first", "second", "third"]


def test_other_user_and_other_tenant_see_an_empty_session(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """The same session id read by another user, or in another tenant, is empty."""
    a, b = make_tenant(), make_tenant()
    _append(runtime.memory, conn, a, "alice", "shared-id", "alice's secret")
    assert _read(runtime.memory, conn, a, "bob", "shared-id") == []
    assert _read(runtime.memory, conn, b, "alice", "shared-id") == []


def test_rls_hides_other_users_rows_even_without_where(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """Bob's transaction cannot see Alice's rows, even with a query naming her."""
    tenant = make_tenant()
    _append(runtime.memory, conn, tenant, "alice", "s1", "hello")
    with tenant_transaction(conn, tenant.id, access="read", user="bob") as tx:
        rows = tx.execute("SELECT count(*) FROM securerag.memory_entries WHERE user_name = 'alice'")
        assert rows.fetchone() == (0,)


def test_ttl_is_honoured(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """An entry past its expiry is never returned."""
    clock = FakeClock()
    store = MemoryStore(runtime.keyring, default_ttl_seconds=None, clock=clock)
    tenant = make_tenant()
    _append(store, conn, tenant, "alice", "s1", "short-lived", ttl=1)
    _append(store, conn, tenant, "alice", "s1", "forever")
    assert _read(store, conn, tenant, "alice", "s1") == ["short-lived", "forever"]
    clock.advance(1.5)
    assert _read(store, conn, tenant, "alice", "s1") == ["forever"]


def test_each_tenant_has_its_own_default_ttl(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """An entry written without a TTL gets its tenant's default, else the global one."""
    clock = FakeClock()
    short, other = make_tenant(), make_tenant()
    store = MemoryStore(
        runtime.keyring, default_ttl_seconds=3_600, ttl_by_tenant={short.name: 2}, clock=clock
    )
    _append(store, conn, short, "alice", "s1", "brief")
    _append(store, conn, other, "alice", "s1", "hour")
    clock.advance(2.5)
    assert _read(store, conn, short, "alice", "s1") == []
    assert _read(store, conn, other, "alice", "s1") == ["hour"]
    with pytest.raises(ValueError, match="TTL"):
        MemoryStore(runtime.keyring, ttl_by_tenant={"x": 0})


def test_per_tenant_ttls_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`SECURERAG_MEMORY_TTL_BY_TENANT` is JSON; an out-of-range TTL is refused at startup."""
    monkeypatch.setenv("SECURERAG_MEMORY_TTL_BY_TENANT", '{"acme": 600}')
    assert Settings().memory_ttl_by_tenant == {"acme": 600}
    monkeypatch.setenv("SECURERAG_MEMORY_TTL_BY_TENANT", '{"acme": 0}')
    with pytest.raises(ValidationError, match="memory TTL of acme"):
        Settings()


def test_deleted_session_cannot_be_decrypted(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
) -> None:
    """After deletion, a copy of the ciphertext taken before cannot be opened with any remaining key."""
    tenant = make_tenant()
    _append(runtime.memory, conn, tenant, "alice", "gone", "remember my PIN 4242")
    entry_id, sealed = admin_conn.execute(
        "SELECT id, sealed FROM securerag.memory_entries WHERE tenant_id = %s", (tenant.id,)
    ).fetchone()
    with tenant_transaction(conn, tenant.id, access="read", user="alice") as tx:
        assert runtime.memory.delete_session(tx, tenant, "alice", "gone")
    runtime.keyring.clear_cache()
    with tenant_transaction(conn, tenant.id, access="admin", user="alice") as tx:
        key_ids = [r[0] for r in tx.execute("SELECT id FROM securerag.data_keys").fetchall()]
        remaining = runtime.keyring.keys(tx, tenant.id, key_ids)
    aad = memory_aad(tenant_id=tenant.id, user="alice", session_id="gone", entry_id=entry_id, role="user")
    for key in remaining.values():
        with pytest.raises(DecryptionError):
            Aead(key).open(bytes(sealed), aad=aad)
    assert _read(runtime.memory, conn, tenant, "alice", "gone") == []
    audited = admin_conn.execute(
        "SELECT actor FROM securerag.audit_log WHERE tenant_id = %s AND action = 'session.delete'",
        (tenant.id,),
    ).fetchall()
    assert audited == [("alice",)]


def test_quota_is_a_clear_error(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """Past the per-session entry quota, writing fails with QuotaExceeded."""
    store = MemoryStore(runtime.keyring, limits=MemoryLimits(max_entries=2))
    tenant = make_tenant()
    _append(store, conn, tenant, "alice", "s", "one")
    _append(store, conn, tenant, "alice", "s", "two")
    with pytest.raises(QuotaExceeded):
        _append(store, conn, tenant, "alice", "s", "three")


@pytest.mark.parametrize(
    "sid", ["", "has space", "x" * 129, "../etc"], ids=["empty", "space", "long", "path"]
)
def test_bad_session_ids_are_refused(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any], sid: str
) -> None:
    """Session ids outside the allowed alphabet are invalid input."""
    tenant = make_tenant()
    with pytest.raises(InvalidInput):
        _append(runtime.memory, conn, tenant, "alice", sid, "x")


def test_sweeper_hard_deletes_expired_entries_of_every_tenant(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
) -> None:
    """A 1-second entry is gone from reads once it expires, and from the table after a sweep
    (run through the query role, across tenants); live entries stay."""
    import time

    from securerag.memory import sweep_expired

    a, b = make_tenant(), make_tenant()
    _append(runtime.memory, conn, a, "alice", "s1", "short-lived", ttl=1)
    _append(runtime.memory, conn, b, "bob", "s9", "short-lived too", ttl=1)
    _append(runtime.memory, conn, a, "alice", "s1", "kept", ttl=3600)

    def rows(tenant: Any) -> int:
        found = admin_conn.execute(
            "SELECT count(*) FROM securerag.memory_entries WHERE tenant_id = %s", (tenant.id,)
        ).fetchone()
        assert found is not None
        return int(found[0])

    time.sleep(1.2)
    assert _read(runtime.memory, conn, a, "alice", "s1") == ["kept"]
    assert (rows(a), rows(b)) == (2, 1)  # expired but still on disk until swept
    assert sweep_expired(conn).entries >= 2
    assert (rows(a), rows(b)) == (1, 0)
    assert _read(runtime.memory, conn, a, "alice", "s1") == ["kept"]


def test_sessions_left_empty_are_closed_and_their_keys_destroyed(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    admin_conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
) -> None:
    """Once a session's last entry has expired and been swept, the sweep closes the session and
    destroys its key; a session with a live entry keeps both; writing again opens a new key."""
    import time

    from securerag.memory import sweep_expired

    tenant = make_tenant()
    _append(runtime.memory, conn, tenant, "alice", "empty-soon", "brief", ttl=1)
    _append(runtime.memory, conn, tenant, "alice", "live", "stays", ttl=3600)

    def session_key(sid: str) -> Any:
        row = admin_conn.execute(
            "SELECT s.key_id, (SELECT count(*) FROM securerag.data_keys k"
            "  WHERE k.tenant_id = s.tenant_id AND k.id = s.key_id)"
            " FROM securerag.memory_sessions s WHERE s.tenant_id = %s AND s.session_id = %s",
            (tenant.id, sid),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    old_key, present = session_key("empty-soon")
    assert present == 1
    time.sleep(1.2)
    assert sweep_expired(conn, idle_seconds=0).sessions >= 1
    assert session_key("empty-soon") is None
    gone = admin_conn.execute("SELECT count(*) FROM securerag.data_keys WHERE id = %s", (old_key,)).fetchone()
    assert gone == (0,)
    assert session_key("live") is not None
    assert _read(runtime.memory, conn, tenant, "alice", "live") == ["stays"]
    _append(runtime.memory, conn, tenant, "alice", "empty-soon", "again")
    assert session_key("empty-soon")[0] != old_key
    assert _read(runtime.memory, conn, tenant, "alice", "empty-soon") == ["again"]


def test_the_session_sweep_never_closes_a_session_an_append_is_using(
    runtime: Runtime, db: Any, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """While an append holds a session's lock (same lock key in Python and SQL), the sweep skips
    that session; once the append commits its entry, the session is no longer empty."""
    import time

    from securerag.memory import sweep_expired

    tenant = make_tenant()
    _append(runtime.memory, conn, tenant, "alice", "busy", "brief", ttl=1)
    time.sleep(1.2)
    assert sweep_expired(conn, idle_seconds=3_600).sessions == 0  # opened just now: not idle yet
    with db.connect() as writer:
        with tenant_transaction(writer, tenant.id, access="read", user="alice") as tx:
            # What append does first: take the session's lock and read its key. No row lock is
            # held yet, so only the advisory lock (same key in Python and SQL) protects the key.
            runtime.memory._session_key(tx, tenant.id, "alice", "busy")
            assert sweep_expired(conn, idle_seconds=0).sessions == 0
            assert _session_count(conn, tenant, "busy") == 1
        assert sweep_expired(conn, idle_seconds=0).sessions >= 1  # lock released: now it goes
    assert _session_count(conn, tenant, "busy") == 0


def _session_count(conn: psycopg.Connection[Any], tenant: Any, sid: str) -> int:
    with tenant_transaction(conn, tenant.id, access="read", user="alice") as tx:
        row = tx.execute(
            "SELECT count(*) FROM securerag.memory_sessions WHERE user_name = 'alice' AND session_id = %s",
            (sid,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_sessions_are_closed_in_bounded_batches(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """More idle sessions than one batch are all closed, a batch per transaction."""
    import time

    from securerag.memory import sweep_expired

    tenant = make_tenant()
    for n in range(5):
        _append(runtime.memory, conn, tenant, "alice", f"old-{n}", "brief", ttl=1)
    time.sleep(1.2)
    assert sweep_expired(conn, session_batch=2, idle_seconds=0).sessions >= 5
    with tenant_transaction(conn, tenant.id, access="read", user="alice") as tx:
        left = tx.execute(
            "SELECT count(*) FROM securerag.memory_sessions WHERE user_name = 'alice'"
        ).fetchone()
    assert left == (0,)


def test_several_turns_are_stored_all_or_none(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """A question and its answer that together pass the quota are both refused."""
    store = MemoryStore(runtime.keyring, limits=MemoryLimits(max_entries=3))
    tenant = make_tenant()
    _append(store, conn, tenant, "alice", "s1", "first")
    _append(store, conn, tenant, "alice", "s1", "second")
    with (
        pytest.raises(QuotaExceeded),
        tenant_transaction(conn, tenant.id, access="read", user="alice") as tx,
    ):
        store.append_many(tx, tenant, "alice", "s1", [("user", "q"), ("assistant", "a")])
    assert _read(store, conn, tenant, "alice", "s1") == ["first", "second"]


def test_a_batch_that_does_not_fit_is_refused_before_it_is_scanned(
    runtime: Runtime,
    conn: psycopg.Connection[Any],
    make_tenant: Callable[..., Any],
    scan_batches: list[list[str]],
) -> None:
    """Entries are scanned when written, but only once the batch is known to fit: a full
    session costs no scan, however many turns are offered."""
    store = MemoryStore(runtime.keyring, limits=MemoryLimits(max_entries=3), scanner=runtime.scanner)
    tenant = make_tenant()
    with tenant_transaction(conn, tenant.id, access="read", user="alice") as tx:
        store.append_many(tx, tenant, "alice", "s1", [("user", "q"), ("assistant", "a")])
    assert scan_batches == [["q", "a"]]
    with (
        pytest.raises(QuotaExceeded),
        tenant_transaction(conn, tenant.id, access="read", user="alice") as tx,
    ):
        store.append_many(tx, tenant, "alice", "s1", [("user", "x" * 1000)] * 50)
    assert scan_batches == [["q", "a"]]
    assert _read(store, conn, tenant, "alice", "s1") == ["q", "a"]


def test_writing_no_turns_opens_no_session(
    runtime: Runtime, conn: psycopg.Connection[Any], make_tenant: Callable[..., Any]
) -> None:
    """An empty batch writes nothing: no session, so no key."""
    tenant = make_tenant()
    with tenant_transaction(conn, tenant.id, access="read", user="alice") as tx:
        assert runtime.memory.append_many(tx, tenant, "alice", "empty", []) == []
        row = tx.execute(
            "SELECT count(*) FROM securerag.memory_sessions WHERE tenant_id = %s AND session_id = 'empty'",
            (tenant.id,),
        ).fetchone()
    assert row == (0,)
