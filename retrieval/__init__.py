"""Retrieval: the authorized vector query, decryption, scanning and context assembly."""

from securerag.retrieval.context import ChunkHit, assemble_context
from securerag.retrieval.retriever import RetrievalResult, Retriever, mask_pii
from securerag.retrieval.search import SearchResult, SearchTuning, VectorSearch

__all__ = [
    "ChunkHit",
    "RetrievalResult",
    "Retriever",
    "SearchResult",
    "SearchTuning",
    "VectorSearch",
    "assemble_context",
    "mask_pii",
]
