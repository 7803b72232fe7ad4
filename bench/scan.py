"""Injection scanner speed: chunks per second for each layer, and what a full
rescan adds to a k=10 retrieval.

    python bench/scan.py [--rounds 200]

Texts are the rows of tests/data/injection/dataset.jsonl (chunk-sized,
benign and injected, all formats). Layers are timed on the same texts in the
same run, one text per call, best of three interleaved rounds: normalisation
alone, normalisation + rules, normalisation + the learned classifier, and the
whole scanner. The k=10 figure is the time to scan ten random stored chunks
in one batch (a retrieval whose stored verdicts are all older than the running
scanner: the worst case, until `securerag rescan` has run), and the time to
read ten current sealed verdicts (the normal case), against embedding one
query with the real model in the same run as the baseline. Stored chunks are
the dataset texts split as ingestion splits them (`split_text` at the model's
256 tokens, 32 overlap): a retrieval returns chunks, so the 2-4 KB jailbreak
texts in the dataset are never scanned whole there. Batches of ten whole
dataset texts are timed too, for comparison with earlier runs. Target: at most
20 ms added to a k=10 retrieval.
Figures go to bench/results/scan.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from securerag.scanning import InjectionScanner, RuleScanner, normalise
from securerag.scanning import classifier as clf
from securerag.scanning.rules import match_rules
from securerag.scanning.scanner import classifier_readings

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent / "tests" / "data" / "injection" / "dataset.jsonl"
console = Console(stderr=True)
LAYER_ROUNDS = 3


def rate(texts: list[str], fn: Callable[[str], object]) -> float:
    start = time.perf_counter()
    for text in texts:
        fn(text)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()

    texts = [json.loads(line)["text"] for line in DATA.read_text().splitlines() if line.strip()]
    model = clf.bundled()
    full = InjectionScanner(model=model)
    rules_only = RuleScanner()

    def classify(text: str) -> object:
        return model.score_many([classifier_readings(normalise(text))])

    layers: dict[str, Callable[[str], object]] = {
        "normalise": normalise,
        "normalise + rules": lambda t: match_rules(normalise(t)),
        "normalise + classifier": classify,
        "scanner (all layers)": full.scan,
        "scanner without classifier": rules_only.scan,
    }
    full.scan_many(texts[:300])  # warm up: model load, imports (HTML parser), regex automata, caches
    # Three rounds over the layers in turn; each layer's best round is reported (the host
    # is shared: the best round is the one least disturbed).
    best: dict[str, float] = dict.fromkeys(layers, 0.0)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("layers", total=LAYER_ROUNDS * len(layers))
        for _ in range(LAYER_ROUNDS):
            for name, fn in layers.items():
                best[name] = max(best[name], rate(texts, fn))
                progress.advance(task)
    rates = {name: round(value, 1) for name, value in best.items()}
    with Progress(console=console, transient=True) as progress:
        from securerag.ingestion import SentenceTransformerEmbedder
        from securerag.ingestion.chunking import split_text

        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm up"])
        chunks = [
            c.text
            for text in texts
            for c in split_text(
                text, max_tokens=embedder.max_tokens, overlap_tokens=32, count_tokens=embedder.count_tokens
            )
        ]
        rng = random.Random(7)
        k10: list[float] = []
        k10_whole: list[float] = []
        sealed: list[float] = []
        query: list[float] = []
        task = progress.add_task("k=10 rescans", total=args.rounds)
        for _ in range(args.rounds):
            whole = rng.sample(texts, 10)
            start = time.perf_counter()
            full.scan_many(whole)
            k10_whole.append((time.perf_counter() - start) * 1000)
            batch = rng.sample(chunks, 10)
            start = time.perf_counter()
            verdicts = full.scan_many(batch)
            k10.append((time.perf_counter() - start) * 1000)
            stored = [json.dumps({"score": v.score, "reasons": list(v.reasons)}) for v in verdicts]
            start = time.perf_counter()
            for blob in stored:  # what a retrieval does with current sealed verdicts
                full.action_for(float(json.loads(blob)["score"]), "acme", "internal")
            sealed.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            embedder.embed([batch[0][:200]])
            query.append((time.perf_counter() - start) * 1000)
            progress.advance(task)

    def pct(values: list[float], q: int) -> float:
        return round(statistics.quantiles(values, n=100)[q - 1], 2)

    result = {
        "command": f"python bench/scan.py --rounds {args.rounds}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "texts": len(texts),
        "mean_chars": round(statistics.fmean(len(t) for t in texts)),
        "chunks_per_s": rates,
        "stored_chunks": len(chunks),
        "chunk_mean_chars": round(statistics.fmean(len(c) for c in chunks)),
        "chunk_max_chars": max(len(c) for c in chunks),
        "k10_rescan_ms": {"p50": pct(k10, 50), "p95": pct(k10, 95)},
        "k10_whole_texts_rescan_ms": {"p50": pct(k10_whole, 50), "p95": pct(k10_whole, 95)},
        "k10_sealed_ms": {"p50": pct(sealed, 50), "p95": pct(sealed, 95)},
        "baseline_query_embedding_ms": {"p50": pct(query, 50), "p95": pct(query, 95)},
        "k10_p95_vs_query_embedding_p95": round(pct(k10, 95) / pct(query, 95), 2),
        "target": "scanner adds <= 20 ms (p95) to a k=10 retrieval",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scan.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = "\n".join(f"| {name} | {value:,.1f} |" for name, value in rates.items())
    (args.out / "scan.md").write_text(
        f"# Injection scanner speed\n\n`{result['command']}` on {result['machine']}, {result['when']}.\n\n"
        f"{len(texts)} texts from tests/data/injection (mean {result['mean_chars']} characters).\n\n"
        f"| layer | chunks/s |\n| --- | ---: |\n{rows}\n\n"
        f"A k=10 retrieval whose sealed verdicts are current (the normal case) spends p50 "
        f"{result['k10_sealed_ms']['p50']} ms, p95 {result['k10_sealed_ms']['p95']} ms on verdicts.\n\n"
        f"Full rescan of a k=10 retrieval (one batch of ten stored chunks, after a scanner upgrade; "
        f"{result['stored_chunks']} chunks as ingestion splits the texts, mean "
        f"{result['chunk_mean_chars']}, max {result['chunk_max_chars']} characters): "
        f"p50 {result['k10_rescan_ms']['p50']} ms, "
        f"p95 {result['k10_rescan_ms']['p95']} ms (target p95 <= 20 ms). Ten whole dataset texts "
        f"(up to {max(len(t) for t in texts):,} characters, longer than any chunk): "
        f"p50 {result['k10_whole_texts_rescan_ms']['p50']} ms, "
        f"p95 {result['k10_whole_texts_rescan_ms']['p95']} ms. Embedding one query "
        f"in the same run: p50 {result['baseline_query_embedding_ms']['p50']} ms, "
        f"p95 {result['baseline_query_embedding_ms']['p95']} ms "
        f"(rescan / query embedding: {result['k10_p95_vs_query_embedding_p95']}x).\n"
    )
    console.print_json(json.dumps(result))


if __name__ == "__main__":
    main()
