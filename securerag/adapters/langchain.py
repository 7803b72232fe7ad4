"""A LangChain retriever over securerag (extra: `securerag[langchain]`).

    from securerag import Principal, SecureRetriever
    from securerag.adapters.langchain import SecureLangChainRetriever

    retriever = SecureLangChainRetriever(
        client=SecureRetriever(), principal=Principal("acme", "alice"), k=5
    )
    docs = retriever.invoke("hotel limit")

Each `Document` is one chunk the principal may read, with its citation and
injection verdict in `metadata`. Chunk text is data: put it in the prompt
fenced, or set `as_context=True` to get one `Document` holding securerag's
assembled context (spotlighted fences, citations, session memory, token
budget) instead. Build one retriever per request: it is bound to one
principal (the `SecureRetriever` underneath is shared).
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from securerag.adapters import chunk_metadata
from securerag.library import SecureRetriever
from securerag.models import Principal


class SecureLangChainRetriever(BaseRetriever):
    """`BaseRetriever` answering with the chunks `principal` may read."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: SecureRetriever
    principal: Principal
    k: int = 5
    session_id: str | None = None
    max_tokens: int | None = None
    as_context: bool = False

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        result = self.client.retrieve(
            self.principal, query, k=self.k, session_id=self.session_id, max_tokens=self.max_tokens
        )
        if self.as_context:
            metadata: dict[str, Any] = {
                "sources": [chunk_metadata(hit) for hit in result.chunks],
                "withheld": result.withheld,
                "tokens": result.context_tokens,
            }
            return [Document(page_content=result.context, metadata=metadata)]
        return [
            Document(page_content=hit.text, id=hit.chunk_id, metadata=chunk_metadata(hit))
            for hit in result.chunks
        ]
