"""Rendering retrieval results for the terminal and as JSON."""

from __future__ import annotations

from rich.table import Table

from securerag.retrieval import RetrievalResult


def retrieval_table(result: RetrievalResult) -> Table:
    """The chunks as a table, with the withheld count in the caption."""
    table = Table(
        caption=f"{len(result.chunks)} chunks, {result.withheld} withheld for prompt injection",
        caption_justify="left",
    )
    for column in ("#", "score", "title", "collection", "level", "injection", "text"):
        table.add_column(column, overflow="fold")
    for number, hit in enumerate(result.chunks, start=1):
        snippet = " ".join(hit.text.split())
        table.add_row(
            str(number),
            f"{hit.score:.3f}",
            hit.title,
            hit.collection,
            hit.classification,
            hit.injection.action.label,
            snippet[:120] + ("…" if len(snippet) > 120 else ""),
        )
    return table
