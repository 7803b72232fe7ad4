"""Adapters to chatbot frameworks, each an optional extra.

- `securerag.adapters.langchain.SecureLangChainRetriever` (`pip install 'securerag[langchain]'`)
- `securerag.adapters.llamaindex.SecureLlamaIndexRetriever` (`pip install 'securerag[llamaindex]'`)

Both wrap a `SecureRetriever` and a `Principal`: the framework sees ordinary
retrievers, securerag still decides what that principal may read, withholds
injected chunks and marks flagged ones in the metadata.

The frameworks put chunk text into prompts as they see fit, unfenced. Where
that matters, hand the model securerag's assembled context instead
(`as_context=True` on the LangChain retriever, `SecureRetriever.retrieve(...).context`
elsewhere). A retriever is bound to one principal: build one per request
(they are cheap; the `SecureRetriever` underneath is shared).
"""

from __future__ import annotations

from typing import Any

from securerag.retrieval import ChunkHit
from securerag.retrieval.context import clean_title


def chunk_metadata(hit: ChunkHit) -> dict[str, Any]:
    """The citation and verdict of one chunk, as framework metadata."""
    return {
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "title": clean_title(hit.title),  # one bounded line: frameworks show it unfenced
        "collection": hit.collection,
        "classification": hit.classification,
        "part": hit.ordinal + 1,
        "score": hit.score,
        "injection_action": hit.injection.action.label,
        "injection_score": hit.injection.score,
        "injection_reasons": list(hit.injection.reasons),
    }
