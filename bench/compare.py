"""Authorized top-10 side by side with what users would build instead, in one run.

    python bench/compare.py [--quick] [--chunks 100000] [--queries 200]

One corpus (real text, real all-MiniLM-L6-v2 embeddings from `bench/corpus.py`), two
tenants, 10,000 collections, four roles and four users, one database server, the same
held-out queries, and four ways to answer "the 10 nearest chunks this user may read":

- **securerag**: the real authorized path (read-only snapshot, policy-version check, the
  compiled filter, row-level security as the non-owner role, the routed k-NN query);
- **langchain-postgres**: `PGVector` with default settings, one langchain collection per
  tenant (its documented way to separate sets of documents), the user's grant expressed as a
  metadata filter (`$like` on the collection, the most compact form a grant can take there);
- **pgvector HNSW**: one table with `tenant` and `collection` columns and an HNSW index with
  pgvector's default settings (m=16, ef_construction=64, ef_search=40, no iterative scan), the
  filter in `WHERE`;
- **exact**: the same rows and filter in a table with a B-tree on (tenant, collection) and
  index scans off: the readable rows found by a bitmap scan (a sequential one when most are
  readable), every distance computed. The ceiling for recall.

Tenant `acme` holds `--chunks` chunks and is queried; tenant `globex` holds a fifth as many
more, in collections with the same names, so that a missing tenant filter would show. Each
acme user reads through one role: all of acme, `d0/*` (10%), `d0/c0/*` (1%) or `d0/c0/b0/*`
(0.1%). For every system and selectivity the run reports recall@10 against numpy brute force
over that user's readable set, the share of short results (fewer than 10 rows while 10 were
readable), unauthorized rows returned, and p50/p95 latency of the call from Python. Queries
are interleaved (every query runs on every system back to back, in rotating order), so
machine noise hits all systems alike.

What is timed is each system's own query call with the query vector given: for securerag the
authorized search (no decryption, scanning, memory or audit; those are in
`bench/service.py`), for langchain-postgres `similarity_search_with_score_by_vector` (which
also returns text and metadata), for the two SQL systems the statement.

`--quick` runs 20,000 + 4,000 chunks and 50 queries (about 1.5 minutes here from an empty
database); the full run loads 100,000 + 20,000 (the whole corpus). Both need the corpus
built by `bench/corpus.py` (about 1.5 hours on 2 cores, kept in `bench/.cache`). Loaded
databases are kept under `bench/.cache/compare-<chunks>-home` and reused. Results go to
`bench/results/compare{,-quick}.{json,md}` and `compare{,-quick}-{recall,latency}.png`.
Needs the `bench` extra: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from retrieval import (
    BUILD_FIGURES,
    Series,
    TenantLoad,
    assign_collections,
    document_runs,
    load_tenants,
    run_authorized,
)
from securerag.config import Settings
from securerag.crypto.master import ensure_key_file, load_key_provider
from securerag.db import initialize
from securerag.retrieval.search import VectorSearch
from securerag.runtime import Runtime
from securerag.tenants import TenantRef

ROOT = Path(__file__).resolve().parent
K = 10
QUERIED, OTHER = "acme", "globex"
ROLES: dict[str, str] = {
    "role:reader-all": "*",
    "role:reader-d0": "d0/*",
    "role:reader-d0c0": "d0/c0/*",
    "role:reader-d0c0b0": "d0/c0/b0/*",
}
# user -> (role, nominal share of the tenant readable)
USERS: dict[str, tuple[str, float]] = {
    "ann": ("role:reader-all", 1.0),
    "ben": ("role:reader-d0", 0.1),
    "cat": ("role:reader-d0c0", 0.01),
    "dan": ("role:reader-d0c0b0", 0.001),
}
SYSTEMS = ("securerag", "langchain-postgres", "pgvector-hnsw", "exact")
console = Console(stderr=True)


@dataclass
class Corpus:
    embeddings: npt.NDArray[np.float32]
    texts: npt.NDArray[np.str_]
    tenants: dict[str, TenantLoad]
    queries: npt.NDArray[np.float32]


def load_corpus(path: Path, chunks: int, n_queries: int, seed: int) -> Corpus:
    if not path.exists():
        raise SystemExit(
            f"no corpus at {path}: build it first with `python bench/corpus.py` (long on 2 cores)"
        )
    data = np.load(path, allow_pickle=False)
    total = chunks + chunks // 5
    if len(data["embeddings"]) < total:
        raise SystemExit(f"{path} holds {len(data['embeddings']):,} chunks; this run needs {total:,}")
    embeddings = np.ascontiguousarray(data["embeddings"][:total], dtype=np.float32)
    sources = data["sources"][:total]
    tenants: dict[str, TenantLoad] = {}
    for offset, (name, lo, hi) in enumerate(((QUERIED, 0, chunks), (OTHER, chunks, total))):
        doc_of = document_runs(sources[lo:hi])
        policy = [f"g, {u}, {role}, {name}" for u, (role, _) in USERS.items()]
        policy += [f"p, {role}, {name}, collection:{glob}, read" for role, glob in ROLES.items()]
        tenants[name] = TenantLoad(
            name, policy, embeddings[lo:hi], assign_collections(doc_of, seed + offset), doc_of, first=lo
        )
    queries = np.ascontiguousarray(data["query_embeddings"][:n_queries], dtype=np.float32)
    return Corpus(embeddings, data["texts"][:total], tenants, queries)


def glob_matches(collection: str, glob: str) -> bool:
    return glob == "*" or (collection.startswith(glob[:-1]) if glob.endswith("*") else collection == glob)


def readable(corpus: Corpus, user: str) -> npt.NDArray[np.int64]:
    """Corpus indexes `user` (of the queried tenant) may read."""
    load = corpus.tenants[QUERIED]
    glob = ROLES[USERS[user][0]]
    return np.array([load.first + i for i, c in enumerate(load.collections) if glob_matches(c, glob)])


def exact_top_k(corpus: Corpus, rows: npt.NDArray[np.int64], query: npt.NDArray[np.float32]) -> list[int]:
    distances = 1.0 - corpus.embeddings[rows] @ query
    return [int(i) for i in rows[np.argsort(distances, kind="stable")[:K]]]


def like_pattern(glob: str) -> str | None:
    """The SQL LIKE pattern of a collection glob (names here hold no % or _); None for all."""
    if glob == "*":
        return None
    return glob[:-1] + "%" if glob.endswith("*") else glob


# --- the systems ----------------------------------------------------------------------------


class Securerag:
    name = "securerag"

    def __init__(self, rt: Runtime, refs: dict[str, TenantRef]) -> None:
        self._rt, self._tenant = rt, refs[QUERIED]
        self._conn = rt.connect()
        self._search = VectorSearch()

    def query(self, user: str, q: npt.NDArray[np.float32]) -> list[int]:
        got, _plan, _ms = run_authorized(self._rt, self._conn, self._tenant, user, q, self._search, None)
        return got

    def close(self) -> None:
        self._conn.close()


def _langchain_store(admin_conninfo: str, tenant: str) -> Any:
    import psycopg
    import sqlalchemy
    from langchain_core.embeddings import Embeddings
    from langchain_postgres import PGVector

    class NoEmbeddings(Embeddings):
        """PGVector needs an embeddings object; every call here passes vectors, so it is unused."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise NotImplementedError

        def embed_query(self, text: str) -> list[float]:
            raise NotImplementedError

    engine = sqlalchemy.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(admin_conninfo)
    )
    # Default settings: no embedding_length (so no typed column and no ANN index), JSONB metadata.
    return PGVector(embeddings=NoEmbeddings(), connection=engine, collection_name=tenant, use_jsonb=True)


class LangchainPostgres:
    name = "langchain-postgres"

    def __init__(self, admin_conninfo: str) -> None:
        self._store = _langchain_store(admin_conninfo, QUERIED)

    def query(self, user: str, q: npt.NDArray[np.float32]) -> list[int]:
        pattern = like_pattern(ROLES[USERS[user][0]])
        flt = None if pattern is None else {"collection": {"$like": pattern}}
        found = self._store.similarity_search_with_score_by_vector(q.tolist(), k=K, filter=flt)
        return [int(doc.id) for doc, _score in found]

    def close(self) -> None:
        self._store._engine.dispose()


_PLAIN = "SELECT id FROM compare.{table} WHERE tenant = %s{extra} ORDER BY embedding <=> %s LIMIT 10"


class PlainPgvector:
    """The filter in WHERE. pgvector-hnsw: the table with pgvector's default HNSW index. exact:
    the table with a B-tree on (tenant, collection) and index scans off, so the readable rows
    are found by a bitmap scan (or a sequential one when most are readable) and all ranked."""

    def __init__(self, admin_conninfo: str, *, exact: bool) -> None:
        import psycopg
        from pgvector.psycopg import register_vector

        self.name = "exact" if exact else "pgvector-hnsw"
        self._table = "exact_chunks" if exact else "plain_chunks"
        self._conn = psycopg.connect(admin_conninfo, autocommit=True)
        register_vector(self._conn)
        if exact:
            self._conn.execute("SET enable_indexscan = off")

    def query(self, user: str, q: npt.NDArray[np.float32]) -> list[int]:
        pattern = like_pattern(ROLES[USERS[user][0]])
        if pattern is None:
            rows = self._conn.execute(_PLAIN.format(table=self._table, extra=""), (QUERIED, q)).fetchall()
        else:
            sql = _PLAIN.format(table=self._table, extra=" AND collection LIKE %s")
            rows = self._conn.execute(sql, (QUERIED, pattern, q)).fetchall()
        return [int(r[0]) for r in rows]

    def close(self) -> None:
        self._conn.close()


# --- loading --------------------------------------------------------------------------------


def load_langchain(admin_conninfo: str, corpus: Corpus) -> float | None:
    """Rows through PGVector.add_embeddings, as its users load them; seconds (None if reused)."""
    import psycopg

    want = sum(len(t.collections) for t in corpus.tenants.values())
    have = 0
    with psycopg.connect(admin_conninfo) as conn:
        if _table_exists(conn, "public.langchain_pg_embedding"):
            row = conn.execute("SELECT count(*) FROM langchain_pg_embedding").fetchone()
            have = int(row[0]) if row else 0
    if have == want:
        console.print("langchain-postgres: reusing the loaded rows")
        return None
    if have:  # an interrupted or different load: start again
        with psycopg.connect(admin_conninfo, autocommit=True) as conn:
            conn.execute("DROP TABLE langchain_pg_embedding, langchain_pg_collection")
    start = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("langchain-postgres: add_embeddings", total=want)
        for load in corpus.tenants.values():
            store = _langchain_store(admin_conninfo, load.name)
            for lo in range(0, len(load.collections), 1_000):
                hi = min(len(load.collections), lo + 1_000)
                idx = range(load.first + lo, load.first + hi)
                store.add_embeddings(
                    # PostgreSQL text cannot hold NUL; a few source files have them.
                    texts=[str(corpus.texts[i]).replace("\x00", "") for i in idx],
                    embeddings=corpus.embeddings[load.first + lo : load.first + hi].tolist(),
                    metadatas=[{"collection": load.collections[i - load.first]} for i in idx],
                    ids=[str(i) for i in idx],
                )
                progress.advance(task, hi - lo)
            store._engine.dispose()
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        conn.execute("ANALYZE langchain_pg_embedding")
    return time.perf_counter() - start


def _table_exists(conn: Any, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def load_plain(admin_conninfo: str, corpus: Corpus) -> dict[str, float] | None:
    """Two tables holding both tenants, loaded with COPY:

    - `plain_chunks`, with pgvector's default HNSW index and nothing else (the pgvector system);
    - `exact_chunks`, the same rows with a B-tree on (tenant, collection) instead, so the exact
      system reads only the readable rows (bitmap scans stay on with index scans off).

    Seconds spent, or None when both were already loaded and indexed."""
    import psycopg
    from pgvector.psycopg import register_vector

    want = sum(len(t.collections) for t in corpus.tenants.values())
    figures: dict[str, float] = {}
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("CREATE SCHEMA IF NOT EXISTS compare")
        for table in ("plain_chunks", "exact_chunks"):
            if _table_exists(conn, f"compare.{table}"):
                row = conn.execute(f"SELECT count(*) FROM compare.{table}").fetchone()
                indexed = _table_exists(conn, f"compare.{table}_index")
                if row and row[0] == want and indexed:
                    continue
                conn.execute(f"DROP TABLE compare.{table}")  # a different corpus or an interrupted run
            conn.execute(
                f"CREATE TABLE compare.{table} (id bigint PRIMARY KEY, tenant text NOT NULL,"
                " collection text NOT NULL, embedding vector(384) NOT NULL)"
            )
            start = time.perf_counter()
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task(f"{table}: COPY", total=want)
                for load in corpus.tenants.values():
                    with conn.cursor() as cur, cur.copy(f"COPY compare.{table} FROM STDIN") as copy:
                        for i, collection in enumerate(load.collections):
                            copy.write_row((load.first + i, load.name, collection, load.embeddings[i]))
                            if i % 5_000 == 4_999:
                                progress.advance(task, 5_000)
            figures[f"{table}_copy_seconds"] = round(time.perf_counter() - start, 1)
            start = time.perf_counter()
            if table == "plain_chunks":
                console.print("pgvector: building the HNSW index (pgvector defaults)")
                conn.execute("SET maintenance_work_mem = '1GB'")
                conn.execute(
                    "CREATE INDEX plain_chunks_index ON compare.plain_chunks"
                    " USING hnsw (embedding vector_cosine_ops)"
                )
                figures["hnsw_build_seconds"] = round(time.perf_counter() - start, 1)
            else:
                conn.execute(
                    "CREATE INDEX exact_chunks_index ON compare.exact_chunks"
                    " (tenant, collection text_pattern_ops)"
                )
            conn.execute(f"ANALYZE compare.{table}")
    if not figures:
        console.print("pgvector: reusing the loaded tables")
    return figures or None


def storage(admin_conninfo: str, refs: dict[str, TenantRef]) -> dict[str, Any]:
    """Table and index sizes of each system (both tenants)."""
    import psycopg

    def size(conn: Any, sql: str, *params: Any) -> int:
        row = conn.execute(sql, params).fetchone()
        return int(row[0] or 0) if row else 0

    total_rel = "SELECT pg_total_relation_size(%s::regclass)"
    with psycopg.connect(admin_conninfo) as conn:
        parts = [f"securerag.chunks_t{ref.id}" for ref in refs.values()]
        securerag = sum(size(conn, total_rel, p) for p in parts)
        securerag_hnsw = sum(
            size(
                conn,
                "SELECT sum(pg_relation_size(i.indexrelid)) FROM pg_index i JOIN pg_class c"
                " ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
                " WHERE i.indrelid = %s::regclass AND a.amname = 'hnsw'",
                p,
            )
            for p in parts
        )
        return {
            "securerag": {"total_bytes": securerag, "hnsw_bytes": securerag_hnsw},
            "langchain-postgres": {
                "total_bytes": size(conn, total_rel, "public.langchain_pg_embedding"),
                "hnsw_bytes": 0,
            },
            "pgvector-hnsw": {
                "total_bytes": size(conn, total_rel, "compare.plain_chunks"),
                "hnsw_bytes": size(conn, "SELECT pg_relation_size('compare.plain_chunks_index')"),
            },
        }


# --- measuring ------------------------------------------------------------------------------


def measure(
    systems: Sequence[Any], corpus: Corpus, readable_rows: dict[str, npt.NDArray[np.int64]]
) -> dict[tuple[str, str], Series]:
    truth = {u: [exact_top_k(corpus, readable_rows[u], q) for q in corpus.queries] for u in USERS}
    allowed = {u: set(readable_rows[u].tolist()) for u in USERS}
    series = {(s.name, u): Series() for s in systems for u in USERS}
    for q in corpus.queries[: min(10, len(corpus.queries))]:  # warm caches, untimed
        for s in systems:
            for u in USERS:
                s.query(u, q)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("querying", total=len(corpus.queries) * len(USERS) * len(systems))
        for qi, q in enumerate(corpus.queries):
            for ui, u in enumerate(USERS):
                want = truth[u][qi]
                for si in range(len(systems)):
                    s = systems[(qi + ui + si) % len(systems)]  # rotate who goes first
                    start = time.perf_counter()
                    got = s.query(u, q)
                    ms = (time.perf_counter() - start) * 1000
                    one = series[(s.name, u)]
                    one.latencies_ms.append(ms)
                    one.recalls.append(len(set(got) & set(want)) / len(want) if want else 1.0)
                    one.short += int(len(got) < len(want))
                    one.unauthorized += sum(1 for i in got if i not in allowed[u])
                    progress.advance(task)
    return series


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20,000 + 4,000 chunks, 50 queries")
    parser.add_argument("--chunks", type=int, help="chunks of the queried tenant (default 100,000)")
    parser.add_argument("--queries", type=int, help="held-out queries (default 200)")
    parser.add_argument("--corpus", type=Path, default=ROOT / ".cache" / "corpus-v1.npz")
    parser.add_argument("--home", type=Path, help="embedded database folder (kept and reused)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    chunks = args.chunks or (20_000 if args.quick else 100_000)
    n_queries = args.queries or (50 if args.quick else 200)
    name = "compare-quick" if args.quick else "compare"
    home = args.home or ROOT / ".cache" / f"compare-{chunks}-home"
    started = time.perf_counter()

    corpus = load_corpus(args.corpus, chunks, n_queries, args.seed)
    settings = Settings(home=home, database_url=os.environ.get("SECURERAG_BENCH_DATABASE_URL") or None)
    ensure_key_file(settings)
    keys = load_key_provider(settings)
    db, _ = initialize(settings, keys)
    rt = Runtime(settings, keys=keys, db=db, embedder=None)
    admin = db.admin_conninfo

    t0 = time.perf_counter()
    refs, securerag_build = load_tenants(rt, list(corpus.tenants.values()))
    securerag_load = time.perf_counter() - t0
    langchain_load = load_langchain(admin, corpus)
    plain = load_plain(admin, corpus)
    loading = {
        "securerag": None
        if securerag_build is None
        else {
            "load_and_build_seconds": round(securerag_load, 1),
            "hnsw_build_seconds": round(securerag_build, 1),
        }
        | dict(BUILD_FIGURES),
        "langchain-postgres": None
        if langchain_load is None
        else {"add_embeddings_seconds": round(langchain_load, 1)},
        "pgvector-hnsw": plain,
    }

    readable_rows = {u: readable(corpus, u) for u in USERS}
    systems = [
        Securerag(rt, refs),
        LangchainPostgres(admin),
        PlainPgvector(admin, exact=False),
        PlainPgvector(admin, exact=True),
    ]
    try:
        series = measure(systems, corpus, readable_rows)
    finally:
        for s in systems:
            s.close()

    tenant_chunks = len(corpus.tenants[QUERIED].collections)
    rows = []
    for u, (role, nominal) in USERS.items():
        for s in SYSTEMS:
            rows.append(
                {
                    "system": s,
                    "user": u,
                    "role": role,
                    "glob": ROLES[role],
                    "selectivity": nominal,
                    "readable_chunks": len(readable_rows[u]),
                    **series[(s, u)].summary(),
                }
            )
    result = {
        "command": " ".join(["python bench/compare.py", *sys.argv[1:]]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "server": server_version(admin),
        "chunks": {QUERIED: tenant_chunks, OTHER: len(corpus.tenants[OTHER].collections)},
        "queries": len(corpus.queries),
        "securerag_tuning": {
            k: getattr(VectorSearch().tuning, k) for k in ("ef_search", "exact_max_rows", "exact_max_share")
        },
        "loading": loading,
        "storage": storage(admin, refs),
        "results": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    plots = plot(result, args.out, name)
    (args.out / f"{name}.md").write_text(markdown(result, plots))
    print_table(result)
    failures = check(result)
    for line in failures:
        console.print(f"[red]{line}[/red]")
    if failures:
        raise SystemExit(1)


def server_version(admin_conninfo: str) -> str:
    import psycopg

    with psycopg.connect(admin_conninfo) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
    return f"PostgreSQL {row[0]}, pgvector {row[1]}" if row else "?"


def check(result: dict[str, Any]) -> list[str]:
    """What the issue demands of securerag: no unauthorized and no short results anywhere, and
    recall within 0.02 of the exact ceiling at every selectivity."""
    failures = []
    by = {(r["system"], r["user"]): r for r in result["results"]}
    for u in USERS:
        ours, ceiling = by[("securerag", u)], by[("exact", u)]
        if ours["unauthorized_rows"] or ours["short_results"]:
            failures.append(f"securerag returned unauthorized or short results to {u}")
        if ours["recall_at_10"] < ceiling["recall_at_10"] - 0.02:
            failures.append(
                f"securerag recall {ours['recall_at_10']} for {u} is more than 0.02 below exact"
                f" ({ceiling['recall_at_10']})"
            )
    return failures


# --- reporting ------------------------------------------------------------------------------

LABELS = {
    "securerag": "securerag",
    "langchain-postgres": "langchain-postgres PGVector (defaults, metadata filter)",
    "pgvector-hnsw": "pgvector HNSW (defaults, filter in WHERE)",
    "exact": "exact scan of the readable rows",
}


# Distinct markers, so that lines lying on each other (recall 1.0) stay visible.
STYLES: dict[str, dict[str, Any]] = {
    "securerag": {"marker": "o", "linewidth": 2.2, "zorder": 4},
    "langchain-postgres": {"marker": "s", "markersize": 9, "markerfacecolor": "none", "zorder": 3},
    "pgvector-hnsw": {"marker": "^", "zorder": 2},
    "exact": {"marker": "D", "markersize": 4, "linestyle": ":", "zorder": 5},
}


def plot(result: dict[str, Any], out: Path, name: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["results"]
    sel = [USERS[u][1] * 100 for u in USERS]
    files = []
    figures: list[tuple[str, str, Callable[[dict[str, Any]], float], bool]] = [
        ("recall", "recall@10", lambda r: r["recall_at_10"], False),
        ("latency", "p50 latency, ms (log scale; dashed: p95)", lambda r: r["p50_ms"], True),
    ]
    for suffix, ylabel, value, log in figures:
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for system in SYSTEMS:
            mine = [next(r for r in rows if r["system"] == system and r["user"] == u) for u in USERS]
            (line,) = ax.plot(sel, [value(r) for r in mine], label=LABELS[system], **STYLES[system])
            if suffix == "latency":
                ax.plot(sel, [r["p95_ms"] for r in mine], linestyle="--", color=line.get_color(), alpha=0.6)
        ax.set_xscale("log")
        ax.set_xticks(sel, [f"{s:g}%" for s in sel])
        ax.invert_xaxis()
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("share of the tenant the user may read")
        ax.set_ylabel(ylabel)
        chunks = result["chunks"][QUERIED]
        ax.set_title(f"Authorized top-10, {chunks:,} chunks, {result['queries']} queries")
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        file = f"{name}-{suffix}.png"
        fig.savefig(out / file)
        plt.close(fig)
        files.append(file)
    return files


def markdown(result: dict[str, Any], plots: list[str]) -> str:
    chunks = result["chunks"]
    lines = [
        f"# Authorized top-10 side by side: {chunks[QUERIED]:,} chunks queried, {result['queries']} queries",
        "",
        f"`{result['command']}` on {result['machine']}, {result['server']}, {result['when']}"
        f" ({result['seconds']:.0f} s in all).",
        "",
        f"Tenant {QUERIED} holds {chunks[QUERIED]:,} chunks and {OTHER} {chunks[OTHER]:,} more, with the same"
        " collection names, on one server. Each user reads through one role. Recall is against numpy"
        " brute force over the user's readable set; a short result has fewer than 10 rows while 10 were"
        " readable; latency is the system's query call from Python, all systems interleaved query by query.",
        "",
        "| selectivity | readable | system | recall@10 | min recall | short results | unauthorized rows"
        " | p50 ms | p95 ms |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["results"]:
        lines.append(
            f"| {r['selectivity']:.1%} | {r['readable_chunks']:,} | {r['system']} | {r['recall_at_10']}"
            f" | {r['min_recall']} | {r['short_share']:.1%} | {r['unauthorized_rows']} | {r['p50_ms']}"
            f" | {r['p95_ms']} |"
        )
    lines += [
        "",
        "Loading and storage (both tenants):",
        "",
        "| system | load | size on disk | of which HNSW |",
    ]
    lines.append("| --- | --- | ---: | ---: |")
    for system, st in result["storage"].items():
        load = result["loading"].get(system)
        how = ", ".join(_figure(k, v) for k, v in load.items()) if load else "reused from an earlier run"
        total, hnsw = st["total_bytes"] / 2**20, st["hnsw_bytes"] / 2**20
        lines.append(f"| {system} | {how} | {total:,.0f} MiB | {hnsw:,.0f} MiB |")
    lines += [
        "",
        "securerag's rows hold a 1-byte placeholder where real ones hold the sealed text (the benchmark"
        " loads vectors, not documents); langchain's hold the full text. Sizes compare indexes, not rows.",
    ]
    lines += [""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _figure(key: str, value: float) -> str:
    if key.endswith("_bytes"):
        return f"{key.removesuffix('_bytes').replace('_', ' ')} {value / 2**20:,.0f} MiB"
    if key.endswith("_mib"):
        return f"{key.removesuffix('_mib').replace('_', ' ')} {value:,.0f} MiB"
    return f"{key.removesuffix('_seconds').replace('_', ' ')} {value:,.1f} s"


def print_table(result: dict[str, Any]) -> None:
    table = Table(
        title=f"authorized top-10, {result['chunks'][QUERIED]:,} chunks, {result['queries']} queries"
    )
    for col in ("selectivity", "system", "recall@10", "short", "unauth", "p50 ms", "p95 ms"):
        table.add_column(col, justify="right")
    for r in result["results"]:
        table.add_row(
            f"{r['selectivity']:.1%}",
            r["system"],
            str(r["recall_at_10"]),
            f"{r['short_share']:.1%}",
            str(r["unauthorized_rows"]),
            str(r["p50_ms"]),
            str(r["p95_ms"]),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
