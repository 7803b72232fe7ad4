"""The learned layer's features: what it hashes, and that the fast scoring path computes
exactly what the model was trained on."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from securerag.scanning import classifier as clf

DATA = Path(__file__).resolve().parents[1] / "data" / "injection" / "dataset.jsonl"
TEXTS = [json.loads(line)["text"] for line in DATA.read_text().splitlines()][::7]


def _counts(hits: clf.Hits, row: int = 0) -> Counter[int]:
    rows, cols = hits
    return Counter(int(c) for c in cols[rows == row])


def _polynomial(token: str) -> int:
    value = 0
    for ch in token:
        value = (value * 0x100000001B3 + ord(ch)) % 2**64
    return value


def test_word_features_hash_each_token_and_each_pair() -> None:
    """`A b` has three word features (`a`, `b`, `a b`); tokens hash by their own letters."""
    rows, cols = clf.word_hits(["A b", "", "b a b"])
    assert list(rows) == [0, 0, 2, 2, 2, 0, 2, 2]
    a, b, ab, ba = cols[0], cols[1], cols[5], cols[6]
    assert list(cols) == [a, b, b, a, b, ab, ba, ab]
    tokens = ["hello", "<|", "système"]
    expected = clf._mix(np.array([_polynomial(t) for t in tokens], dtype=np.uint64), 1)
    assert list(clf.word_hits([" ".join(tokens)])[1][:3]) == list(expected)


def test_fast_scores_equal_the_trained_features() -> None:
    """`probabilities` (no sparse matrix) equals the logistic model on `featurize`."""
    model = clf.bundled()
    fast = model.probabilities(TEXTS)
    slow = 1 / (1 + np.exp(-(clf.featurize(TEXTS) @ model.coef + model.intercept)))
    assert np.allclose(fast, slow, atol=1e-9)
    assert 0.05 < float(np.mean(fast > 0.5)) < 0.95  # real scores, not a constant


_WORD = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(_WORD, min_size=1, max_size=6))
def test_character_ngrams_stay_inside_words(words: list[str]) -> None:
    """A text's character n-grams are those of its words, one by one: none crosses a space."""
    whole = _counts(clf.char_hits([" ".join(words)]))
    parts: Counter[int] = Counter()
    for word in " ".join(words).split():
        parts += _counts(clf.char_hits([word]))
    assert whole == parts


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=5))
def test_features_do_not_depend_on_the_batch(texts: list[str]) -> None:
    """Hashing texts together gives each the features it has alone (no n-gram spans two)."""
    for hits in (clf.char_hits, clf.word_hits):
        together = hits(texts)
        for i, text in enumerate(texts):
            assert _counts(together, i) == _counts(hits([text]))


def test_known_character_ngrams() -> None:
    """`ab` padded is ` ab `: 3-grams ` ab`, `ab `, and the 4-gram ` ab `."""
    assert sum(_counts(clf.char_hits(["AB"])).values()) == 3
    assert sum(_counts(clf.char_hits([""])).values()) == 0


def _synthetic() -> Any:
    spec = importlib.util.spec_from_file_location("synthetic", DATA.with_name("synthetic.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_training_attacks_are_deterministic_and_share_nothing_with_evaluation() -> None:
    """The composed attacks the model trains on repeat for a seed, cover every category and
    language, and never share a run of eight words with a dev or held-out row."""
    synthetic = _synthetic()
    reserved = synthetic.reserved_texts()
    rows = synthetic.generate(600, reserved=reserved)
    assert rows == synthetic.generate(600, reserved=reserved)
    assert all(r["label"] == 1 for r in rows)
    categories = {str(r["category"]).split(":")[0] for r in rows}
    assert categories == {*synthetic.ENGLISH, "multilingual"}
    languages = {str(r["category"]).split(":")[1] for r in rows if ":" in str(r["category"])}
    assert languages == set(synthetic.LANG)
    shingles = set().union(*(synthetic._shingles(t) for t in reserved))
    assert not any(synthetic._shingles(str(r["text"])) & shingles for r in rows)
    # and the filter drops what it should: a sentence lifted from a reserved row
    lifted = " ".join(next(t for t in reserved if len(t.split()) >= 20).split()[5:15])
    assert synthetic.decontaminate([{"text": f"Assistant: {lifted}"}], reserved) == ([], 1)


def test_handwritten_training_rows_are_well_formed_and_apart_from_the_dataset() -> None:
    """The hand-written training rows are labelled, distinct, in every dataset category, and
    (after the same eight-word filter the training script applies) never share a run of
    eight words with a dev or held-out row; the filter drops only a few."""
    synthetic = _synthetic()
    rows = [json.loads(line) for line in DATA.with_name("handwritten_train.jsonl").read_text().splitlines()]
    fields = {"text", "label", "category", "lang", "batch"}
    assert all(set(r) >= fields and r["label"] in (0, 1) for r in rows)
    assert len({r["text"] for r in rows}) == len(rows)
    attack_categories = {r["category"] for r in rows if r["label"] == 1}
    assert attack_categories >= {
        *("override", "exfiltration", "tool_hijack"),
        *("prompt_leak", "secrecy", "multilingual"),
    }
    kept, dropped = synthetic.decontaminate(rows, synthetic.reserved_texts())
    assert dropped == 0  # the file was filtered against the whole dataset when it was built
    assert len(kept) == len(rows)
