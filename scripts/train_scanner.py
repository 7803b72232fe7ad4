"""Train the injection scanner's learned layer on tests/data/injection (train split only).

    .venv/bin/python scripts/train_scanner.py [--data tests/data/injection/dataset.jsonl]

Windows are cut the way the scanner cuts them. Negatives: every window of
every benign row (including the hosts that positives are built on).
Also negatives: the train part of `benign_corpus.jsonl`, real documentation
paragraphs (see `tests/data/injection/sample_corpus.py`).
Positives: the windows of what was inserted into the host (the row minus its
host text); when the attack was encoded or hidden, the decoded or revealed
views instead of its surface, so that base64 or hex as such is never learned
as an attack. C and the flag threshold are chosen on the dev split by the scanner's own
chunk-level verdicts; the held-out split is never read here.

Writes securerag/scanning/model.npz with the SHA-256 of the data file.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from securerag.scanning import normalise
from securerag.scanning.classifier import WindowClassifier, featurize, windows
from securerag.scanning.scanner import classifier_readings

ROOT = Path(__file__).resolve().parents[1]
MODEL_VERSION = 4
FLAG_THRESHOLDS = (0.5, 0.55, 0.6)


def readings(text: str) -> list[str]:
    """What the scanner hands the classifier for `text`."""
    return classifier_readings(normalise(text))


def inserted(text: str, host: str) -> str:
    """The parts of `text` that are not `host` (word-level diff)."""
    a, b = host.split(), text.split()
    parts = []
    for op, _, _, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op in ("insert", "replace"):
            parts.append(" ".join(b[j1:j2]))
    return "\n".join(parts)


def load_hosts(path: Path) -> dict[str, str]:
    """Host paragraphs by id, from the `@@ id=...` blocks of hosts.txt."""
    hosts: dict[str, str] = {}
    current: str | None = None
    for line in path.read_text().splitlines():
        if line.startswith("@@ "):
            current = dict(kv.split("=", 1) for kv in line[3:].split())["id"]
            hosts[current] = ""
        elif current is not None:
            hosts[current] += line + "\n"
    return {k: v.strip() for k, v in hosts.items()}


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def training_windows(rows: list[dict[str, Any]], hosts: dict[str, str]) -> tuple[list[str], list[int]]:
    texts: list[str] = []
    labels: list[int] = []
    for row in rows:
        if row["label"] == 0:
            for reading in readings(row["text"]):
                cut = windows(reading)
                texts += cut
                labels += [0] * len(cut)
            continue
        host = hosts.get(row.get("host") or "")
        payload = inserted(row["text"], host) if host else row["text"]
        views = readings(payload)
        if row.get("transform", "none") != "none" and len(views) > 1:
            views = views[1:]
        for reading in views:
            cut = windows(reading)
            texts += cut
            labels += [1] * len(cut)
    return texts, labels


def chunk_metrics(model: WindowClassifier, rows: list[dict[str, Any]], flag: float) -> dict[str, float]:
    from securerag.scanning import InjectionScanner, ScanThresholds, Thresholds

    scanner = InjectionScanner(ScanThresholds(Thresholds(flag, max(flag, 0.8))), model=model)
    pos = [r for r in rows if r["label"] == 1]
    neg = [r for r in rows if r["label"] == 0]
    tp = sum(scanner.scan(r["text"]).action.label != "allow" for r in pos)
    fp = sum(scanner.scan(r["text"]).action.label != "allow" for r in neg)
    return {"tpr": tp / max(len(pos), 1), "fpr": fp / max(len(neg), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "injection" / "dataset.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "securerag" / "scanning" / "model.npz")
    args = parser.parse_args()

    rows = load(args.data)
    corpus_path = args.data.with_name("benign_corpus.jsonl")
    digest = hashlib.sha256(args.data.read_bytes() + corpus_path.read_bytes()).hexdigest()
    hosts = load_hosts(args.data.with_name("hosts.txt"))
    train = [r for r in rows if r["split"] == "train"]
    dev = [r for r in rows if r["split"] == "dev"]
    corpus = [r for r in load(corpus_path) if r["split"] == "train"]
    texts, labels = training_windows(train + [{**r, "label": 0} for r in corpus], hosts)
    print(f"train: {len(train)} rows -> {len(texts)} windows ({sum(labels)} positive); dev: {len(dev)} rows")
    features = featurize(texts)
    y = np.asarray(labels)

    # C and the flag threshold are chosen together on dev: the most true positives with
    # the false-positive budget (0.03) as a hard limit.
    best: tuple[float, float, float, WindowClassifier] | None = None
    for c in (0.5, 1.0, 2.0, 4.0, 8.0):
        fit = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, solver="liblinear").fit(
            features, y
        )
        model = WindowClassifier(
            coef=fit.coef_[0].astype(np.float32),
            intercept=float(fit.intercept_[0]),
            version=MODEL_VERSION,
            trained_on=f"sha256:{digest}",
        )
        for flag in FLAG_THRESHOLDS:
            m = chunk_metrics(model, dev, flag)
            objective = m["tpr"] if m["fpr"] <= 0.03 else -1 + m["tpr"] - m["fpr"]
            print(f"C={c} flag={flag}: dev TPR {m['tpr']:.3f} FPR {m['fpr']:.3f}")
            if best is None or objective > best[0]:
                best = (objective, c, flag, model)
    assert best is not None
    _, c, flag, model = best
    print(f"chose C={c}, flag threshold {flag} (securerag.scanning.Thresholds.flag should say so)")
    model.save(args.out)
    print(f"wrote {args.out} (trained on sha256:{digest[:16]}…)")


if __name__ == "__main__":
    main()
