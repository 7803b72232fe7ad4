"""Authorized k-nearest-neighbour search in one tenant's chunk partition.

The reader's filter is in the WHERE clause of the query that ranks by
distance, so top-k means the k nearest chunks *among those the reader may
read*. pgvector's HNSW applies a filter after it produced its candidates, so a
selective filter under-fills; the plan is therefore routed per query on an
estimate of how many chunks the reader may read:

- **exact**: few readable chunks. The HNSW index is switched off for the
  statement; B-tree range scans over the allowed collection globs (and the
  acl-shared documents) narrow the rows, and every distance is computed.
- **hnsw**: many readable chunks. The partition's HNSW graph with pgvector 0.8
  iterative scans (`relaxed_order`), gathering more than k candidates and
  sorting them exactly.

If the HNSW path returns fewer rows than it should (its scan budget ran out),
the exact path runs: results are never short while readable chunks remain.

Every hint added for speed (key ranges, shared document ids) only narrows
which rows are *examined*; the full read decision is always in the WHERE
clause too, and row-level security applies it again.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
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
    """Chunks in the tenant, and (an upper bound of) those the reader may read."""

    total: int
    readable: int
    shared_documents: list[uuid.UUID]
    shared_truncated: bool = False
    """More shared documents than the hint may list: the exact path scans everything."""


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
    """Take the exact path when at most this many chunks may be readable..."""
    exact_max_share: float = 0.02
    """...or when at most this share of the tenant may be."""
    ef_search: int = 300
    """HNSW candidate list. On 100,000 real MiniLM vectors with the schema's m=16,
    ef_construction=128, recall@10 over 200 held-out queries was 0.991 unfiltered and 0.9905
    with a 10% filter at 300, against 0.983 and 0.9875 at 200 (bench/results/retrieval.md):
    300 keeps a margin above 0.98 for about 3 ms more per query."""
    oversample: int = 4
    """Relaxed-order candidates gathered per returned row before the exact re-sort."""
    max_scan_tuples: int = 30_000
    """Upper bound on HNSW tuples one iterative scan visits before giving up."""
    max_shared_documents: int = 5_000
    """Above this many acl-shared documents, the exact path is not taken."""
    estimate_seconds: float = 10.0
    """How long a process reuses the count of chunks in a reader's allowed ranges. Only the
    route depends on it: results do not (the exact path is exact, the HNSW path falls back
    when short), and 'nothing readable' is never concluded from a reused count."""


KEY_MAX = "\U0010ffff"
"""Above every collection name: U+10FFFF is a noncharacter, refused in names."""


def key_ranges(globs: Sequence[str]) -> list[tuple[str, str | None]]:
    """Disjoint half-open ranges [lo, hi) of collection names (C collation) that
    contain every name the globs match. None as `hi` means unbounded."""
    ranges: list[tuple[str, str | None]] = []
    for glob in globs:
        if glob.endswith("*"):
            prefix = glob[:-1]
            ranges.append((prefix, _successor(prefix)))
        else:
            # No name sorts between `glob` and `glob + "\x01"` but `glob` itself:
            # PostgreSQL text cannot hold NUL, so any longer name is >= the bound.
            ranges.append((glob, glob + "\x01"))
    ranges.sort(key=lambda r: r[0])
    merged: list[tuple[str, str | None]] = []
    for lo, hi in ranges:
        if merged:
            last_lo, last_hi = merged[-1]
            if last_hi is None or lo < last_hi:
                if last_hi is not None and (hi is None or hi > last_hi):
                    merged[-1] = (last_lo, hi)
                continue
        merged.append((lo, hi))
    return merged


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`
    (code point order, which is UTF-8 byte order, which is the C collation)."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        nxt = last + 1
        if 0xD800 <= nxt <= 0xDFFF:
            nxt = 0xE000
        if nxt <= sys.maxunicode:
            return "".join(chars) + chr(nxt)
    return None


_COLUMNS = sql.SQL(
    "c.id, c.document_id, c.ordinal, c.collection, c.classification, c.acl, c.sealed, c.scan_score,"
    " c.scan_action, c.scan_reasons, c.scanner_version"
)

# The read decision of authorization.md, rows 1-4, as bound parameters.
_READABLE = sql.SQL(
    "c.tenant_id = %(tenant)s"
    " AND c.classification <= %(clearance)s"
    " AND NOT (c.collection LIKE ANY (%(deny)s::text[]))"
    " AND (c.collection LIKE ANY (%(allow)s::text[]) OR c.acl && %(subjects)s::text[])"
)

# Chunks in the allowed key ranges, and in the whole partition: cacheable for a few
# seconds, because they only steer the route (see `SearchTuning.estimate_seconds`).
_ALLOWED = """
  (SELECT coalesce(sum(s.n_chunks), 0)
     FROM unnest(%(lo)s::text[], %(hi)s::text[]) AS r(lo, hi)
     CROSS JOIN LATERAL (
       SELECT n_chunks FROM securerag.collection_stats s
        WHERE s.tenant_id = %(tenant)s AND s.collection >= (r.lo COLLATE "C")
          AND s.collection < (r.hi COLLATE "C")
          AND s.classification <= %(clearance)s
     ) AS s),
  (SELECT greatest(reltuples, 0)::bigint FROM pg_class
    WHERE oid = to_regclass('securerag.chunks_t' || %(tenant)s::int))
"""

# Shares with the reader's subjects: always read fresh, because the exact path's
# hint lists the shared documents and must miss none of them.
_SHARES = """
  (SELECT coalesce(sum(n_chunks), 0) FROM securerag.document_shares
    WHERE tenant_id = %(tenant)s AND subject = ANY (%(subjects)s::text[])
      AND classification <= %(clearance)s),
  (SELECT coalesce(array_agg(document_id), '{}') FROM (
     -- DISTINCT before LIMIT: a document shared with several of the reader's
     -- subjects must count once, or a cut-off list could pass for complete.
     SELECT DISTINCT document_id FROM securerag.document_shares
      WHERE tenant_id = %(tenant)s AND subject = ANY (%(subjects)s::text[])
        AND classification <= %(clearance)s
      LIMIT %(max_shared)s + 1) AS d)
"""

_ESTIMATE = f"SELECT {_ALLOWED}, {_SHARES}"
_ESTIMATE_SHARES = f"SELECT {_SHARES}"

# Candidates by id and distance only; the k survivors are joined back for their columns.
_HNSW = sql.SQL(
    """
WITH candidates AS MATERIALIZED (
  SELECT c.id, c.embedding <=> %(q)s AS distance
    FROM securerag.chunks c
   WHERE {readable}
   ORDER BY c.embedding <=> %(q)s
   LIMIT %(n)s
), top AS (
  SELECT id, distance FROM candidates ORDER BY distance + 0, id LIMIT %(k)s
)
SELECT {columns}, top.distance
  FROM top JOIN securerag.chunks c ON c.tenant_id = %(tenant)s AND c.id = top.id
 ORDER BY top.distance, top.id
"""
)

# `+ 0` makes the sort key an expression no index can supply, so every distance
# is computed and sorted: exact by construction, whatever the planner settings.
# (Through the partitioned parent, PostgreSQL 18 still picks a *disabled* HNSW
# scan when enable_indexscan is off; this does not depend on that setting.)
_EXACT = sql.SQL(
    """
WITH top AS (
  SELECT c.id, c.embedding <=> %(q)s AS distance
    FROM securerag.chunks c
   WHERE {readable} AND ({hint})
   ORDER BY (c.embedding <=> %(q)s) + 0, c.id
   LIMIT %(k)s
)
SELECT {columns}, top.distance
  FROM top JOIN securerag.chunks c ON c.tenant_id = %(tenant)s AND c.id = top.id
 ORDER BY top.distance, top.id
"""
)

HNSW_QUERY = _HNSW.format(readable=_READABLE, columns=_COLUMNS)
"""The candidate query of the HNSW path, exactly as it runs (composed once)."""

# Planner settings per path, always all of them: no reset round trips, and a
# fallback in the same transaction never inherits the other path's choices.
# The path queries are prepared (planning them costs as much as running them):
# each always runs under its own settings, set just before it, so a cached
# plan is always one made under the settings it runs with.
_EXACT_SETTINGS = (
    "SELECT set_config('enable_indexscan', 'off', true), set_config('enable_seqscan', 'on', true),"
    " set_config('enable_bitmapscan', 'on', true), set_config('enable_sort', 'on', true)"
)
_HNSW_SETTINGS = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
    " set_config('hnsw.ef_search', %s, true), set_config('hnsw.max_scan_tuples', %s, true),"
    " set_config('enable_indexscan', 'on', true), set_config('enable_seqscan', 'off', true),"
    " set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)"
)


class VectorSearch:
    """Runs the routed, authorized k-NN query inside the caller's tenant transaction."""

    def __init__(self, tuning: SearchTuning | None = None) -> None:
        self._tuning = tuning or SearchTuning()
        self._allowed: OrderedDict[tuple[Any, ...], tuple[int, int, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def tuning(self) -> SearchTuning:
        """The router's knobs."""
        return self._tuning

    def estimate(self, conn: psycopg.Connection[Any], tenant_id: int, read: ReadFilter) -> Estimate:
        """Readable chunks, bounded from above from the counts the documents trigger keeps."""
        ranges = key_ranges(read.allow_globs)
        params = {
            "tenant": tenant_id,
            "clearance": int(read.clearance),
            "subjects": list(read.subjects),
            "lo": [lo for lo, _ in ranges],
            "hi": [hi if hi is not None else KEY_MAX for _, hi in ranges],
            "max_shared": self._tuning.max_shared_documents,
        }
        key = (tenant_id, tuple(ranges), int(read.clearance))
        with self._lock:
            cached = self._allowed.get(key)
        if cached is not None and cached[0] > 0 and cached[2] > time.monotonic():
            row = conn.execute(_ESTIMATE_SHARES, params, prepare=True).fetchone()
            assert row is not None
            (allowed, total), (shared, shared_docs) = cached[:2], (int(row[0]), list(row[1]))
        else:
            row = conn.execute(_ESTIMATE, params, prepare=True).fetchone()
            assert row is not None
            allowed, total, shared, shared_docs = int(row[0]), int(row[1] or 0), int(row[2]), list(row[3])
            with self._lock:
                self._allowed[key] = (allowed, total, time.monotonic() + self._tuning.estimate_seconds)
                self._allowed.move_to_end(key)
                while len(self._allowed) > 4096:
                    self._allowed.popitem(last=False)
        readable = allowed + shared
        truncated = len(shared_docs) > self._tuning.max_shared_documents
        return Estimate(
            total=max(total, readable),
            readable=readable,
            shared_documents=[] if truncated else shared_docs,
            shared_truncated=truncated,
        )

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
        params = {
            "tenant": tenant_id,
            "clearance": int(read.clearance),
            "allow": read.allow_patterns,
            "deny": read.deny_patterns,
            "subjects": list(read.subjects),
            "q": query,
            "k": k,
        }
        est = self._reused_many(tenant_id, read) if plan is None else None
        if est is None:
            est = self.estimate(conn, tenant_id, read)
            if est.readable == 0:
                return SearchResult([], "empty", est)
        route = plan or self._route(est)
        if route == "exact":
            return SearchResult(self._exact(conn, params, read, est), "exact", est)
        rows = self._hnsw(conn, params, k=k)
        if len(rows) >= k or plan == "hnsw":
            return SearchResult(rows, "hnsw", est)
        # Short: either fewer than k are readable (the estimate is an upper bound)
        # or the scan budget ran out. The exact path settles it, with fresh shares.
        est = self.estimate(conn, tenant_id, read)
        return SearchResult(self._exact(conn, params, read, est), "hnsw+exact", est)

    def _reused_many(self, tenant_id: int, read: ReadFilter) -> Estimate | None:
        """A reused count that already routes to HNSW (shares can only add readable chunks,
        and the HNSW query checks the acl itself): the estimate's round trip is saved."""
        key = (tenant_id, tuple(key_ranges(read.allow_globs)), int(read.clearance))
        with self._lock:
            cached = self._allowed.get(key)
        if cached is None or cached[2] <= time.monotonic():
            return None
        est = Estimate(total=max(cached[1], cached[0]), readable=cached[0], shared_documents=[])
        return est if self._route(est) == "hnsw" else None

    def _route(self, est: Estimate) -> Plan:
        t = self._tuning
        if est.shared_truncated:
            return "hnsw"
        few = est.readable <= t.exact_max_rows or est.readable <= t.exact_max_share * est.total
        return "exact" if few else "hnsw"

    def _exact(
        self, conn: psycopg.Connection[Any], params: dict[str, Any], read: ReadFilter, est: Estimate
    ) -> list[ChunkRow]:
        hint, hint_params = _hint(read, est)
        query = _EXACT.format(readable=_READABLE, hint=hint, columns=_COLUMNS)
        # B-tree bitmap scans narrow the rows to the hint; the sort key rules out HNSW.
        conn.execute(_EXACT_SETTINGS)
        with conn.cursor(row_factory=class_row(ChunkRow)) as cur:
            return cur.execute(query, {**params, **hint_params}, prepare=True).fetchall()

    def _hnsw(self, conn: psycopg.Connection[Any], params: dict[str, Any], *, k: int) -> list[ChunkRow]:
        t = self._tuning
        gather = k * t.oversample
        # Route, do not hope: with sequential scans, bitmap scans and sorts off, the
        # ordered HNSW index scan is the only plan left for the candidate query (a
        # B-tree scan would need a sort of the whole partition).
        conn.execute(_HNSW_SETTINGS, (str(min(1000, max(t.ef_search, gather))), str(t.max_scan_tuples)))
        with conn.cursor(row_factory=class_row(ChunkRow)) as cur:
            return cur.execute(HNSW_QUERY, {**params, "n": gather}, prepare=True).fetchall()


def _hint(read: ReadFilter, est: Estimate) -> tuple[sql.Composable, dict[str, Any]]:
    """An index-friendly superset of the readable rows: key ranges of the allow
    globs, plus the acl-shared documents. Text comparisons and uuid equality are
    leakproof, so the planner may use them below the RLS quals."""
    if est.shared_truncated:
        return sql.SQL("true"), {}  # too many shares to list: examine every row
    parts: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for i, (lo, hi) in enumerate(key_ranges(read.allow_globs)):
        params[f"lo{i}"] = lo
        # COLLATE "C": the index's collation, or the comparison cannot use it.
        params[f"hi{i}"] = hi if hi is not None else KEY_MAX
        parts.append(
            sql.SQL('(c.collection >= ({} COLLATE "C") AND c.collection < ({} COLLATE "C"))').format(
                sql.Placeholder(f"lo{i}"), sql.Placeholder(f"hi{i}")
            )
        )
    if est.shared_documents:
        params["shared"] = est.shared_documents
        parts.append(sql.SQL("c.document_id = ANY (%(shared)s::uuid[])"))
    if not parts:
        return sql.SQL("false"), params
    return sql.SQL(" OR ").join(parts), params
