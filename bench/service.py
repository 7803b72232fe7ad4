"""The HTTP service under concurrent clients: throughput, latency, time per stage.

    python bench/service.py [--docs 1500] [--clients 1,4,8] [--requests 200] [--workers 1]

Sets up a fresh embedded database under a scratch home, ingests `--docs`
paragraphs of real documentation (tests/data/injection/benign_corpus.jsonl)
through the real pipeline (real model, sealed chunks) into four collections,
loads a policy giving four users 100%, 50%, 25% and 0% of them, makes an API
key per user, and starts `securerag serve --workers N` on it (rate limits
off). Then, for each client count, `--requests` `POST /v1/retrieve` calls
(k=5, queries drawn from held-out paragraphs, users in turn), each client on
its own keep-alive connection.

Reported per client count: requests per second, p50/p95/p99 latency, and
the mean time of each retrieval stage (embed, search, decrypt, scan,
assemble, audit) from the server's own Prometheus histograms. The baseline,
measured in the same run at the same concurrency, is `GET /healthz`: the
HTTP stack alone. Figures go to bench/results/service.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from securerag.authz import add_lines, parse_policy
from securerag.config import Settings
from securerag.crypto.master import ensure_key_file, load_key_provider
from securerag.db import initialize, tenant_transaction
from securerag.ingestion import DocumentInput
from securerag.models import Level
from securerag.runtime import Runtime
from securerag.tenants import ensure_tenant

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT.parent / "tests" / "data" / "injection" / "benign_corpus.jsonl"
TENANT = "svc"
COLLECTIONS = ("docs/a", "docs/b", "docs/c", "docs/d")
# user -> the collections it may read: 100%, 50%, 25% and 0% of the corpus
USERS: dict[str, tuple[str, ...]] = {
    "all": COLLECTIONS,
    "half": COLLECTIONS[:2],
    "quarter": COLLECTIONS[:1],
    "none": (),
}
STAGES = ("embed", "search", "decrypt", "scan", "assemble", "audit")
console = Console(stderr=True)


def policy_lines() -> list[str]:
    lines = []
    for user, collections in USERS.items():
        lines += [f"p, {user}, {TENANT}, collection:{c}, read" for c in collections]
        if collections:
            lines.append(f"p, {user}, {TENANT}, clearance:internal, read")
    return lines


def setup(home: Path, n_docs: int, seed: int) -> tuple[dict[str, str], list[str]]:
    """Ingest the corpus and make keys; the keys by user and the query texts."""
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    rng = random.Random(seed)
    rng.shuffle(rows)
    docs, held_out = rows[:n_docs], rows[n_docs : n_docs + 300]
    queries = [" ".join(r["text"].split()[:12]) for r in held_out]
    settings = Settings(home=home)
    ensure_key_file(settings)
    keys = load_key_provider(settings)
    db, _ = initialize(settings, keys)
    rt = Runtime(settings, keys=keys, db=db)
    with rt.connect() as conn:
        tenant = ensure_tenant(conn, TENANT)
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            rt.keyring.tenant_key(tx, tenant.id)
            add_lines(tx, tenant, parse_policy(policy_lines(), tenant=TENANT), actor="bench", audit=rt.audit)
            api_keys = {user: rt.api_keys.create(tx, tenant, user) for user in USERS}
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("ingesting (real model, sealed)", total=len(docs))
            for i, row in enumerate(docs):
                doc = DocumentInput(
                    collection=COLLECTIONS[i % len(COLLECTIONS)],
                    title=f"doc {i}",
                    text=row["text"],
                    classification=Level.INTERNAL,
                    key=f"bench-{i}",
                )
                prepared = rt.ingestor.prepare(doc)
                with tenant_transaction(conn, tenant.id, access="admin") as tx:
                    rt.ingestor.store(tx, tenant.id, prepared, actor="bench")
                progress.advance(task)
    return api_keys, queries


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(home: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SECURERAG_")},
        "SECURERAG_HOME": str(home),
        "SECURERAG_RATE_LIMIT": "off",
        "SECURERAG_LOG_FORMAT": "json",
    }
    cmd = [sys.executable, "-m", "securerag", "serve", "--port", str(port), "--workers", str(workers)]
    with log.open("w") as sink:
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    deadline = time.monotonic() + 300
    while log.read_text().count("Application startup complete") < workers:
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.5)
    return server, f"http://127.0.0.1:{port}"


def stage_totals(base: str) -> dict[str, tuple[float, float]]:
    """(sum seconds, count) of each stage histogram, summed over what /metrics reports."""
    text = httpx.get(f"{base}/metrics", timeout=30).text
    out: dict[str, tuple[float, float]] = {}
    for stage in STAGES:
        total = re.search(rf'securerag_retrieval_stage_seconds_sum{{stage="{stage}"}} (\S+)', text)
        count = re.search(rf'securerag_retrieval_stage_seconds_count{{stage="{stage}"}} (\S+)', text)
        out[stage] = (float(total.group(1)) if total else 0.0, float(count.group(1)) if count else 0.0)
    return out


def drive(
    base: str, clients: int, n: int, request: Any, progress: Progress, label: str
) -> tuple[list[float], float, int]:
    """`n` requests from `clients` threads (own keep-alive connection each)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(n))
    task = progress.add_task(label, total=n)

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=120) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                response = request(http, i)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    errors += response.status_code != 200
                progress.advance(task)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    wall = time.perf_counter() - start
    progress.remove_task(task)
    return latencies, wall, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=1500)
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    with tempfile.TemporaryDirectory(prefix="securerag-bench-") as scratch:
        home = Path(scratch) / "home"
        keys, queries = setup(home, args.docs, args.seed)
        users = list(keys)
        server, base = start_server(home, args.workers, Path(scratch) / "serve.log")
        rows: list[dict[str, Any]] = []
        try:

            def retrieve(http: httpx.Client, i: int) -> httpx.Response:
                user = users[i % len(users)]
                body = {"query": queries[i % len(queries)], "k": args.k}
                return http.post("/v1/retrieve", json=body, headers={"Authorization": f"Bearer {keys[user]}"})

            def health(http: httpx.Client, i: int) -> httpx.Response:
                return http.get("/healthz")

            with Progress(console=console, transient=True) as progress:
                drive(base, 2, 20, retrieve, progress, "warm-up")
                for clients in levels:
                    base_lat, base_wall, _ = drive(base, clients, args.requests, health, progress, "healthz")
                    before = stage_totals(base)
                    lat, wall, errors = drive(
                        base, clients, args.requests, retrieve, progress, f"{clients} clients"
                    )
                    after = stage_totals(base)
                    stages = {
                        s: round(
                            1000 * (after[s][0] - before[s][0]) / max(1.0, after[s][1] - before[s][1]), 2
                        )
                        for s in STAGES
                    }
                    rows.append(
                        {
                            "clients": clients,
                            "requests": len(lat),
                            "errors": errors,
                            "rps": round(len(lat) / wall, 1),
                            "p50_ms": round(pct(lat, 0.50), 1),
                            "p95_ms": round(pct(lat, 0.95), 1),
                            "p99_ms": round(pct(lat, 0.99), 1),
                            "healthz_rps": round(len(base_lat) / base_wall, 1),
                            "healthz_p50_ms": round(pct(base_lat, 0.50), 2),
                            "p50_over_healthz": round(pct(lat, 0.50) / max(pct(base_lat, 0.50), 1e-6), 1),
                            "stage_mean_ms": stages,
                        }
                    )
        finally:
            server.terminate()
            server.wait(timeout=60)

    result = {
        "command": "python bench/service.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "docs": args.docs,
        "k": args.k,
        "workers": args.workers,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "service.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "service.md").write_text(markdown(result))
    table = Table(title=f"POST /v1/retrieve, k={args.k}, {args.workers} worker(s), {args.docs} documents")
    for column in ("clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "p50 / healthz p50", *STAGES):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["clients"]),
            str(row["rps"]),
            str(row["p50_ms"]),
            str(row["p95_ms"]),
            str(row["p99_ms"]),
            f"{row['p50_over_healthz']}x",
            *(str(row["stage_mean_ms"][s]) for s in STAGES),
        )
    Console().print(table)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# The HTTP service under concurrent clients",
        "",
        f"`{result['command']}`, {result['when']}, {result['machine']['cpus']} CPUs, "
        f"{result['workers']} worker(s), {result['docs']} documents, k={result['k']}. Baseline in the "
        "same run and at the same concurrency: `GET /healthz` (the HTTP stack alone). Stage times are "
        "server-side means from the Prometheus histograms.",
        "",
        "| clients | req/s | p50 ms | p95 ms | p99 ms | healthz p50 ms | p50 / healthz | errors | "
        + " | ".join(f"{s} ms" for s in STAGES)
        + " |",
        "| ---: " * (8 + len(STAGES)) + "|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['clients']} | {row['rps']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
            f"{row['healthz_p50_ms']} | {row['p50_over_healthz']}x | {row['errors']} | "
            + " | ".join(str(row["stage_mean_ms"][s]) for s in STAGES)
            + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
