"""Ingestion throughput end to end against the embedding model alone, same chunks, same run.

    python bench/ingest.py [--documents 300] [--chunks-per-document 8]

Builds Markdown documents from the real text of the corpus (`bench/corpus.py`:
consecutive chunks of one source joined into a document), writes them to a
temporary folder and ingests them through the real path (load, classify,
chunk, scan, embed, seal, COPY into PostgreSQL, one transaction per
document). The baseline embeds exactly the chunks that path produced, with
the same model and batch size, before and after the ingest; the target is
end to end >= 85% of the model-alone rate. Figures go to
bench/results/ingest.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from securerag.config import Settings
from securerag.crypto.master import ensure_key_file, load_key_provider
from securerag.db import initialize, tenant_transaction
from securerag.ingestion import split_text
from securerag.ingestion.files import ingest_files, list_files
from securerag.runtime import Runtime
from securerag.tenants import ensure_tenant

ROOT = Path(__file__).resolve().parent
console = Console(stderr=True)


def build_documents(corpus: Path, n_docs: int, per_doc: int, folder: Path) -> list[Path]:
    data = np.load(corpus, allow_pickle=False)
    texts, sources = data["texts"], data["sources"]
    paths: list[Path] = []
    i = 0
    while len(paths) < n_docs and i < len(texts):
        source, parts = sources[i], []
        while i < len(texts) and sources[i] == source and len(parts) < per_doc:
            parts.append(str(texts[i]))
            i += 1
        if len(parts) >= 2:
            path = folder / f"{len(paths):05d}.md"
            path.write_text(f"# {source}\n\n" + "\n\n".join(parts) + "\n")
            paths.append(path)
        while i < len(texts) and sources[i] == source:
            i += 1
    return paths


def model_alone(rt: Runtime, chunks: list[str]) -> float:
    start = time.perf_counter()
    for i in range(0, len(chunks), 256):
        rt.embedder.embed(chunks[i : i + 256])
    return len(chunks) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=ROOT / ".cache" / "corpus-v1.npz")
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--chunks-per-document", type=int, default=8)
    parser.add_argument("--home", type=Path, default=ROOT / ".cache" / "home")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()

    settings = Settings(home=args.home, database_url=os.environ.get("SECURERAG_BENCH_DATABASE_URL") or None)
    ensure_key_file(settings)
    keys = load_key_provider(settings)
    db, _ = initialize(settings, keys)
    rt = Runtime(settings, keys=keys, db=db)
    embedder = rt.embedder
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = build_documents(args.corpus, args.documents, args.chunks_per_document, folder)
        # The chunks the pipeline will produce (same splitter, same limits).
        chunks = [
            c.text
            for p in paths
            for c in split_text(
                p.read_text(),
                max_tokens=embedder.max_tokens,
                overlap_tokens=32,
                count_tokens=embedder.count_tokens,
            )
        ]
        model_alone(rt, chunks[:64])  # warm up
        before = model_alone(rt, chunks)
        with rt.connect() as conn:
            tenant = ensure_tenant(conn, f"ingest-bench-{uuid.uuid4().hex[:8]}")
            with tenant_transaction(conn, tenant.id, access="admin") as tx:
                rt.keyring.tenant_key(tx, tenant.id)
            files, _ = list_files([folder])
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("ingesting", total=len(files))
                start = time.perf_counter()
                summary = ingest_files(
                    conn,
                    rt.ingestor,
                    tenant,
                    files,
                    collection="bench",
                    actor="bench",
                    on_file=lambda _: progress.advance(task),
                )
                elapsed = time.perf_counter() - start
        after = model_alone(rt, chunks)
    if summary.failed:
        raise SystemExit(f"ingestion failures: {summary.failed[:3]}")
    baseline = statistics.fmean([before, after])
    end_to_end = summary.chunks / elapsed
    result = {
        "command": "python bench/ingest.py "
        + " ".join(f"{k}={v}" for k, v in vars(args).items() if k in ("documents", "chunks_per_document")),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "documents": summary.documents,
        "chunks": summary.chunks,
        "chunks_expected": len(chunks),
        "model_alone_chunks_per_s": {"before": round(before, 1), "after": round(after, 1)},
        "end_to_end_chunks_per_s": round(end_to_end, 1),
        "ratio": round(end_to_end / baseline, 3),
        "target": ">= 0.85",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "ingest.md").write_text(
        f"# Ingestion throughput\n\n`{result['command']}` on {result['machine']}, {result['when']}.\n\n"
        f"| | chunks/s |\n| --- | ---: |\n"
        f"| model alone (before / after) | {before:.1f} / {after:.1f} |\n"
        f"| end to end | {end_to_end:.1f} |\n"
        f"| **ratio** | **{end_to_end / baseline:.2f}** (target 0.85) |\n\n"
        f"{summary.documents} documents, {summary.chunks} chunks.\n"
    )
    Console().print(result)


if __name__ == "__main__":
    main()
