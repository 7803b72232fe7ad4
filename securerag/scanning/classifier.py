"""The learned layer: a linear classifier over sentence windows.

A chunk is cut into windows of a few sentences (at most `WINDOW_WORDS`
words), so one injected sentence in a long benign chunk is judged on its own
rather than averaged away. Each window becomes hashed word 1-2-grams and
character 3-5-grams (within words); a logistic regression trained by
`scripts/train_scanner.py` on `tests/data/injection/` scores it; the chunk's
probability is its most suspicious window's.

Hashed n-grams instead of the MiniLM embeddings we already compute: a k=10
retrieval that must rescan its chunks has ~40 windows to score, which MiniLM
does in hundreds of milliseconds on two cores and this model (tokenising,
hashing in numpy, scoring) in about 5 ms, and
character n-grams survive the spelling games that folding misses. The
weights ship as package data (`model.npz`) with the hash of the data they
were trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import chain
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


_TOKENS = re.compile(r"(?u)\b\w+\b|[<>|\[\]{}#:]+")  # words, and the punctuation of chat templates
_CHAR_N = (3, 4, 5)
_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SPACE = 32

Hits = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
"""One (text, feature) pair per occurrence: rows and columns of a count matrix."""


def _mix(hashed: npt.NDArray[np.uint64], salt: int) -> npt.NDArray[np.int64]:
    """Feature indices for 64-bit hashes (a multiplicative mix, top bits kept)."""
    with np.errstate(over="ignore"):
        mixed = (hashed ^ np.uint64(salt)) * _MIX
    return ((mixed >> np.uint64(40)) % np.uint64(N_FEATURES)).astype(np.int64)


def word_hits(texts: list[str]) -> Hits:
    """Word 1- and 2-grams of each text (lower case; words and runs of chat-template
    punctuation), hashed.

    Every token of every text is hashed in one numpy pass: a token's polynomial hash
    is the sum of its code points times powers of a prime, summed per token with
    `np.add.reduceat`; a 2-gram hashes the pair of its tokens' hashes.
    """
    token_lists = [_TOKENS.findall(text.lower()) for text in texts]
    tokens = list(chain.from_iterable(token_lists))
    if not tokens:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), [len(t) for t in token_lists])
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    ends = np.cumsum(lengths)
    codes = np.frombuffer("".join(tokens).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    with np.errstate(over="ignore"):
        powers = np.ones(int(lengths.max()), dtype=np.uint64)
        powers[1:] = np.cumprod(np.full(len(powers) - 1, _PRIME, dtype=np.uint64))
        # Position p of a token ending at e weighs PRIME ** (e - 1 - p).
        weight = powers[np.repeat(ends, lengths) - 1 - np.arange(len(codes))]
        unigrams = np.add.reduceat(codes * weight, ends - lengths)
        bigrams = unigrams[:-1] * _MIX + unigrams[1:]
    same_text = owner[:-1] == owner[1:]
    rows = np.concatenate([owner, owner[:-1][same_text]])
    cols = np.concatenate([_mix(unigrams, 1), _mix(bigrams[same_text], 2)])
    return rows, cols


def char_hits(texts: list[str]) -> Hits:
    """Character 3-5-grams inside each word (a word padded with one space each side,
    lower case), hashed.

    All texts are hashed in one numpy pass over their code points: each word is padded
    with a space and words are joined by those spaces, so an n-gram that holds two
    spaces in a row crosses a word (or text) boundary and is dropped.
    """
    padded = [" " + "  ".join(text.lower().split()) + " " for text in texts]
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), [len(p) for p in padded])
    doubles = np.concatenate([[0], np.cumsum((codes[:-1] == _SPACE) & (codes[1:] == _SPACE))])
    rows: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)]
    cols: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)]
    hashed = codes.copy()
    with np.errstate(over="ignore"):
        for n in range(2, max(_CHAR_N) + 1):
            hashed = hashed[:-1] * _PRIME + codes[n - 1 :]  # hashed[i]: codes[i : i + n]
            if n not in _CHAR_N or not len(hashed):
                continue
            count = len(hashed)
            inside = doubles[n - 1 : n - 1 + count] == doubles[:count]
            cols.append(_mix(hashed[inside], n + 10))
            rows.append(owner[:count][inside])
    return np.concatenate(rows), np.concatenate(cols)


def _matrix(hits: Hits, n_texts: int) -> Any:
    from scipy.sparse import csr_matrix
    from sklearn.preprocessing import normalize

    rows, cols = hits
    return normalize(csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_texts, N_FEATURES)))


def featurize(texts: list[str]) -> Any:
    """The sparse feature matrix for `texts`: l2-normalised word and character counts side
    by side (what the model is trained on; `WindowClassifier` computes the same dot product
    without building it)."""
    from scipy.sparse import hstack

    return hstack([_matrix(word_hits(texts), len(texts)), _matrix(char_hits(texts), len(texts))]).tocsr()


def _normalised_dot(hits: Hits, weights: npt.NDArray[np.float32], n_texts: int) -> npt.NDArray[np.float64]:
    """For each text, its l2-normalised count vector (from `hits`) dotted with `weights`."""
    rows, cols = hits
    pairs, counts = np.unique(rows * N_FEATURES + cols, return_counts=True)
    row, col = pairs // N_FEATURES, pairs % N_FEATURES
    counts = counts.astype(np.float64)
    norm = np.sqrt(np.bincount(row, counts * counts, minlength=n_texts))
    dot = np.bincount(row, counts * weights[col], minlength=n_texts)
    return np.divide(dot, norm, out=np.zeros(n_texts), where=norm > 0)


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
        n = len(texts)
        logits = (
            _normalised_dot(word_hits(texts), self.coef[:N_FEATURES], n)
            + _normalised_dot(char_hits(texts), self.coef[N_FEATURES:], n)
            + self.intercept
        )
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def score_many(self, readings: list[list[str]]) -> list[float]:
        """For each group of texts (a chunk's readings), the highest probability over all
        windows of all its texts; one pass of the model over every window of every group."""
        cut: list[str] = []
        owner: list[int] = []
        for i, texts in enumerate(readings):
            # Readings of one chunk share most windows (a folded view differs in a word or
            # two): each distinct window is scored once.
            pieces = list(dict.fromkeys(chain.from_iterable(map(windows, texts))))
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
