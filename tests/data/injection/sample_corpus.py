"""Sample real documentation paragraphs as extra benign training text for the scanner.

    python bench/corpus.py            # once: builds bench/.cache/corpus-v1.npz from this machine's docs
    python tests/data/injection/sample_corpus.py [--n 5000]

The source is the benchmark corpus (`bench/corpus.py`): man pages, info
manuals, /usr/share/doc, Perl POD, and the docstrings and text files of the
Python packages installed on the build machine. Sources about language models
(transformers, sentence-transformers, openai, langchain, garak, ...) are left
out: they quote system prompts, and a clean label matters more than their
vocabulary. The selection is by a hash of the text, so it is stable.

Writes `benign_corpus.jsonl` (`{"id", "text", "source", "split"}`): `--n`
paragraphs with split `train`, used by `scripts/train_scanner.py` as extra
negatives, and `--heldout` further paragraphs with split `heldout`, never
trained or tuned on, on which `scripts/evaluate_scanner.py` reports the
false-positive rate on ordinary documentation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EXCLUDE = re.compile(r"transformers|openai|langchain|llama|garak|anthropic|\bllm|prompt|chatbot", re.I)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / ".cache" / "corpus-v1.npz")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--heldout", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "benign_corpus.jsonl")
    args = parser.parse_args()
    with np.load(args.corpus, allow_pickle=False) as data:
        texts, sources = data["texts"], data["sources"]
    pools: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for text, source in zip(texts.tolist(), sources.tolist(), strict=True):
        if EXCLUDE.search(source):
            continue
        key = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        # Split by source document, so no page has paragraphs on both sides.
        split = (
            "heldout"
            if int(hashlib.blake2b(source.encode(), digest_size=8).hexdigest(), 16) % 5 == 0
            else "train"
        )
        pools[source.split(":", 1)[0], split].append((key, text, source))
    kinds = sorted({kind for kind, _ in pools})
    quota = {"train": args.n // len(kinds), "heldout": args.heldout // len(kinds)}
    rows = []
    for (_kind, split), pool in sorted(pools.items()):
        for key, text, source in sorted(pool)[: quota[split]]:
            rows.append({"id": f"corpus:{key}", "text": text, "source": source, "split": split})
    rows.sort(key=lambda r: r["id"])
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"wrote {len(rows)} paragraphs to {args.out}")


if __name__ == "__main__":
    main()
