"""Chunking by model tokens."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securerag.ingestion import split_text
from tests.fakes import HashEmbedder

COUNT = HashEmbedder().count_tokens


@settings(max_examples=150, deadline=None)
@given(
    text=st.lists(st.sampled_from([*list("ab cd.\n#xyz!?"), "\n\n", "# ", "word "]), max_size=800).map(
        "".join
    ),
    max_tokens=st.integers(8, 80),
)
def test_chunks_fit_cover_and_slice_exactly(text: str, max_tokens: int) -> None:
    """No chunk exceeds the limit, every non-space character is covered, offsets slice the text."""
    chunks = split_text(text, max_tokens=max_tokens, overlap_tokens=max_tokens // 4, count_tokens=COUNT)
    covered = [False] * len(text)
    for i, chunk in enumerate(chunks):
        assert chunk.ordinal == i
        assert text[chunk.start : chunk.end] == chunk.text
        assert COUNT(chunk.text) <= max_tokens
        for pos in range(chunk.start, chunk.end):
            covered[pos] = True
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)


def test_paragraphs_stay_whole_and_heading_joins_its_paragraph() -> None:
    """Paragraphs that fit are not cut, and a heading travels with the paragraph after it."""
    text = "# Hotels\n\nThe limit is 200 USD per night.\n\n# Meals\n\nMeals up to 75 USD per day."
    chunks = split_text(text, max_tokens=12, overlap_tokens=0, count_tokens=COUNT)
    assert [c.text for c in chunks] == [
        "# Hotels\n\nThe limit is 200 USD per night.",
        "# Meals\n\nMeals up to 75 USD per day.",
    ]


def test_run_without_spaces_is_split_by_characters() -> None:
    """A long base64-like run is split so that no chunk exceeds the limit."""
    blob = "QUJD" * 400
    chunks = split_text(blob, max_tokens=20, overlap_tokens=0, count_tokens=lambda s: len(s) // 4 + 1)
    assert "".join(c.text for c in chunks) == blob
    assert all(len(c.text) // 4 + 1 <= 20 for c in chunks)


def test_overlap_repeats_trailing_units() -> None:
    """Consecutive chunks share trailing paragraphs up to the overlap budget."""
    text = "\n\n".join(f"para {i} has five words" for i in range(10))
    chunks = split_text(text, max_tokens=15, overlap_tokens=5, count_tokens=COUNT)
    assert len(chunks) > 2
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # they overlap


def test_real_model_tokens_never_truncated(real_runtime) -> None:  # type: ignore[no-untyped-def]
    """With the real tokenizer, every chunk fits the model's window."""
    embedder = real_runtime.embedder
    text = ("Quarterly revenue grew in every region. " * 120) + ("x" * 3000)
    chunks = split_text(
        text, max_tokens=embedder.max_tokens, overlap_tokens=32, count_tokens=embedder.count_tokens
    )
    assert len(chunks) > 2
    assert max(embedder.count_tokens(c.text) for c in chunks) <= embedder.max_tokens


@pytest.mark.parametrize(
    ("max_tokens", "overlap"), [(4, 0), (20, 10), (20, -1)], ids=["tiny", "overlap-half", "negative"]
)
def test_bad_parameters(max_tokens: int, overlap: int) -> None:
    """Nonsensical limits are refused."""
    with pytest.raises(ValueError, match="tokens"):
        split_text("x", max_tokens=max_tokens, overlap_tokens=overlap, count_tokens=COUNT)
