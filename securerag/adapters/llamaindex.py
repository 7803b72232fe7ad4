"""A LlamaIndex retriever over securerag (extra: `securerag[llamaindex]`).

    from securerag import Principal, SecureRetriever
    from securerag.adapters.llamaindex import SecureLlamaIndexRetriever

    retriever = SecureLlamaIndexRetriever(SecureRetriever(), Principal("acme", "alice"), k=5)
    nodes = retriever.retrieve("hotel limit")

Each `NodeWithScore` is one chunk the principal may read, scored by
similarity, with its citation and injection verdict in the node's metadata.
LlamaIndex shows the model the title, collection, level, part and the
verdict's action (so a flagged chunk is visibly flagged); ids, scores and
reasons are kept out of the prompt. Build one retriever per request: it is
bound to one principal.
"""

from __future__ import annotations

from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from securerag.adapters import chunk_metadata
from securerag.library import SecureRetriever
from securerag.models import Principal

_HIDDEN_FROM_MODEL = ["chunk_id", "document_id", "score", "injection_score", "injection_reasons"]


class SecureLlamaIndexRetriever(BaseRetriever):
    """`BaseRetriever` answering with the chunks `principal` may read."""

    def __init__(
        self,
        client: SecureRetriever,
        principal: Principal,
        *,
        k: int = 5,
        session_id: str | None = None,
        max_tokens: int | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self._client = client
        self._principal = principal
        self._k = k
        self._session_id = session_id
        self._max_tokens = max_tokens

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self._client.retrieve(
            self._principal,
            query_bundle.query_str,
            k=self._k,
            session_id=self._session_id,
            max_tokens=self._max_tokens,
        )
        return [
            NodeWithScore(
                node=TextNode(
                    id_=hit.chunk_id,
                    text=hit.text,
                    metadata=chunk_metadata(hit),
                    excluded_llm_metadata_keys=_HIDDEN_FROM_MODEL,
                    excluded_embed_metadata_keys=_HIDDEN_FROM_MODEL,
                ),
                score=hit.score,
            )
            for hit in result.chunks
        ]
