"""Train the injection scanner's learned layer on tests/data/injection (train and dev splits).

    .venv/bin/python scripts/train_scanner.py [--data tests/data/injection/dataset.jsonl]

Windows are cut the way the scanner cuts them.

- Negatives: every window of every benign row (including the hosts that
  positives are built on), and the train part of `benign_corpus.jsonl`, real
  documentation paragraphs (see `tests/data/injection/sample_corpus.py`).
- Positives: the windows of what was inserted into the host (the row minus
  its host text); when the attack was encoded or hidden, the decoded or
  revealed views instead of its surface, so that base64 or hex as such is
  never learned as an attack. Also, at `SYNTHETIC_WEIGHT` each, attacks
  composed from their parts by `tests/data/injection/synthetic.py`, so that
  the model sees more ways of saying the same thing than the dataset's few
  hundred templates. And, at `HANDWRITTEN_WEIGHT` each, the rows of
  `handwritten_train.jsonl` (attacks and hard negatives written for training
  only, see the dataset README), less any that share an eight-word run with a
  dataset row; an attack row there is one sample per reading, not cut into
  windows, because its injected sentence sits among benign ones at no
  recorded position. Short benign fragments (first words, headings) of the
  benign training texts teach the model that a title is not an attack.

C and the flag threshold are chosen by five-fold cross-validation on the
whole scanner's chunk-level scores: the train and dev rows are folded by
dataset group (an attack template, a host, a hard negative never straddles two
folds), the hand-written rows by their text, and each row is scored by a model
that never saw its fold. The threshold must keep the false-positive rate
within budget on both pools of negatives: the dataset's, and the hand-written
hard negatives, which are harder and closer to what a new corpus brings. The
final model is fitted on everything. The held-out split is never read here.

Writes securerag/scanning/model.npz with the SHA-256 of the data files (dataset, corpus,
the synthetic-attack generator and the hand-written training rows).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from securerag.scanning import normalise
from securerag.scanning.classifier import WindowClassifier, featurize, windows
from securerag.scanning.scanner import classifier_readings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data" / "injection"))
import synthetic  # noqa: E402  (tests/data/injection/synthetic.py)

MODEL_VERSION = 9
FOLDS = 5
CS = (2.0, 4.0, 8.0)
# Out-of-fold false-positive budgets for the flag threshold. On the dataset's negatives, below
# the 0.03 target, because benign text the model has never seen anything like scores higher than
# these folds do: at stop 19 a threshold chosen at 0.019 here gave 0.098 on held-out. So the
# threshold must also keep the hand-written hard negatives (written to share the attacks'
# vocabulary and formats, in 30 languages) within HANDWRITTEN_FPR_BUDGET. Out of fold they
# predicted that miss (0.119 at the same threshold). Their budget is above 0.03 because they are
# all hard and harder than most (a corpus, like the held-out split, is at most 84% hard
# negatives); at 0.03 the dataset TPR out of fold falls from 0.72 to 0.65 (rules version 9).
# Chosen before the held-out split was scored with it.
FPR_BUDGET = 0.02
HANDWRITTEN_FPR_BUDGET = 0.05
SYNTHETIC_ATTACKS = 4000
# Out of fold (TPR at FPR 0.02, C=8): without these rows 0.674; with the first batch at weight
# 1.0 0.754, 2.0 0.761; two batches at 1.0 0.767, 2.0 0.792, 3.0 0.793; all three at 2.0 0.790,
# 3.0 0.802 (at FPR 0.01: 0.67 with two batches, 0.73 with three). With rules version 5: three batches
# 0.823, four 0.830; four and rules version 6 0.841 (at FPR 0.03: 0.827, 0.842, 0.853).
# Rules version 7: 0.848 (0.863). Fifth batch, by part at weight 3: technical formats 0.862 (0.884),
# world (29 languages) 0.839 (0.864), security teaching 0.837 (0.848), teaching and world 0.836
# (0.849), formats and world 0.862 (0.887), all three 0.857 (0.888): formats and world are added.
HANDWRITTEN_WEIGHT = 3.0
# Chosen on dev (classifier alone, TPR at FPR 0.03): 0.1-0.3 helped, 1.0 less, and
# synthetic benign text hurt, so none is used.
SYNTHETIC_WEIGHT = 0.3


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


def handwritten_windows(rows: list[dict[str, Any]]) -> tuple[list[str], list[int]]:
    """Training samples from `handwritten_train.jsonl` rows: every window of a benign row;
    each whole reading of an attack (see the module docstring)."""
    texts: list[str] = []
    labels: list[int] = []
    for row in rows:
        for reading in readings(row["text"]):
            cut = windows(reading) if row["label"] == 0 else [reading]
            texts += cut
            labels += [row["label"]] * len(cut)
    return texts, labels


def fragments(texts: list[str]) -> list[str]:
    """Short benign pieces of `texts`: each text's first one to four words (where a title or a
    heading sits) and every markdown heading. The scanner reads titles on their own, and a
    model trained only on whole windows learned genre words ("Agenda", "Notes", "Summary")
    from the benign sentences around hand-written attacks."""
    out: list[str] = []
    for text in texts:
        first = text.strip().split("\n", 1)[0].lstrip("#*> ").split()
        out += [" ".join(first[:n]) for n in range(1, min(4, len(first)) + 1)]
        out += [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
    return list(dict.fromkeys(f for f in out if f))


def fit(
    features: Any, y: npt.NDArray[np.int64], weights: npt.NDArray[np.float64], c: float, digest: str
) -> WindowClassifier:
    done = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, solver="liblinear").fit(
        features, y, sample_weight=weights
    )
    return WindowClassifier(
        coef=done.coef_[0].astype(np.float32),
        intercept=float(done.intercept_[0]),
        version=MODEL_VERSION,
        trained_on=f"sha256:{digest}",
    )


def fold_of(group: str) -> int:
    """The cross-validation fold of a dataset group (stable across runs)."""
    return zlib.crc32(group.encode()) % FOLDS


def handwritten_fold(row: dict[str, Any]) -> int:
    """The cross-validation fold of a hand-written training row (by its text)."""
    return zlib.crc32(("handwritten:" + row["text"]).encode()) % FOLDS


def best_threshold(
    scores: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    hard_negatives: npt.NDArray[np.float64] | None = None,
) -> tuple[float, float, float]:
    """(flag threshold, TPR, FPR): the threshold with the most true positives whose
    false-positive rate stays within `FPR_BUDGET` on `labels`' negatives and within
    `HANDWRITTEN_FPR_BUDGET` on the scores of `hard_negatives`, if given."""
    best = (1.0, 0.0, 0.0)
    for flag in np.round(np.arange(0.40, 0.95, 0.01), 2):
        caught = scores >= flag
        tpr, fpr = float(caught[labels == 1].mean()), float(caught[labels == 0].mean())
        hard_fpr = 0.0 if hard_negatives is None else float((hard_negatives >= flag).mean())
        if fpr <= FPR_BUDGET and hard_fpr <= HANDWRITTEN_FPR_BUDGET and tpr > best[1]:
            best = (float(flag), tpr, fpr)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "injection" / "dataset.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "securerag" / "scanning" / "model.npz")
    args = parser.parse_args()

    from securerag.scanning import InjectionScanner

    rows = load(args.data)
    corpus_path = args.data.with_name("benign_corpus.jsonl")
    generator = args.data.with_name("synthetic.py")  # the synthetic attacks are training data too
    handwritten_path = args.data.with_name("handwritten_train.jsonl")
    digest = hashlib.sha256(
        b"".join(path.read_bytes() for path in (args.data, corpus_path, generator, handwritten_path))
    ).hexdigest()
    hosts = load_hosts(args.data.with_name("hosts.txt"))
    seen = [r for r in rows if r["split"] in ("train", "dev")]
    corpus = [{**r, "label": 0} for r in load(corpus_path) if r["split"] == "train"]
    attacks = [
        {**r, "host": None}
        for r in synthetic.generate(SYNTHETIC_ATTACKS, reserved=synthetic.reserved_texts())
    ]
    handwritten, overlapping = synthetic.decontaminate(load(handwritten_path), [r["text"] for r in rows])
    texts: list[str] = []
    labels: list[int] = []
    folds: list[int] = []  # -1: in every fold's training part
    weights: list[float] = []
    for part, fold, weight in (
        *(([r], fold_of(r["group"]), 1.0) for r in seen),
        (corpus, -1, 1.0),
        (attacks, -1, SYNTHETIC_WEIGHT),
    ):
        cut, cut_labels = training_windows(part, hosts)
        texts += cut
        labels += cut_labels
        folds += [fold] * len(cut)
        weights += [weight] * len(cut)
    for row in handwritten:
        cut, cut_labels = handwritten_windows([row])
        texts += cut
        labels += cut_labels
        folds += [handwritten_fold(row)] * len(cut)
        weights += [HANDWRITTEN_WEIGHT] * len(cut)
    # Titles and headings: fragments of the benign texts, each in its source row's fold.
    short: list[str] = []
    for source, fold in (
        *(([r["text"]], fold_of(r["group"])) for r in seen if r["label"] == 0),
        *(([r["text"]], handwritten_fold(r)) for r in handwritten if r["label"] == 0),
        ([r["text"] for r in corpus], -1),
    ):
        cut = fragments(source)
        short += cut
        texts += cut
        labels += [0] * len(cut)
        folds += [fold] * len(cut)
        weights += [1.0] * len(cut)
    print(
        f"{len(seen)} train and dev rows, {len(corpus)} documentation paragraphs, {len(attacks)} synthetic "
        f"attacks (weight {SYNTHETIC_WEIGHT}), {len(handwritten)} hand-written training rows (weight "
        f"{HANDWRITTEN_WEIGHT}; {overlapping} dropped for sharing eight words with a dataset row), "
        f"{len(short)} benign titles and fragments "
        f"-> {len(texts)} windows ({sum(labels)} positive)"
    )
    features = featurize(texts)
    y, w, window_fold = np.asarray(labels), np.asarray(weights), np.asarray(folds)
    row_fold = np.asarray([fold_of(r["group"]) for r in seen] + [handwritten_fold(r) for r in handwritten])
    row_label = np.asarray([r["label"] for r in seen])
    hw_label = np.asarray([r["label"] for r in handwritten])
    scored = [r["text"] for r in seen] + [r["text"] for r in handwritten]

    # Every dataset and hand-written row is scored by the whole scanner with a model that
    # never saw its fold; the threshold is the one with the most true positives on the dataset
    # within both false-positive budgets.
    best: tuple[float, float, float, float] | None = None  # (tpr, c, flag, fpr)
    for c in CS:
        scores = np.zeros(len(scored))
        for k in range(FOLDS):
            keep = window_fold != k
            scanner = InjectionScanner(model=fit(features[keep], y[keep], w[keep], c, digest))
            held = np.flatnonzero(row_fold == k)
            scores[held] = [v.score for v in scanner.scan_many([scored[i] for i in held])]
        ours, theirs = scores[: len(seen)], scores[len(seen) :]
        flag, tpr, fpr = best_threshold(ours, row_label, theirs[hw_label == 0])
        hw_tpr, hw_fpr = (float((theirs[hw_label == label] >= flag).mean()) for label in (1, 0))
        print(
            f"C={c}: out-of-fold TPR {tpr:.3f} at FPR {fpr:.3f} with flag threshold {flag} "
            f"(hand-written rows: TPR {hw_tpr:.3f}, FPR {hw_fpr:.3f})"
        )
        if best is None or tpr > best[0]:
            best = (tpr, c, flag, fpr)
    assert best is not None
    _, c, flag, _ = best
    model = fit(features, y, w, c, digest)
    print(f"chose C={c}, flag threshold {flag} (securerag.scanning.scanner.DEFAULT_FLAG should say so)")
    model.save(args.out)
    print(f"wrote {args.out} (trained on sha256:{digest[:16]}…)")


if __name__ == "__main__":
    main()
