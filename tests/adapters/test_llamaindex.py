"""The LlamaIndex adapter: a real `BaseRetriever`, on the real database."""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore

from securerag import Principal, SecureRetriever
from securerag.adapters.llamaindex import SecureLlamaIndexRetriever


def test_nodes_are_what_the_principal_may_read(client: SecureRetriever, acme: Any) -> None:
    """`retrieve` answers scored nodes of readable chunks only; the injected chunk is withheld."""
    retriever = SecureLlamaIndexRetriever(client, Principal(acme.name, "alice"), k=10)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve("hotel acquisition instructions")
    assert all(isinstance(n, NodeWithScore) for n in nodes)
    assert [n.node.metadata["collection"] for n in nodes] == ["handbook/travel"]
    assert nodes[0].score is not None
    assert "200 USD" in nodes[0].node.get_content()
    shown = nodes[0].node.get_content(metadata_mode=MetadataMode.LLM)
    assert "Travel" in shown  # the citation reaches the model
    assert "chunk_id" not in shown  # identifiers do not
    assert SecureLlamaIndexRetriever(client, Principal(acme.name, "mallory")).retrieve("hotel") == []


def test_async_retrieval(client: SecureRetriever, acme: Any) -> None:
    """`aretrieve` (LlamaIndex's async path) gives the same answer."""
    retriever = SecureLlamaIndexRetriever(client, Principal(acme.name, "alice"))
    nodes = asyncio.run(retriever.aretrieve("hotel"))
    assert [n.node.metadata["collection"] for n in nodes] == ["handbook/travel"]
