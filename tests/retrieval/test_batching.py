"""Concurrent query embeddings are coalesced into batches, each caller getting its own vector."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from securerag.retrieval.batching import QueryBatcher
from tests.fakes import HashEmbedder


def test_concurrent_callers_share_batches_and_get_their_own_vectors() -> None:
    """16 threads at once: fewer encodes than callers, and every vector is the one for its text."""
    embedder = HashEmbedder()
    sizes: list[int] = []

    def slow_embed(texts: Sequence[str]) -> np.ndarray:
        sizes.append(len(texts))
        time.sleep(0.05)  # a model call: others arrive meanwhile
        return embedder.embed(texts)

    batcher = QueryBatcher(slow_embed, max_batch=8)
    texts = [f"question number {n}" for n in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        vectors = list(pool.map(batcher.embed_one, texts))
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_array_equal(vector, embedder.embed([text])[0])
    assert sum(sizes) == 16
    assert max(sizes) <= 8
    assert batcher.batches == len(sizes) < 16


def test_a_lone_caller_is_not_delayed_and_errors_reach_every_waiter() -> None:
    """With nothing running, a call encodes at once; a failing encode fails each caller of its batch."""
    calls: list[int] = []
    gate = threading.Event()

    def failing(texts: Sequence[str]) -> np.ndarray:
        calls.append(len(texts))
        gate.wait(1)
        raise RuntimeError("model failed")

    batcher = QueryBatcher(failing)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(batcher.embed_one, f"q{n}") for n in range(4)]
        time.sleep(0.1)
        gate.set()
        for future in futures:
            with pytest.raises(RuntimeError, match="model failed"):
                future.result()
    assert calls[0] == 1  # the first caller did not wait for company
    assert sum(calls) == 4


def test_an_embedder_that_miscounts_fails_its_callers_instead_of_hanging_them() -> None:
    """One vector too few: every caller of that batch gets an error, and the next call works."""
    embedder = HashEmbedder()
    broken = True

    def short(texts: Sequence[str]) -> np.ndarray:
        time.sleep(0.05)
        vectors = embedder.embed(texts)
        return vectors[:-1] if broken else vectors

    batcher = QueryBatcher(short)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(batcher.embed_one, f"q{n}") for n in range(4)]
        for future in futures:
            with pytest.raises(RuntimeError, match="vectors for"):
                future.result(timeout=10)
    broken = False
    np.testing.assert_array_equal(batcher.embed_one("fine"), embedder.embed(["fine"])[0])
