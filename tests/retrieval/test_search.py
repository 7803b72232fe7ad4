"""Top-k among readable chunks: never short, never unreadable, at every selectivity."""

from __future__ import annotations

import itertools
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securerag.authz import TenantPolicy, apply_read_filter, parse_policy
from securerag.authz.compiler import glob_matches
from securerag.db import Database, tenant_transaction
from securerag.models import DocumentAttrs, Level
from securerag.retrieval import VectorSearch
from securerag.retrieval.search import SearchTuning, key_ranges
from securerag.tenants import TenantRef, ensure_tenant

N = 6_000
# collection -> share of the tenant's chunks
SHARES = {"c/big": 0.9, "c/mid": 0.09, "c/small": 0.009, "c/tiny": 0.001}
USERS = {
    "star": "collection:*",
    "all": "collection:c/*",
    "mid": "collection:c/mid",
    "small": "collection:c/small",
    "tiny": "collection:c/tiny",
    "none": "collection:nothing",
}


@pytest.fixture(scope="module")
def world(db: Database) -> Iterator[tuple[TenantRef, npt.NDArray[np.float32], list[str], TenantPolicy]]:
    rng = np.random.default_rng(42)
    vectors = rng.standard_normal((N, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = rng.choice(list(SHARES), size=N, p=list(SHARES.values())).tolist()
    with db.connect() as conn:
        tenant = ensure_tenant(conn, f"search-{uuid.uuid4().hex[:8]}")
        with tenant_transaction(conn, tenant.id, access="admin") as tx, tx.cursor() as cur:
            for start in range(0, N, 10):
                doc = uuid.uuid4()
                coll = names[start]
                rows = range(start, min(start + 10, N))
                for i in rows:
                    names[i] = coll  # a document's chunks share its collection
                cur.execute(
                    "INSERT INTO securerag.documents (tenant_id, id, collection, classification, acl,"
                    " key_id, sealed_meta, n_chunks) VALUES (%s, %s, %s, 0, '{}', %s, 'x', %s)",
                    (tenant.id, doc, coll, uuid.uuid4(), len(rows)),
                )
                cur.executemany(
                    "INSERT INTO securerag.chunks (tenant_id, id, document_id, ordinal, collection,"
                    " classification, acl, embedding, sealed, scan_score, scan_action, scan_reasons,"
                    " scanner_version) VALUES (%s, %s, %s, %s, %s, 0, '{}', %s, 'x', 0, 0, '{}', 1)",
                    [(tenant.id, uuid.UUID(int=i + 1), doc, i - start, coll, vectors[i]) for i in rows],
                )
        text = "\n".join(f"p, {u}, {tenant.name}, {obj}, read" for u, obj in USERS.items())
        policy = TenantPolicy(tenant.name, tuple(parse_policy(text.splitlines(), tenant=tenant.name)))
        yield tenant, vectors, names, policy


def _brute_force(
    vectors: npt.NDArray[np.float32],
    names: list[str],
    readable: set[str],
    query: npt.NDArray[np.float32],
    k: int,
) -> list[int]:
    idx = np.array([i for i, n in enumerate(names) if n in readable], dtype=int)
    if idx.size == 0:
        return []
    distances = 1.0 - vectors[idx] @ query
    order = np.lexsort((idx, distances))[:k]
    return [int(i) for i in idx[order]]


def _run(
    db: Database,
    tenant: TenantRef,
    policy: TenantPolicy,
    user: str,
    query: Any,
    k: int,
    search: VectorSearch,
    plan: Any = None,
    *,
    cripple_hnsw: bool = False,
) -> tuple[list[int], str]:
    read = policy.grants(user).read
    with db.connect() as conn, tenant_transaction(conn, tenant.id, access="read", user=user) as tx:
        apply_read_filter(tx, read)
        if cripple_hnsw:
            # Make HNSW attractive to the planner (per-row distances look expensive, as on
            # a large partition) and useless (one candidate), so any use of it shows.
            tx.execute(
                "SELECT set_config('hnsw.ef_search', '1', true),"
                " set_config('hnsw.iterative_scan', 'off', true),"
                " set_config('cpu_operator_cost', '10', true)"
            )
        found = search.search(tx, tenant.id, read, query, k, plan=plan)
    return [row.id.int - 1 for row in found.rows], found.plan


@pytest.mark.parametrize("user", list(USERS))
def test_routed_search_is_never_short(db: Database, world: Any, user: str) -> None:
    """For 20 queries, the routed search returns min(k, readable) rows, all readable, nearest first."""
    tenant, vectors, names, policy = world
    read = policy.grants(user).read
    readable = {n for n in SHARES if read.allows(DocumentAttrs(tenant.name, n, Level.PUBLIC, ()))}
    available = sum(1 for n in names if n in readable)
    rng = np.random.default_rng(7)
    for _ in range(20):
        query = rng.standard_normal(384).astype(np.float32)
        query /= np.linalg.norm(query)
        got, _ = _run(db, tenant, policy, user, query, 10, VectorSearch())
        assert len(got) == min(10, available)
        assert all(names[i] in readable for i in got)
        distances = [1.0 - float(vectors[i] @ query) for i in got]
        assert distances == sorted(distances)


def _hnsw_scans(db: Database, tenant: TenantRef) -> int:
    with db.connect_admin() as admin:
        admin.execute("SELECT pg_stat_clear_snapshot()")
        row = admin.execute(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = %s",
            (f"chunks_t{tenant.id}_embedding_idx",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _wait_for_scans(db: Database, tenant: TenantRef, at_least: int) -> int:
    """Backends report statistics when they close; wait (briefly) until they have."""
    deadline = time.monotonic() + 10
    while (seen := _hnsw_scans(db, tenant)) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


@pytest.mark.parametrize("user", ["star", "all", "mid", "small", "tiny"])
def test_exact_plan_is_exact(db: Database, world: Any, user: str) -> None:
    """The exact path returns precisely the brute-force top-k of the readable set, and never
    touches the HNSW index, whatever the planner's costs say."""
    tenant, vectors, names, policy = world
    read = policy.grants(user).read
    readable = {n for n in SHARES if read.allows(DocumentAttrs(tenant.name, n, Level.PUBLIC, ()))}
    marker = np.ones(384, dtype=np.float32) / np.sqrt(384)
    # Calibrate: how many index scans does one forced-HNSW search add?
    start = _hnsw_scans(db, tenant)
    _run(db, tenant, policy, "star", marker, 10, VectorSearch(), plan="hnsw")
    per_marker = _wait_for_scans(db, tenant, start + 1) - start
    assert per_marker >= 1
    before = _hnsw_scans(db, tenant)
    rng = np.random.default_rng(11)
    for _ in range(5):
        query = rng.standard_normal(384).astype(np.float32)
        query /= np.linalg.norm(query)
        got, plan = _run(db, tenant, policy, user, query, 10, VectorSearch(), plan="exact", cripple_hnsw=True)
        assert plan == "exact"
        assert got == _brute_force(vectors, names, readable, query, 10)
    _run(db, tenant, policy, "star", marker, 10, VectorSearch(), plan="hnsw")
    # The marker's scans arrive after those of the exact searches (their connections closed first).
    assert _wait_for_scans(db, tenant, before + per_marker) == before + per_marker


def test_router_picks_exact_for_few_and_hnsw_for_many(db: Database, world: Any) -> None:
    """Selective readers take the exact path; broad readers the HNSW path."""
    tenant, _, _, policy = world
    query = np.ones(384, dtype=np.float32) / np.sqrt(384)
    search = VectorSearch(SearchTuning(exact_max_rows=1_000, exact_max_share=0.01))
    assert _run(db, tenant, policy, "tiny", query, 10, search)[1] == "exact"
    assert _run(db, tenant, policy, "all", query, 10, search)[1] in ("hnsw", "hnsw+exact")


def test_hnsw_shortfall_falls_back_to_exact(db: Database, world: Any) -> None:
    """If the HNSW budget runs out before k readable rows, the exact path fills the result."""
    tenant, _, names, policy = world
    query = np.ones(384, dtype=np.float32) / np.sqrt(384)
    # Force HNSW for a 0.1% reader with a tiny scan budget: it cannot find 10 rows alone.
    search = VectorSearch(
        SearchTuning(exact_max_rows=0, exact_max_share=0, ef_search=10, oversample=1, max_scan_tuples=20)
    )
    got, plan = _run(db, tenant, policy, "tiny", query, 10, search)
    assert plan == "hnsw+exact"
    assert len(got) == min(10, sum(1 for n in names if n == "c/tiny"))


def test_k_must_be_positive(db: Database, world: Any) -> None:
    """k below 1 is a programming error."""
    tenant, _, _, policy = world
    with pytest.raises(ValueError, match="k must be"):
        _run(db, tenant, policy, "all", np.ones(384, dtype=np.float32), 0, VectorSearch())


names = st.text(
    alphabet=st.sampled_from(["a", "b", "/", "%", "_", "z", "é", "\uffff", "\U0010ffff"]),
    min_size=1,
    max_size=6,
)


@settings(max_examples=500, deadline=None)
@given(globs=st.lists(st.one_of(names, names.map(lambda n: n + "*"), st.just("*")), max_size=5), name=names)
def test_key_ranges_contain_every_match(globs: list[str], name: str) -> None:
    """Every name a glob matches lies in one of the ranges; the ranges are sorted and disjoint."""
    ranges = key_ranges(globs)
    if any(glob_matches(g, name) for g in globs):
        assert any(lo <= name and (hi is None or name < hi) for lo, hi in ranges)
    for (_, hi), (lo, _) in itertools.pairwise(ranges):
        assert hi is not None
        assert hi <= lo


def test_shared_documents_counted_once_before_the_cut(db: Database) -> None:
    """Documents shared with a user and its role count once: a cut-off share list is
    recognised as cut off, and the exact path then misses none of them."""
    with db.connect() as conn:
        tenant = ensure_tenant(conn, f"shares-{uuid.uuid4().hex[:8]}")
        rng = np.random.default_rng(3)
        # Ten documents shared with alice and her role, then one shared with the role only,
        # whose id sorts last: a LIMIT applied before DISTINCT would stop short of it.
        docs = [(uuid.UUID(int=i + 1), ["alice", "role:team"]) for i in range(10)]
        docs.append((uuid.UUID(int=(1 << 128) - 1), ["role:team"]))
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            for doc_id, acl in docs:
                tx.execute(
                    "INSERT INTO securerag.documents (tenant_id, id, collection, classification, acl, key_id,"
                    " sealed_meta, n_chunks) VALUES (%s, %s, 'private', 0, %s, %s, 'x', 1)",
                    (tenant.id, doc_id, acl, uuid.uuid4()),
                )
                vector = rng.standard_normal(384).astype(np.float32)
                tx.execute(
                    "INSERT INTO securerag.chunks (tenant_id, id, document_id, ordinal, collection,"
                    " classification, acl, embedding, sealed, scan_score, scan_action, scan_reasons,"
                    " scanner_version) VALUES (%s, %s, %s, 0, 'private', 0, %s, %s, 'x', 0, 0, '{}', 1)",
                    (tenant.id, uuid.uuid4(), doc_id, acl, vector / np.linalg.norm(vector)),
                )
        lines = parse_policy([f"g, alice, role:team, {tenant.name}"], tenant=tenant.name)
        read = TenantPolicy(tenant.name, tuple(lines)).grants("alice").read
        search = VectorSearch(SearchTuning(max_shared_documents=10))
        with tenant_transaction(conn, tenant.id, access="read", user="alice") as tx:
            apply_read_filter(tx, read)
            est = search.estimate(tx, tenant.id, read)
            found = search.search(
                tx, tenant.id, read, np.ones(384, dtype=np.float32) / np.sqrt(384), 20, plan="exact"
            )
    assert est.shared_truncated
    assert {row.document_id for row in found.rows} == {doc_id for doc_id, _ in docs}


def test_queries_touch_only_their_tenants_partition(db: Database, world: Any) -> None:
    """Both plans scan the caller's partition alone, so another tenant's data cannot change
    the results or the work done (and a second tenant's rows leave them unchanged)."""
    from psycopg import sql as psql

    from securerag.retrieval.search import _EXACT, _READABLE, HNSW_QUERY

    tenant, _, _, policy = world
    read = policy.grants("all").read
    query = np.ones(384, dtype=np.float32) / np.sqrt(384)
    before, _ = _run(db, tenant, policy, "all", query, 10, VectorSearch())
    with db.connect() as conn:
        other = ensure_tenant(conn, f"noise-{uuid.uuid4().hex[:8]}")
        rng = np.random.default_rng(5)
        with tenant_transaction(conn, other.id, access="admin") as tx:
            doc = uuid.uuid4()
            tx.execute(
                "INSERT INTO securerag.documents (tenant_id, id, collection, classification, acl, key_id,"
                " sealed_meta, n_chunks) VALUES (%s, %s, 'c/big', 0, '{}', %s, 'x', 500)",
                (other.id, doc, uuid.uuid4()),
            )
            vectors = rng.standard_normal((500, 384)).astype(np.float32)
            # Near-copies of the query: in a shared index they would crowd out tenant A's results.
            vectors = query + 0.01 * vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            with tx.cursor() as cur:
                cur.executemany(
                    "INSERT INTO securerag.chunks (tenant_id, id, document_id, ordinal, collection,"
                    " classification, acl, embedding, sealed, scan_score, scan_action, scan_reasons,"
                    " scanner_version) VALUES (%s, %s, %s, %s, 'c/big', 0, '{}', %s, 'x', 0, 0, '{}', 1)",
                    [(other.id, uuid.uuid4(), doc, i, v) for i, v in enumerate(vectors)],
                )
        with tenant_transaction(conn, tenant.id, access="read", user="all") as tx:
            apply_read_filter(tx, read)
            params = {
                "tenant": tenant.id,
                "clearance": 0,
                "allow": read.allow_patterns,
                "deny": read.deny_patterns,
                "subjects": list(read.subjects),
                "q": query,
                "k": 10,
                "n": 40,
                "lo0": "",
                "hi0": "\U0010ffff",
            }
            exact = _EXACT.format(
                readable=_READABLE,
                columns=psql.SQL("c.id"),
                hint=psql.SQL("c.collection >= %(lo0)s AND c.collection < %(hi0)s"),
            )
            plans = [
                "\n".join(r[0] for r in tx.execute(psql.SQL("EXPLAIN ") + q, params).fetchall())
                for q in (HNSW_QUERY, exact)
            ]
    after, _ = _run(db, tenant, policy, "all", query, 10, VectorSearch())
    assert after == before
    for plan in plans:
        partitions = set(re.findall(r"chunks_t\d+", plan))
        assert partitions == {f"chunks_t{tenant.id}"}, plan


def test_reused_estimates_never_change_results(db: Database, runtime: Any) -> None:
    """With the routing estimate reused, newly readable chunks are found at once and deleted
    ones are gone at once: the estimate steers the plan, never the answer."""
    from securerag.ingestion import DocumentInput

    search = VectorSearch(SearchTuning(estimate_seconds=3600))
    query = np.ones(384, dtype=np.float32) / np.sqrt(384)
    with db.connect() as conn:
        tenant = ensure_tenant(conn, f"est-{uuid.uuid4().hex[:8]}")
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            runtime.keyring.tenant_key(tx, tenant.id)
        read = (
            TenantPolicy(
                tenant.name,
                tuple(parse_policy([f"p, u, {tenant.name}, collection:c/*, read"], tenant=tenant.name)),
            )
            .grants("u")
            .read
        )

        def found() -> int:
            with tenant_transaction(conn, tenant.id, access="read", user="u") as tx:
                apply_read_filter(tx, read)
                return len(search.search(tx, tenant.id, read, query, 10).rows)

        assert found() == 0  # counted fresh: nothing readable
        stored = []
        for i in range(3):
            prepared = runtime.ingestor.prepare(
                DocumentInput(collection="c/x", title="t", text=f"doc {i}", classification=Level.PUBLIC)
            )
            with tenant_transaction(conn, tenant.id, access="admin") as tx:
                stored.append(runtime.ingestor.store(tx, tenant.id, prepared, actor="test"))
        assert found() == 3  # a zero is never reused
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            for doc in stored[:2]:
                runtime.ingestor.delete(tx, tenant.id, doc.document_id, actor="test")
        assert found() == 1  # the reused count of 3 does not bring deleted chunks back
