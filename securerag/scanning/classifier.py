"""The learned layer: a linear classifier over sentence windows.

A chunk is cut into windows of a few sentences (at most `WINDOW_WORDS`
words), so one injected sentence in a long benign chunk is judged on its own
rather than averaged away. Each window becomes hashed word 1-2-grams and
character 3-5-grams (within words); a logistic regression trained by
`scripts/train_scanner.py` on `tests/data/injection/` scores it; the chunk's
probability is its most suspicious window's.

Hashed n-grams instead of the MiniLM embeddings we already compute: a k=10
retrieval that must rescan its chunks has ~50 windows to score, which MiniLM
does in ~250 ms on two cores and this model in about a millisecond, and
character n-grams survive the spelling games that folding misses. The
weights ship as package data (`model.npz`) with the hash of the data they
were trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

WINDOW_WORDS = 40
N_FEATURES = 2**18
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_WORDS = re.compile(r"\S+")


def windows(text: str, *, max_words: int = WINDOW_WORDS) -> list[str]:
    """Overlapping windows of whole sentences, each at most `max_words` words.

    Consecutive windows share one sentence; a sentence longer than the limit is
    cut into overlapping word runs.
    """
    sentences: list[list[str]] = []
    for part in _SENTENCE_END.split(text):
        words = _WORDS.findall(part)
        step = max_words - max_words // 4
        for start in range(0, max(len(words), 1), step):
            piece = words[start : start + max_words]
            if piece:
                sentences.append(piece)
            if start + max_words >= len(words):
                break
    out: list[str] = []
    i = 0
    while i < len(sentences):
        window = list(sentences[i])
        j = i + 1
        while j < len(sentences) and len(window) + len(sentences[j]) <= max_words:
            window += sentences[j]
            j += 1
        out.append(" ".join(window))
        if j >= len(sentences):
            break
        i = j - 1 if j - 1 > i else j  # overlap by one sentence
    return out


@cache
def _vectorizers() -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import HashingVectorizer

    common = {"n_features": N_FEATURES, "alternate_sign": False, "norm": "l2", "lowercase": True}
    tokens = r"(?u)\b\w+\b|[<>|\[\]{}#:]+"  # words, and the punctuation of chat templates
    words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=tokens, **common)
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), **common)
    return words, chars


def featurize(texts: list[str]) -> Any:
    """The sparse feature matrix for `texts` (word and character parts side by side)."""
    from scipy.sparse import hstack

    words, chars = _vectorizers()
    return hstack([words.transform(texts), chars.transform(texts)]).tocsr()


@dataclass(frozen=True, slots=True)
class WindowClassifier:
    """Logistic regression weights over `featurize` features."""

    coef: npt.NDArray[np.float32]
    intercept: float
    version: int
    trained_on: str

    def probabilities(self, texts: list[str]) -> npt.NDArray[np.float64]:
        """P(injection) for each text."""
        if not texts:
            return np.zeros(0)
        logits = featurize(texts) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def score_many(self, readings: list[list[str]]) -> list[float]:
        """For each group of texts (a chunk's readings), the highest probability over all
        windows of all its texts; one pass of the model over every window of every group."""
        cut: list[str] = []
        owner: list[int] = []
        for i, texts in enumerate(readings):
            for text in texts:
                pieces = windows(text)
                cut += pieces
                owner += [i] * len(pieces)
        best = np.zeros(len(readings))
        if cut:
            np.maximum.at(best, np.asarray(owner), self.probabilities(cut))
        return [float(p) for p in best]

    def save(self, path: Any) -> None:
        np.savez_compressed(
            path,
            coef=self.coef.astype(np.float32),
            intercept=np.float64(self.intercept),
            version=np.int64(self.version),
            trained_on=np.str_(self.trained_on),
        )


def load(path: Any) -> WindowClassifier:
    """Read weights written by `WindowClassifier.save`."""
    with np.load(path, allow_pickle=False) as data:
        return WindowClassifier(
            coef=data["coef"].astype(np.float32),
            intercept=float(data["intercept"]),
            version=int(data["version"]),
            trained_on=str(data["trained_on"]),
        )


@cache
def bundled() -> WindowClassifier:
    """The classifier shipped with securerag."""
    with resources.as_file(resources.files("securerag.scanning") / "model.npz") as path:
        return load(path)
