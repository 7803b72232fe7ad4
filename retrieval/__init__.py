"""Retrieval: the authorized vector query, decryption, scanning and context assembly."""

from securerag.retrieval.context import AssembledContext, ChunkHit, TokenCounter, assemble_context
from securerag.retrieval.retriever import RetrievalResult, Retriever, mask_pii
from securerag.retrieval.search import SearchResult, SearchTuning, VectorSearch

__all__ = [
    "AssembledContext",
    "ChunkHit",
    "RetrievalResult",
    "Retriever",
    "SearchResult",
    "SearchTuning",
    "TokenCounter",
    "VectorSearch",
    "assemble_context",
    "mask_pii",
]
