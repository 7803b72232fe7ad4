"""Coalescing concurrent query embeddings into batches.

The embedding model runs one encode at a time (its threads would fight
otherwise), so under concurrent requests each query waits for the others one
by one. Here, a request that finds the model busy queues its query; when the
running encode finishes, one waiting request encodes everything queued in one
batch, which costs little more than a single query. A lone request is never
delayed: with nothing running, it encodes at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass(slots=True)
class _Slot:
    text: str
    vector: Vectors | None = None
    error: BaseException | None = None
    done: bool = False


class QueryBatcher:
    """`embed_one(text)` for many threads, run as batched calls of `embed(texts)`."""

    def __init__(self, embed: Callable[[Sequence[str]], Vectors], *, max_batch: int = 32) -> None:
        self._embed = embed
        self._max = max_batch
        self._cv = threading.Condition()
        self._queue: list[_Slot] = []
        self._busy = False
        self.batches = 0
        """How many encodes ran (for tests and metrics)."""

    def embed_one(self, text: str) -> Vectors:
        """The embedding of `text` (one row)."""
        slot = _Slot(text)
        with self._cv:
            self._queue.append(slot)
            while not slot.done:
                if self._busy or not self._queue:
                    self._cv.wait()
                    continue
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                self._busy = True
                self._cv.release()
                try:
                    self._run(batch)
                finally:
                    self._cv.acquire()
                    for waiting in batch:  # whatever happened, nobody of this batch waits forever
                        if not waiting.done:
                            waiting.error = waiting.error or RuntimeError("query embedding failed")
                            waiting.done = True
                    self._busy = False
                    self.batches += 1
                    self._cv.notify_all()
        if slot.error is not None:
            raise slot.error
        assert slot.vector is not None
        return slot.vector

    def _run(self, batch: list[_Slot]) -> None:
        try:
            vectors = self._embed([s.text for s in batch])
            if len(vectors) != len(batch):
                raise RuntimeError(f"the embedder returned {len(vectors)} vectors for {len(batch)} texts")
        except BaseException as exc:  # every waiter of this batch gets the same error
            for s in batch:
                s.error, s.done = exc, True
            return
        for s, vector in zip(batch, vectors, strict=True):
            s.vector, s.done = vector, True
