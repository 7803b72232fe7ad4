"""Authorized top-k retrieval against unfiltered HNSW, on real MiniLM embeddings.

    python bench/retrieval.py [--chunks 100000] [--queries 200] [--plans]

Loads the corpus built by `bench/corpus.py` (real text, real all-MiniLM-L6-v2
embeddings) into one tenant of a dedicated embedded database, assigns
documents to collections at random so that five users can read exactly 100%,
10%, 1%, 0.1% and 0.01% of the tenant, and runs held-out queries (not in the
corpus) as each user through the real path: a read-only snapshot transaction,
the policy-version check, the compiled filter, row-level security and the
routed k-NN query.

For each selectivity it reports recall@10 against exact search over that
user's readable set (numpy brute force), the number of short results (fewer
than 10 rows while 10 were readable), the plans taken, and p50/p95 latency.
The baseline, measured in the same run and interleaved query by query, is
unfiltered HNSW on the same partition, connection and transaction shape, at
the same `ef_search` (and at pgvector's default of 40, for reference).
Figures go to bench/results/retrieval.{json,md}.

`--plans` also times each forced plan (exact, hnsw) at each selectivity,
which is how the router's threshold was chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from securerag.authz import add_lines, parse_policy
from securerag.config import Settings
from securerag.crypto.master import ensure_key_file, load_key_provider
from securerag.db import initialize, tenant_transaction
from securerag.retrieval.search import Plan, VectorSearch
from securerag.runtime import Runtime
from securerag.tenants import TenantRef, ensure_tenant

ROOT = Path(__file__).resolve().parent

TENANT = "bench"
BUCKETS = 10_000
# user -> (glob, share of the tenant readable)
USERS: dict[str, tuple[str, float]] = {
    "all": ("*", 1.0),
    "tenth": ("d0/*", 0.1),
    "hundredth": ("d0/c0/*", 0.01),
    "thousandth": ("d0/c0/b0/*", 0.001),
    "tenthousandth": ("d0/c0/b0/x0", 0.0001),
}
K = 10
console = Console(stderr=True)


def bucket_collection(bucket: int) -> str:
    """Collection of a bucket in [0, 10000): d{thousands}/c{hundreds}/b{tens}/x{units}."""
    return f"d{bucket // 1000}/c{bucket // 100 % 10}/b{bucket // 10 % 10}/x{bucket % 10}"


@dataclass
class Corpus:
    embeddings: npt.NDArray[np.float32]
    collections: list[str]
    doc_of: npt.NDArray[np.int64]
    queries: npt.NDArray[np.float32]
    real: int
    """How many of the chunks are real MiniLM embeddings (the rest are derived)."""


def derive_embeddings(
    real: npt.NDArray[np.float32], sources: npt.NDArray[np.str_], n: int, seed: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.str_]]:
    """Extend `real` to `n` vectors for scale runs beyond the embedded corpus.

    Derived vector i is copy c = i // len(real) of real chunk j = i % len(real): the normalised
    sum of chunk j, a random share (0.2-0.8) of a neighbour (the next chunk when it is of the
    same source, else the previous chunk), and Gaussian noise (0.02 per dimension). It stays
    on the real data's manifold (cosine about 0.9 to its origin) without being a duplicate;
    its source is the origin's with the copy number, so documents keep the real run structure.
    Only the first len(real) vectors are real MiniLM embeddings; reports say how many were
    derived.
    """
    r = len(real)
    rng = np.random.default_rng(seed + 7)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[:r] = real
    same_next = np.append(sources[1:] == sources[:-1], False)
    partner = np.where(same_next, np.arange(r) + 1, np.maximum(np.arange(r) - 1, 0))
    for start in range(r, n, r):
        stop = min(n, start + r)
        j = np.arange(stop - start)
        alpha = rng.uniform(0.2, 0.8, size=(len(j), 1)).astype(np.float32)
        v = (
            real[j]
            + alpha * real[partner[j]]
            + rng.normal(0, 0.02, size=(len(j), real.shape[1])).astype(np.float32)
        )
        out[start:stop] = v / np.linalg.norm(v, axis=1, keepdims=True)
    copies = np.arange(n) // r
    all_sources = np.array([f"{sources[i % r]}#{c}" for i, c in enumerate(copies)])
    return out, all_sources


def document_runs(sources: npt.NDArray[np.str_]) -> npt.NDArray[np.int64]:
    """Document number of each chunk: documents are runs of up to 10 chunks of one source."""
    n = len(sources)
    doc_of = np.zeros(n, dtype=np.int64)
    doc, run = 0, 0
    for i in range(1, n):
        run += 1
        if sources[i] != sources[i - 1] or run == 10:
            doc, run = doc + 1, 0
        doc_of[i] = doc
    return doc_of


def assign_collections(doc_of: npt.NDArray[np.int64], seed: int) -> list[str]:
    """Collection of each chunk: documents in random order fill the 10,000 buckets by
    cumulative chunk count, so a bucket prefix holds (to within one document) its exact
    share of the chunks."""
    n = len(doc_of)
    n_docs = int(doc_of[-1]) + 1
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_docs)
    sizes = np.bincount(doc_of, minlength=n_docs)
    bucket_of_doc = np.zeros(n_docs, dtype=np.int64)
    cumulative = 0
    for d in order:
        bucket_of_doc[d] = min(BUCKETS - 1, cumulative * BUCKETS // n)
        cumulative += int(sizes[d])
    return [bucket_collection(int(bucket_of_doc[d])) for d in doc_of]


def load_corpus(path: Path, n: int, n_queries: int, seed: int) -> Corpus:
    """The first `n` chunks; documents are runs of up to 10 chunks of one source. Past the
    corpus's end the chunks are derived from real ones (see `derive_embeddings`)."""
    data = np.load(path, allow_pickle=False)
    embeddings = np.ascontiguousarray(data["embeddings"][:n], dtype=np.float32)
    sources = data["sources"][:n]
    real = len(embeddings)
    if real < n:
        console.print(f"{path} holds {len(embeddings):,} chunks; deriving {n - len(embeddings):,} more")
        embeddings, sources = derive_embeddings(embeddings, sources, n, seed)
    doc_of = document_runs(sources)
    collections = assign_collections(doc_of, seed)
    queries = np.ascontiguousarray(data["query_embeddings"][:n_queries], dtype=np.float32)
    return Corpus(embeddings, collections, doc_of, queries, real)


def readable_mask(corpus: Corpus, glob: str) -> npt.NDArray[np.bool_]:
    if glob == "*":
        return np.ones(len(corpus.collections), dtype=bool)
    if glob.endswith("*"):
        prefix = glob[:-1]
        return np.array([c.startswith(prefix) for c in corpus.collections])
    return np.array([c == glob for c in corpus.collections])


def exact_top_k(corpus: Corpus, mask: npt.NDArray[np.bool_], query: npt.NDArray[np.float32]) -> list[int]:
    distances = np.where(mask, 1.0 - corpus.embeddings @ query, np.inf)
    k = min(K, int(mask.sum()))
    if k == 0:
        return []
    near = np.argpartition(distances, k - 1)[:k]
    return [int(i) for i in near[np.argsort(distances[near], kind="stable")]]


def is_exact(corpus: Corpus, query: npt.NDArray[np.float32], got: list[int], want: list[int]) -> bool:
    """True if `got` is a correct top-k: same length, nothing farther than the true k-th."""
    if len(got) != len(want):
        return False
    if not want:
        return True
    kth = float(np.max(1.0 - corpus.embeddings[want] @ query))
    return bool(np.all(1.0 - corpus.embeddings[got] @ query <= kth + 1e-5))


@dataclass
class TenantLoad:
    """One tenant's share of a bench corpus: chunks [first, first + len(collections)) of the
    corpus, their documents and collections, and the policy lines to install."""

    name: str
    policy: list[str]
    embeddings: npt.NDArray[np.float32]
    collections: list[str]
    doc_of: npt.NDArray[np.int64]
    first: int = 0
    """Chunk i of this tenant gets id UUID(int=first + i + 1), so ids map back to the corpus."""


def chunk_index(chunk_id: uuid.UUID) -> int:
    """Corpus index of a chunk loaded by `load_tenants`."""
    return chunk_id.int - 1


def load_database(rt: Runtime, corpus: Corpus, *, rebuild: bool = False) -> tuple[TenantRef, float | None]:
    """The corpus as tenant TENANT, readable by USERS (see `load_tenants`)."""
    policy = [f"p, {u}, {TENANT}, collection:{g}, read" for u, (g, _) in USERS.items()]
    load = TenantLoad(TENANT, policy, corpus.embeddings, corpus.collections, corpus.doc_of)
    refs, build_seconds = load_tenants(rt, [load], rebuild=rebuild)
    return refs[TENANT], build_seconds


_INDEX_DEF = (
    "CREATE INDEX chunks_embedding ON securerag.chunks"
    " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 128)"
)


def load_tenants(
    rt: Runtime, loads: list[TenantLoad], *, rebuild: bool = False
) -> tuple[dict[str, TenantRef], float | None]:
    """Rows written as the owner with COPY (loading is not what is measured); the tenants and
    the HNSW build time in seconds (None when an already loaded and indexed database is
    reused). `rebuild` drops and rebuilds the index of a loaded database, to time it."""
    refs: dict[str, TenantRef] = {}
    loaded = []
    with rt.connect() as conn:
        for load in loads:
            tenant = refs[load.name] = ensure_tenant(conn, load.name)
            with tenant_transaction(conn, tenant.id, access="admin") as tx:
                have = tx.execute("SELECT count(*) FROM securerag.chunks").fetchone()
                count = int(have[0]) if have else 0
                if count and count != len(load.collections):
                    raise SystemExit(
                        f"the bench database holds a different corpus; delete {rt.settings.home}"
                    )
                loaded.append(count > 0)
                if not count:
                    lines = parse_policy(load.policy, tenant=load.name)
                    add_lines(tx, tenant, lines, actor="bench", audit=rt.audit)
    from pgvector.psycopg import register_vector

    with rt.db.connect_admin() as admin:
        row = admin.execute(
            "SELECT indexdef FROM pg_indexes"
            " WHERE schemaname = 'securerag' AND indexname = 'chunks_embedding'"
        ).fetchone()
    # The schema's own definition, as the migration created it (kept when a run dropped it).
    index_def = str(row[0]).replace(" ON ONLY ", " ON ") if row else _INDEX_DEF
    if all(loaded) and row is not None and not rebuild:
        console.print("reusing the loaded tenants")
        return refs, None
    if any(loaded) and not all(loaded):
        raise SystemExit(f"the bench database is partly loaded; delete {rt.settings.home}")

    total = sum(len(load.collections) for load in loads)
    with rt.db.connect_admin() as admin:
        register_vector(admin)
        # Bulk load: drop the HNSW index and build it once after the rows are in (as an
        # operator would). A run interrupted before the build left no index: build it now.
        admin.execute("DROP INDEX IF EXISTS securerag.chunks_embedding")
        if not all(loaded):
            start = time.perf_counter()
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("loading chunks", total=total)
                for load in loads:
                    _copy_tenant(admin, refs[load.name], load, progress, task)
            BUILD_FIGURES["copy_seconds"] = round(time.perf_counter() - start, 1)
        # The graph must fit in maintenance_work_mem or the build slows several-fold
        # (about 2.1 KB per 384-d vector at m=16): give it that with a third to spare.
        largest = max(len(load.collections) for load in loads)
        work_mem_mib = max(1024, int(largest * 2200 * 1.33 / 2**20))
        console.print(f"building the HNSW index (maintenance_work_mem {work_mem_mib} MB)")
        start = time.perf_counter()
        admin.execute(f"SET maintenance_work_mem = '{work_mem_mib}MB'")
        with ServerMemory(rt) as memory:
            admin.execute(index_def)
        build_seconds = time.perf_counter() - start
        BUILD_FIGURES.update(memory.figures(), maintenance_work_mem_mib=work_mem_mib)
        console.print(f"built in {build_seconds:.0f} s")
        admin.execute("ANALYZE securerag.chunks")
        admin.execute("ANALYZE securerag.documents")
        admin.execute("ANALYZE securerag.collection_stats")
    return refs, build_seconds


def _copy_tenant(admin: Any, tenant: TenantRef, load: TenantLoad, progress: Progress, task: Any) -> None:
    n = len(load.collections)
    n_docs = int(load.doc_of[-1]) + 1
    # Document ids are unique across tenants too: the tenant's first chunk offsets them.
    doc_ids = [uuid.UUID(int=(1 << 64) + load.first + d) for d in range(n_docs)]
    first = np.searchsorted(load.doc_of, np.arange(n_docs))
    sizes = np.bincount(load.doc_of, minlength=n_docs)
    with admin.transaction(), admin.cursor() as cur:
        cur.executemany(
            "INSERT INTO securerag.documents (tenant_id, id, collection, classification, acl, key_id,"
            " sealed_meta, n_chunks) VALUES (%s, %s, %s, 0, '{}', %s, 'x', %s)",
            [
                (tenant.id, doc_ids[d], load.collections[first[d]], uuid.uuid4(), int(sizes[d]))
                for d in range(n_docs)
            ],
        )
    for start in range(0, n, 5_000):
        stop = min(n, start + 5_000)
        with (
            admin.transaction(),
            admin.cursor() as cur,
            cur.copy(
                "COPY securerag.chunks (tenant_id, id, document_id, ordinal, collection,"
                " classification, acl, embedding, sealed, scan_score, scan_action, scan_reasons,"
                " scanner_version)"
                " FROM STDIN"
            ) as copy,
        ):
            for i in range(start, stop):
                copy.write_row(
                    (
                        tenant.id,
                        uuid.UUID(int=load.first + i + 1),
                        doc_ids[load.doc_of[i]],
                        0,
                        load.collections[i],
                        0,
                        [],
                        load.embeddings[i],
                        b"x",
                        0.0,
                        0,
                        [],
                        1,
                    )
                )
        progress.advance(task, stop - start)


BUILD_FIGURES: dict[str, Any] = {}
"""Load seconds, and server memory while the index was built, in this run (empty when reused)."""


class ServerMemory:
    """Samples one database server's memory every second while open: the peak of the summed
    proportional set size of the postmaster and its children (shared buffers and the index
    build's shared memory counted once) and of the largest single process's resident set.
    Other servers on the host are not counted; a server on another host reads as 0."""

    def __init__(self, rt: Runtime) -> None:
        import threading

        import psutil

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak_pss = 0
        self.peak_rss = 0
        self._postmaster: psutil.Process | None = None
        with rt.db.connect_admin() as admin:
            row = admin.execute("SELECT pg_backend_pid()").fetchone()
        try:
            backend = psutil.Process(int(row[0])) if row else None
            parent = backend.parent() if backend else None
            if parent is not None and parent.name() == "postgres":
                self._postmaster = parent
        except psutil.Error:
            pass  # not on this host

    def _sample(self) -> None:
        import psutil

        if self._postmaster is None:
            return
        pss = rss = 0
        try:
            procs = [self._postmaster, *self._postmaster.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                info = proc.memory_full_info()
            except (psutil.Error, OSError):
                continue
            pss += getattr(info, "pss", info.rss)
            rss = max(rss, info.rss)
        self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._sample()

    def __enter__(self) -> ServerMemory:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def figures(self) -> dict[str, int]:
        return {"server_peak_pss_bytes": self.peak_pss, "server_peak_process_rss_bytes": self.peak_rss}


def storage_figures(
    rt: Runtime, tenant: TenantRef, chunks: int, build_seconds: float | None
) -> dict[str, Any]:
    """Size of the tenant's chunk partition and its HNSW index, per chunk (the basis of
    docs/scaling.md's arithmetic), and the index build time when it was built in this run."""
    with rt.db.connect_admin() as admin:
        row = admin.execute(
            "WITH part AS (SELECT %s::regclass AS oid)"
            " SELECT pg_relation_size(part.oid),"
            "        (SELECT pg_relation_size(i.indexrelid)"
            "           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            "           JOIN pg_am a ON a.oid = c.relam"
            "          WHERE i.indrelid = part.oid AND a.amname = 'hnsw')"
            "   FROM part",
            (f"securerag.chunks_t{tenant.id}",),
        ).fetchone()
    assert row is not None
    heap, index = int(row[0]), int(row[1] or 0)
    return {
        "heap_bytes": heap,
        "hnsw_index_bytes": index,
        "heap_bytes_per_chunk": round(heap / chunks),
        "hnsw_bytes_per_chunk": round(index / chunks),
        "hnsw_build_seconds": None if build_seconds is None else round(build_seconds, 1),
        **BUILD_FIGURES,
    }


def earlier_build(path: Path, chunks: int) -> dict[str, Any]:
    """Build figures of the run that built a reused index, from its results file."""
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    storage = before.get("storage") or {}
    if before.get("chunks") != chunks or storage.get("hnsw_build_seconds") is None:
        return {}
    keep = (
        "hnsw_build_seconds",
        "copy_seconds",
        "maintenance_work_mem_mib",
        "server_peak_pss_bytes",
        "server_peak_process_rss_bytes",
    )
    built = storage.get("built") or before.get("when")
    return {k: storage[k] for k in keep if k in storage} | {"built": built}


_BASELINE = (
    "SELECT id FROM securerag.chunks WHERE tenant_id = %(tenant)s ORDER BY embedding <=> %(q)s LIMIT %(k)s"
)


@dataclass
class Series:
    """Measurements of one (user or baseline) series."""

    latencies_ms: list[float] = field(default_factory=list)
    recalls: list[float] = field(default_factory=list)
    short: int = 0
    not_exact: int = 0
    """Results holding a row farther than the true k-th nearest (beyond float noise)."""
    unauthorized: int = 0
    """Rows returned outside the reader's readable set (bench/compare.py counts them)."""
    plans: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "queries": len(lat),
            "recall_at_10": round(statistics.fmean(self.recalls), 4) if self.recalls else None,
            "min_recall": round(min(self.recalls), 2) if self.recalls else None,
            "short_results": self.short,
            "short_share": round(self.short / len(lat), 4) if lat else None,
            "not_exact": self.not_exact,
            "unauthorized_rows": self.unauthorized,
            "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p95_ms": round(float(np.percentile(lat, 95)), 3),
            "plans": dict(sorted(self.plans.items())),
        }


def run_authorized(
    rt: Runtime,
    conn: Any,
    tenant: TenantRef,
    user: str,
    query: npt.NDArray[np.float32],
    search: VectorSearch,
    plan: Plan | None,
) -> tuple[list[int], str, float]:
    start = time.perf_counter()
    with tenant_transaction(conn, tenant.id, access="read", user=user, snapshot=True) as tx:
        grants = rt.authorizer.apply(tx, tenant, user)
        found = search.search(tx, tenant.id, grants.read, query, K, plan=plan)
    elapsed = (time.perf_counter() - start) * 1000
    return [chunk_index(row.id) for row in found.rows], found.plan, elapsed


def run_baseline(
    conn: Any, tenant: TenantRef, query: npt.NDArray[np.float32], ef: int
) -> tuple[list[int], float]:
    start = time.perf_counter()
    with tenant_transaction(conn, tenant.id, access="admin", snapshot=True) as tx:
        tx.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
        rows = tx.execute(_BASELINE, {"tenant": tenant.id, "q": query, "k": K}).fetchall()
    elapsed = (time.perf_counter() - start) * 1000
    return [chunk_index(r[0]) for r in rows], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=ROOT / ".cache" / "corpus-v1.npz")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--plans", action="store_true", help="also time each forced plan")
    parser.add_argument("--home", type=Path, default=ROOT / ".cache" / "home")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument(
        "--rebuild-index", action="store_true", help="drop, rebuild and time the index of a loaded database"
    )
    parser.add_argument("--name", default="retrieval", help="file name of the results (default retrieval)")
    args = parser.parse_args()

    corpus = load_corpus(args.corpus, args.chunks, args.queries, args.seed)
    settings = Settings(home=args.home, database_url=os.environ.get("SECURERAG_BENCH_DATABASE_URL") or None)
    ensure_key_file(settings)
    keys = load_key_provider(settings)
    db, _ = initialize(settings, keys)
    rt = Runtime(settings, keys=keys, db=db, embedder=None)
    tenant, build_seconds = load_database(rt, corpus, rebuild=args.rebuild_index)
    storage = storage_figures(rt, tenant, len(corpus.collections), build_seconds)
    if build_seconds is None:
        storage.update(earlier_build(args.out / f"{args.name}.json", len(corpus.collections)))
    search = VectorSearch()
    ef = search.tuning.ef_search
    masks = {u: readable_mask(corpus, g) for u, (g, _) in USERS.items()}
    truth = {u: [exact_top_k(corpus, masks[u], q) for q in corpus.queries] for u in USERS}
    everything = np.ones(len(corpus.collections), dtype=bool)
    truth_all = [exact_top_k(corpus, everything, q) for q in corpus.queries]

    series: dict[str, Series] = {u: Series() for u in USERS}
    baseline = Series()
    baseline_default = Series()
    forced: dict[str, Series] = {}
    plans: tuple[Plan, ...] = ("exact", "hnsw") if args.plans else ()
    with rt.connect() as conn, ServerMemory(rt) as query_memory:
        # Warm caches and the policy cache, untimed.
        for q in corpus.queries[:20]:
            run_baseline(conn, tenant, q, ef)
            for user in USERS:
                run_authorized(rt, conn, tenant, user, q, search, None)
        total = len(corpus.queries) * (len(USERS) * (1 + len(plans)) + 2)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("querying", total=total)
            for qi, q in enumerate(corpus.queries):
                # Interleave: every query runs the baseline and every user back to back,
                # so machine noise hits all series alike.
                got, ms = run_baseline(conn, tenant, q, ef)
                baseline.latencies_ms.append(ms)
                baseline.recalls.append(len(set(got) & set(truth_all[qi])) / K)
                got, ms = run_baseline(conn, tenant, q, 40)
                baseline_default.latencies_ms.append(ms)
                baseline_default.recalls.append(len(set(got) & set(truth_all[qi])) / K)
                for user in USERS:
                    want = truth[user][qi]
                    for plan in (None, *plans):
                        got, used, ms = run_authorized(rt, conn, tenant, user, q, search, plan)
                        s = series[user] if plan is None else forced.setdefault(f"{user}:{plan}", Series())
                        s.latencies_ms.append(ms)
                        s.recalls.append(len(set(got) & set(want)) / len(want) if want else 1.0)
                        s.short += int(len(got) < len(want))
                        s.not_exact += int(not is_exact(corpus, q, got, want))
                        s.plans[used] = s.plans.get(used, 0) + 1
                        if not set(got) <= set(np.flatnonzero(masks[user]).tolist()):
                            raise SystemExit(f"UNAUTHORIZED row returned to {user}")
                progress.advance(task, len(USERS) * (1 + len(plans)) + 2)

    base = baseline.summary()
    rows = []
    for user, (glob, share) in USERS.items():
        s = series[user].summary()
        readable = int(masks[user].sum())
        rows.append(
            {
                "user": user,
                "glob": glob,
                "selectivity": share,
                "readable_chunks": readable,
                **s,
                "p95_vs_baseline": round(s["p95_ms"] / base["p95_ms"], 2),
            }
        )
    result = {
        "command": "python bench/retrieval.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "chunks": len(corpus.collections),
        "real_chunks": corpus.real,
        "documents": int(corpus.doc_of[-1]) + 1,
        "queries": len(corpus.queries),
        "tuning": asdict(search.tuning),
        "storage": storage,
        "server_memory_while_querying": {
            "peak_pss_bytes": query_memory.peak_pss,
            "peak_process_rss_bytes": query_memory.peak_rss,
        },
        "baseline_unfiltered_hnsw": {"ef_search": ef, **base},
        "baseline_unfiltered_hnsw_default_ef40": baseline_default.summary(),
        "authorized": rows,
        "forced_plans": {name: s.summary() for name, s in forced.items()},
        "targets": {"recall_at_10": ">= 0.98", "short_results": 0, "p95_vs_baseline": "<= 3.0"},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(result))
    print_table(result)


def _derived_line(result: dict[str, Any]) -> str:
    real = result.get("real_chunks", result["chunks"])
    if real >= result["chunks"]:
        return ""
    return (
        f" The first {real:,} chunks are real MiniLM embeddings; the other {result['chunks'] - real:,}"
        " are derived from them (each a real chunk plus part of its neighbour plus noise, cosine about"
        " 0.9 to its origin)."
    )


def _query_memory_line(result: dict[str, Any]) -> str:
    memory = result.get("server_memory_while_querying")
    if not memory or not memory.get("peak_pss_bytes"):
        return ""  # not measured (another host, or no sample taken)
    return f" Server memory while querying peaked at {memory['peak_pss_bytes'] / 2**20:,.0f} MiB PSS."


def _storage_line(storage: dict[str, Any]) -> str:
    if not storage:
        return "Storage: not recorded in this run."
    built = storage["hnsw_build_seconds"]
    heap_mib, index_mib = storage["heap_bytes"] / 2**20, storage["hnsw_index_bytes"] / 2**20
    line = (
        f"Storage: chunk partition {heap_mib:.0f} MiB ({storage['heap_bytes_per_chunk']} B/chunk), "
        f"HNSW index {index_mib:.0f} MiB ({storage['hnsw_bytes_per_chunk']} B/chunk), "
        + (f"built in {built} s" if built is not None else "index reused from an earlier run")
        + (f" (in the run of {storage['built']})" if storage.get("built") else "")
    )
    if "server_peak_pss_bytes" in storage:
        peak = storage["server_peak_pss_bytes"] / 2**20
        line += f"; server memory during the build peaked at {peak:,.0f} MiB PSS"
    return line + "."


def markdown(result: dict[str, Any]) -> str:
    base = result["baseline_unfiltered_hnsw"]
    lines = [
        f"# Authorized retrieval: {result['chunks']:,} chunks, {result['queries']} queries",
        "",
        f"`{result['command']}` on {result['machine']}, {result['when']}." + _derived_line(result),
        "",
        f"Baseline (unfiltered HNSW, ef_search {base['ef_search']}, same run): p50 {base['p50_ms']} ms, "
        f"p95 {base['p95_ms']} ms, recall@10 {base['recall_at_10']} against exact search.",
        "",
        _storage_line(result.get("storage") or {}) + _query_memory_line(result),
        "",
        "| selectivity | readable chunks | recall@10 | min recall | short results | p50 ms | p95 ms "
        "| p95 / baseline | plans |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["authorized"]:
        plans = ", ".join(f"{k} {v}" for k, v in r["plans"].items())
        lines.append(
            f"| {r['selectivity']:.2%} | {r['readable_chunks']:,} | {r['recall_at_10']} | {r['min_recall']} "
            f"| {r['short_results']} | {r['p50_ms']} | {r['p95_ms']} | {r['p95_vs_baseline']}x | {plans} |"
        )
    if result["forced_plans"]:
        lines += [
            "",
            "Forced plans (how the router's threshold was chosen):",
            "",
            "| series | recall@10 | short | not exact | p50 ms | p95 ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, s in result["forced_plans"].items():
            lines.append(
                f"| {name} | {s['recall_at_10']} | {s['short_results']} | {s['not_exact']} "
                f"| {s['p50_ms']} | {s['p95_ms']} |"
            )
    return "\n".join(lines) + "\n"


def print_table(result: dict[str, Any]) -> None:
    base = result["baseline_unfiltered_hnsw"]
    table = Table(
        title=f"authorized top-10 on {result['chunks']:,} chunks; baseline unfiltered HNSW "
        f"p50 {base['p50_ms']} ms, p95 {base['p95_ms']} ms"
    )
    for col in ("selectivity", "readable", "recall@10", "short", "p50 ms", "p95 ms", "p95/base", "plans"):
        table.add_column(col, justify="right")
    for r in result["authorized"]:
        table.add_row(
            f"{r['selectivity']:.2%}",
            f"{r['readable_chunks']:,}",
            str(r["recall_at_10"]),
            str(r["short_results"]),
            str(r["p50_ms"]),
            str(r["p95_ms"]),
            f"{r['p95_vs_baseline']}x",
            ", ".join(f"{k}:{v}" for k, v in r["plans"].items()),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
