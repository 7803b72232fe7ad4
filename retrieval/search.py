"""Authorized k-nearest-neighbour search in one tenant's chunk partition.

The reader's filter is in the WHERE clause of the query that ranks by
distance, so top-k means the k nearest chunks *among those the reader may
read*. pgvector's HNSW applies a filter after it produced its candidates, so a
selective filter under-fills; the plan is therefore routed per query on how
many chunks the reader may read (known exactly from `collection_stats`):

- **exact**: few readable chunks. The HNSW index is switched off for the
  transaction, a B-tree on (tenant, collection, classification) narrows the
  rows, and distances are computed and sorted for all of them.
- **hnsw**: many readable chunks. The partition's HNSW graph with pgvector 0.8
  iterative scans (`relaxed_order`, re-sorted afterwards) and a scan budget
  sized for the filter's selectivity.

If the HNSW path still returns fewer rows than it should (its budget ran out),
the exact path runs: results are never short while readable chunks remain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.rows import class_row

from securerag.authz import ReadFilter

Plan = Literal["exact", "hnsw", "hnsw+exact", "empty"]


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """One ranked chunk, still sealed."""

    id: uuid.UUID
    document_id: uuid.UUID
    ordinal: int
    collection: str
    classification: int
    acl: list[str]
    sealed: bytes
    scan_score: float
    scan_action: int
    scan_reasons: list[str]
    scanner_version: int
    distance: float


@dataclass(frozen=True, slots=True)
class Estimate:
    """How many chunks the tenant holds, the reader may read, and an exact scan would touch."""

    total: int
    readable: int
    scanned: int
    collections: list[str]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Ranked rows and how they were found."""

    rows: list[ChunkRow]
    plan: Plan
    estimate: Estimate


@dataclass(frozen=True, slots=True)
class SearchTuning:
    """Knobs of the router, measured by `bench/retrieval.py`."""

    exact_max_rows: int = 4_000
    """Route to the exact path when an exact scan would touch at most this many rows."""
    ef_search: int = 100
    """HNSW candidate list (recall at 100% selectivity)."""
    oversample: int = 4
    """Relaxed-order results gathered per returned row before the re-sort."""
    max_scan_tuples: int = 40_000
    """Upper bound on HNSW tuples visited by one iterative scan."""


_COLUMNS = (
    "id, document_id, ordinal, collection, classification, acl, sealed, scan_score, scan_action,"
    " scan_reasons, scanner_version"
)

# The read decision of authorization.md, rows 1-4, as bound parameters.
_READABLE = (
    "tenant_id = %(tenant)s"
    " AND classification <= %(clearance)s"
    " AND NOT (collection LIKE ANY (%(deny)s::text[]))"
    " AND (collection LIKE ANY (%(allow)s::text[]) OR acl && %(subjects)s::text[])"
)

_ESTIMATE = f"""
SELECT coalesce(sum(n_chunks), 0),
       coalesce(sum(n_chunks) FILTER (WHERE readable), 0),
       coalesce(array_agg(DISTINCT collection) FILTER (WHERE readable), '{{}}')
  FROM (SELECT n_chunks, collection, ({_READABLE}) AS readable
          FROM securerag.collection_stats WHERE tenant_id = %(tenant)s) AS s
"""

_SCANNED = """
SELECT coalesce(sum(n_chunks), 0) FROM securerag.collection_stats
 WHERE tenant_id = %(tenant)s AND collection = ANY (%(collections)s::text[])
   AND classification <= %(clearance)s
"""

# `collection = ANY(...)` repeats what the filter implies in a form a B-tree can
# use (text equality is leakproof, so it may run before the RLS quals).
_EXACT = f"""
SELECT {_COLUMNS}, embedding <=> %(q)s AS distance
  FROM securerag.chunks
 WHERE {_READABLE}
   AND collection = ANY (%(collections)s::text[])
 ORDER BY distance, id
 LIMIT %(k)s
"""

# pgvector's relaxed order returns rows slightly out of order: gather more than
# k in a materialised CTE and sort them exactly.
_HNSW = f"""
WITH candidates AS MATERIALIZED (
  SELECT {_COLUMNS}, embedding <=> %(q)s AS distance
    FROM securerag.chunks
   WHERE {_READABLE}
   ORDER BY embedding <=> %(q)s
   LIMIT %(n)s
)
SELECT * FROM candidates ORDER BY distance + 0, id LIMIT %(k)s
"""


class VectorSearch:
    """Runs the routed, authorized k-NN query inside the caller's tenant transaction."""

    def __init__(self, tuning: SearchTuning | None = None) -> None:
        self._tuning = tuning or SearchTuning()

    @property
    def tuning(self) -> SearchTuning:
        """The router's knobs."""
        return self._tuning

    def estimate(self, conn: psycopg.Connection[Any], tenant_id: int, read: ReadFilter) -> Estimate:
        """Counts from `collection_stats` (exact, maintained by trigger)."""
        params = _params(tenant_id, read)
        row = conn.execute(_ESTIMATE, params).fetchone()
        assert row is not None
        total, readable, collections = int(row[0]), int(row[1]), list(row[2])
        scanned = 0
        if collections:
            srow = conn.execute(_SCANNED, {**params, "collections": collections}).fetchone()
            scanned = int(srow[0]) if srow else 0
        return Estimate(total=total, readable=readable, scanned=scanned, collections=collections)

    def search(
        self,
        conn: psycopg.Connection[Any],
        tenant_id: int,
        read: ReadFilter,
        query: npt.NDArray[np.float32],
        k: int,
        *,
        plan: Plan | None = None,
    ) -> SearchResult:
        """The k nearest chunks `read` allows, nearest first.

        Args:
            plan: force 'exact' or 'hnsw' (benchmarks); None routes on the estimate.
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        est = self.estimate(conn, tenant_id, read)
        if est.readable == 0:
            return SearchResult([], "empty", est)
        want = min(k, est.readable)
        params = {**_params(tenant_id, read), "q": query, "k": k, "collections": est.collections}
        route = plan or ("exact" if est.scanned <= self._tuning.exact_max_rows else "hnsw")
        if route == "exact":
            return SearchResult(self._exact(conn, params), "exact", est)
        rows = self._hnsw(conn, params, k=k, selectivity=est.readable / max(est.total, 1))
        if len(rows) >= want or plan == "hnsw":
            return SearchResult(rows, "hnsw", est)
        return SearchResult(self._exact(conn, params), "hnsw+exact", est)

    def _exact(self, conn: psycopg.Connection[Any], params: dict[str, Any]) -> list[ChunkRow]:
        # HNSW is an index scan only; with index scans off the planner keeps the
        # B-tree bitmap scan and computes every distance: exact by construction.
        conn.execute("SELECT set_config('enable_indexscan', 'off', true)")
        try:
            with conn.cursor(row_factory=class_row(ChunkRow)) as cur:
                return cur.execute(_EXACT, params).fetchall()
        finally:
            conn.execute("SELECT set_config('enable_indexscan', 'on', true)")

    def _hnsw(
        self, conn: psycopg.Connection[Any], params: dict[str, Any], *, k: int, selectivity: float
    ) -> list[ChunkRow]:
        t = self._tuning
        gather = max(k * t.oversample, t.ef_search)
        # Expected tuples to visit grows like gather / selectivity; give the scan
        # room for that (with a margin for clustering), within a hard ceiling.
        budget = int(min(t.max_scan_tuples, max(20_000, 3 * gather / max(selectivity, 1e-6))))
        # Route, do not hope: with sequential scans, bitmap scans and sorts off,
        # the ordered HNSW index scan is the only plan left for the inner query
        # (a B-tree scan would need a sort of the whole partition).
        conn.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
            " set_config('hnsw.ef_search', %s, true),"
            " set_config('hnsw.max_scan_tuples', %s, true),"
            " set_config('enable_seqscan', 'off', true),"
            " set_config('enable_bitmapscan', 'off', true),"
            " set_config('enable_sort', 'off', true)",
            (str(min(1000, max(t.ef_search, gather))), str(budget)),
        )
        try:
            with conn.cursor(row_factory=class_row(ChunkRow)) as cur:
                return cur.execute(_HNSW, {**params, "n": gather}).fetchall()
        finally:
            conn.execute(
                "SELECT set_config('enable_seqscan', 'on', true),"
                " set_config('enable_bitmapscan', 'on', true), set_config('enable_sort', 'on', true)"
            )


def _params(tenant_id: int, read: ReadFilter) -> dict[str, Any]:
    return {
        "tenant": tenant_id,
        "clearance": int(read.clearance),
        "allow": read.allow_patterns,
        "deny": read.deny_patterns,
        "subjects": list(read.subjects),
    }
