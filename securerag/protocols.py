"""Seams of the core. Implementations live where their technology does and do
not inherit from these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from securerag.models import Action, ScanResult


class Embedder(Protocol):
    """Turns text into unit-length vectors."""

    @property
    def name(self) -> str:
        """A stable identifier of the model, recorded with what it embeds."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    @property
    def max_tokens(self) -> int:
        """Longest input, in model tokens, that is embedded without truncation."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of model tokens `text` takes, special tokens excluded."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed `texts` as an array of shape (len(texts), dimension), rows L2-normalised."""
        ...


class Scanner(Protocol):
    """Scores text for prompt injection."""

    @property
    def version(self) -> int:
        """Changes whenever verdicts may change; stored with each verdict."""
        ...

    def scan(self, text: str, *, tenant: str | None = None, classification: str | None = None) -> ScanResult:
        """Return the verdict for one piece of text, under the thresholds for that tenant and level."""
        ...

    def scan_many(
        self, texts: Sequence[str], *, tenant: str | None = None, classification: str | None = None
    ) -> list[ScanResult]:
        """`scan` for each of `texts` (one batch: cheaper than one call each)."""
        ...

    def action_for(
        self, score: float, tenant: str | None = None, classification: str | None = None
    ) -> Action:
        """The action a stored score leads to under the current thresholds."""
        ...


class KeyProvider(Protocol):
    """Holds the key-encryption key (master key) and wraps data keys with it."""

    @property
    def key_id(self) -> str:
        """Identifier of the master key, stored next to what it wraps."""
        ...

    def wrap(self, data_key: bytes, *, aad: bytes) -> bytes:
        """Encrypt a data key under the master key, bound to `aad`."""
        ...

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """Decrypt a wrapped data key; raises `DecryptionError` on any mismatch."""
        ...

    def knows(self, key_id: str) -> bool:
        """Whether this provider holds the master key with this id (primary or retired)."""
        ...

    def derive(self, label: str) -> bytes:
        """A 32-byte secret derived from the primary master key, for secrets needed
        before the database can be reached."""
        ...


class Secrets(Protocol):
    """Derives the service's long-lived secrets (see `securerag.crypto.secrets`)."""

    def derive(self, label: str) -> bytes:
        """A 32-byte secret for one named purpose."""
        ...
