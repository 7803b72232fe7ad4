"""Counting context tokens in the tokens of the model that will read them."""

from __future__ import annotations

import os
from pathlib import Path

from securerag.errors import ConfigError
from securerag.retrieval.context import TokenCounter


def load_token_counter(name: str) -> TokenCounter:
    """A counter for a Hugging Face tokenizer (a folder, or a name already in the local cache).

    Loaded offline: a tokenizer that is not on this machine is a configuration error,
    never a download.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from tokenizers import Tokenizer

    try:
        if Path(name).is_dir():
            tokenizer = Tokenizer.from_file(str(Path(name) / "tokenizer.json"))
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True).backend_tokenizer
    except Exception as exc:  # missing files, not a fast tokenizer, not cached
        raise ConfigError(
            f"cannot load tokenizer {name!r} offline ({type(exc).__name__}); "
            "set SECURERAG_CONTEXT_TOKENIZER to a folder holding tokenizer.json"
        ) from None
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count
