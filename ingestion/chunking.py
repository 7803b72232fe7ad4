"""Splitting text into chunks that fit the embedding model, with overlap.

Chunks are exact slices of the input (`text[start:end]`), so offsets can cite
the source. Paragraphs are kept whole where they fit and a Markdown heading
stays with the paragraph after it; a paragraph that is too long is split at
sentences, and a sentence that is too long at words (or characters, for runs
with no spaces such as base64). No chunk is ever longer than `max_tokens`, so
the model never silently truncates one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

TokenCounter = Callable[[str], int]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n")
_WORD_BREAK = re.compile(r"\s+")
_HEADING = re.compile(r"#{1,6}\s")
# No token is longer than this many characters, which bounds the bisection window.
_MAX_CHARS_PER_TOKEN = 32


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: its text and where it sits in the document."""

    ordinal: int
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int


def _spans(text: str, pattern: re.Pattern[str], start: int, end: int) -> Iterator[_Span]:
    """Non-blank pieces of text[start:end] between matches of `pattern`."""
    pos = start
    for match in pattern.finditer(text, start, end):
        if text[pos : match.start()].strip():
            yield _trim(text, pos, match.start())
        pos = match.end()
    if text[pos:end].strip():
        yield _trim(text, pos, end)


def _trim(text: str, start: int, end: int) -> _Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return _Span(start, end)


class _Splitter:
    def __init__(self, text: str, max_tokens: int, count: TokenCounter) -> None:
        self.text = text
        self.max = max_tokens
        self.count = count

    def tokens(self, span: _Span) -> int:
        return self.count(self.text[span.start : span.end])

    def units(self) -> list[_Span]:
        """Paragraph-sized pieces, each within the limit; headings joined to what follows."""
        paragraphs = list(_spans(self.text, _PARAGRAPH_BREAK, 0, len(self.text)))
        merged: list[_Span] = []
        carry: _Span | None = None
        for para in paragraphs:
            if carry is not None:
                joined = _Span(carry.start, para.end)
                if self.tokens(joined) <= self.max:
                    para, carry = joined, None
                else:
                    merged.append(carry)
                    carry = None
            if _HEADING.match(self.text, para.start) and self.text.count("\n", para.start, para.end) == 0:
                carry = para
                continue
            merged.append(para)
        if carry is not None:
            merged.append(carry)
        out: list[_Span] = []
        for span in merged:
            out.extend(self.fit(span, (_SENTENCE_END, _WORD_BREAK)))
        return out

    def fit(self, span: _Span, patterns: tuple[re.Pattern[str], ...]) -> Iterator[_Span]:
        """`span` split finer and finer until every piece fits."""
        if self.tokens(span) <= self.max:
            yield span
            return
        if not patterns:
            yield from self.by_characters(span)
            return
        pieces = list(_spans(self.text, patterns[0], span.start, span.end))
        if len(pieces) <= 1:
            yield from self.fit(span, patterns[1:])
            return
        # Re-pack the finer pieces greedily so chunks stay as large as allowed.
        yield from self.pack(pieces, patterns[1:])

    def pack(self, pieces: list[_Span], finer: tuple[re.Pattern[str], ...]) -> Iterator[_Span]:
        current: _Span | None = None
        for piece in pieces:
            for part in self.fit(piece, finer):
                if current is None:
                    current = part
                    continue
                joined = _Span(current.start, part.end)
                if self.tokens(joined) <= self.max:
                    current = joined
                else:
                    yield current
                    current = part
        if current is not None:
            yield current

    def by_characters(self, span: _Span) -> Iterator[_Span]:
        """Longest prefixes that fit, found by bisection (for runs without spaces)."""
        start = span.start
        while start < span.end:
            lo, hi = start + 1, min(span.end, start + self.max * _MAX_CHARS_PER_TOKEN)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.count(self.text[start:mid]) <= self.max:
                    lo = mid
                else:
                    hi = mid - 1
            yield _Span(start, lo)
            start = lo


def split_text(text: str, *, max_tokens: int, overlap_tokens: int, count_tokens: TokenCounter) -> list[Chunk]:
    """Split `text` into chunks of at most `max_tokens`, consecutive chunks
    sharing up to `overlap_tokens` of whole units."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    if not 0 <= overlap_tokens < max_tokens // 2:
        raise ValueError("overlap_tokens must be below half of max_tokens")
    splitter = _Splitter(text, max_tokens, count_tokens)
    units = splitter.units()
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j = i + 1
        while j < len(units) and splitter.tokens(_Span(units[i].start, units[j].end)) <= max_tokens:
            j += 1
        start, end = units[i].start, units[j - 1].end
        chunks.append(Chunk(ordinal=len(chunks), text=text[start:end], start=start, end=end))
        if j >= len(units):
            break
        # Step back over trailing units that fit in the overlap, but always advance.
        back = j
        while back - 1 > i and splitter.tokens(_Span(units[back - 1].start, end)) <= overlap_tokens:
            back -= 1
        i = back
    return chunks
