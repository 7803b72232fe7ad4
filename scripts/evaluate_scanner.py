"""Evaluate the injection scanner on the held-out split of tests/data/injection.

    .venv/bin/python scripts/evaluate_scanner.py [--split heldout]

A positive counts as caught when the action is `flag` or `withhold`; a
benign row counts as a false positive on the same condition. Prints and writes
bench/results/scan-eval.{json,md}: TPR and FPR for the whole scanner and for
the rules alone, the confusion by category, and the false-positive rate on
ordinary documentation in English and in 28 other languages.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from securerag.models import Action
from securerag.scanning import InjectionScanner, RuleScanner

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "injection" / "dataset.jsonl"


def _tpr_at(scores: dict[int, list[float]], budget: float) -> float | None:
    benign = sorted(scores[0], reverse=True)
    if not benign or not scores[1]:
        return None
    allowed = int(budget * len(benign))  # benign rows that may score at or above the threshold
    threshold = benign[allowed] if allowed < len(benign) else -1.0
    return round(sum(s > threshold for s in scores[1]) / len(scores[1]), 4)


def evaluate(rows: list[dict[str, Any]], scanner: InjectionScanner) -> dict[str, Any]:
    """TPR, FPR and the confusion by category for `scanner` on `rows`."""
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    tp = fp = pos = neg = 0
    scores: dict[int, list[float]] = {0: [], 1: []}
    for row in rows:
        verdict = scanner.scan(row["text"])
        scores[row["label"]].append(verdict.score)
        action = verdict.action
        by_category[row["category"]][action.label] += 1
        caught = action != Action.ALLOW
        if row["label"] == 1:
            pos += 1
            tp += caught
        else:
            neg += 1
            fp += caught
    return {
        "positives": pos,
        "benign": neg,
        "tpr": round(tp / max(pos, 1), 4),
        "fpr": round(fp / max(neg, 1), 4),
        # Where the scanner stands at other thresholds: the TPR at the score threshold that
        # keeps the benign false-positive rate at each budget.
        "tpr_at_fpr": {str(budget): _tpr_at(scores, budget) for budget in (0.01, 0.03, 0.05, 0.1)},
        "by_category": {
            c: {"n": sum(k.values()), **{a.label: k[a.label] for a in Action}}
            for c, k in sorted(by_category.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", default="heldout", choices=["train", "dev", "heldout"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == args.split]
    scanner = InjectionScanner()
    full = evaluate(rows, scanner)
    rules = evaluate(rows, RuleScanner())
    # Ordinary documentation (man pages, docstrings, ...) from sources never trained on.
    corpus = [json.loads(line) for line in DATA.with_name("benign_corpus.jsonl").read_text().splitlines()]
    docs = evaluate(
        [{**r, "label": 0, "category": "docs"} for r in corpus if r["split"] == args.split],
        scanner,
    )
    # The same in 28 other languages (Debian's translated LibreOffice help and man pages), never
    # trained on whatever the split (tests/data/injection/sample_multilingual.py).
    translated = [
        {**json.loads(line), "label": 0, "category": "docs"}
        for line in DATA.with_name("benign_multilingual.jsonl").read_text().splitlines()
    ]
    other_languages = evaluate(translated, scanner)
    result = {
        "command": f"python scripts/evaluate_scanner.py --split {args.split}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "split": args.split,
        "scanner": full,
        "rules_only": {k: rules[k] for k in ("tpr", "fpr")},
        "documentation": {"paragraphs": docs["benign"], "fpr": docs["fpr"]},
        "documentation_other_languages": {
            "chunks": other_languages["benign"],
            "languages": len({r["lang"].split("-")[0] for r in translated}),  # pt-br is Portuguese
            "fpr": other_languages["fpr"],
        },
        "target": "TPR >= 0.90 (flag or withhold), FPR <= 0.03",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scan-eval.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Injection scanner on the {args.split} split\n",
        f"`{result['command']}`, {result['when']}. {full['positives']} injected and {full['benign']} "
        "benign rows, none seen in training or threshold tuning (tests/data/injection/README.md).\n",
        "| | TPR (flag or withhold) | FPR |",
        "| --- | ---: | ---: |",
        f"| scanner (all layers) | {full['tpr']:.3f} | {full['fpr']:.3f} |",
        f"| rules and obfuscation signals only | {rules['tpr']:.3f} | {rules['fpr']:.3f} |",
        "",
        "TPR at other thresholds, where the benign false-positive rate is at most "
        + ", ".join(f"{b}: {t}" for b, t in full["tpr_at_fpr"].items())
        + ".",
        "",
        f"Ordinary documentation ({docs['benign']} {args.split} paragraphs of benign_corpus.jsonl: "
        f"man pages, docstrings, package docs): false-positive rate {docs['fpr']:.3f}. The same in "
        f"{result['documentation_other_languages']['languages']} other languages "
        f"({other_languages['benign']} chunks of Debian's translated LibreOffice help and man pages, "
        f"benign_multilingual.jsonl, never trained on): {other_languages['fpr']:.3f}.",
        "",
        "Confusion by category (actions taken):\n",
        "| category | rows | allow | flag | withhold |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for category, counts in full["by_category"].items():
        lines.append(
            f"| {category} | {counts['n']} | {counts['allow']} | {counts['flag']} | {counts['withhold']} |"
        )
    (args.out / "scan-eval.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
