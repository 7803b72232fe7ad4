"""The LangChain adapter: a real `BaseRetriever` and a real chain, on the real database."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from securerag import Principal, SecureRetriever
from securerag.adapters.langchain import SecureLangChainRetriever


def test_documents_are_what_the_principal_may_read(client: SecureRetriever, acme: Any) -> None:
    """`invoke` answers LangChain Documents of readable chunks only, with citations and verdicts;
    the injected chunk is withheld, never handed to the chain."""
    retriever = SecureLangChainRetriever(client=client, principal=Principal(acme.name, "alice"), k=10)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("hotel acquisition instructions")
    assert all(isinstance(d, Document) for d in docs)
    assert [d.metadata["collection"] for d in docs] == ["handbook/travel"]
    assert docs[0].metadata["title"] == "Travel"
    assert docs[0].metadata["injection_action"] == "allow"
    assert docs[0].id == docs[0].metadata["chunk_id"]
    stranger = SecureLangChainRetriever(client=client, principal=Principal(acme.name, "mallory"))
    assert stranger.invoke("hotel") == []


def test_it_composes_in_a_chain_and_runs_async(client: SecureRetriever, acme: Any) -> None:
    """The retriever is a Runnable: it pipes into a chain, and `ainvoke` works."""
    retriever = SecureLangChainRetriever(client=client, principal=Principal(acme.name, "alice"))
    chain = retriever | RunnableLambda(lambda docs: "\n".join(d.page_content for d in docs))
    assert "200 USD" in chain.invoke("hotel")
    docs = asyncio.run(retriever.ainvoke("hotel"))
    assert [d.metadata["collection"] for d in docs] == ["handbook/travel"]


def test_as_context_hands_over_the_fenced_block_with_memory(client: SecureRetriever, acme: Any) -> None:
    """`as_context=True` gives one Document: securerag's spotlighted context, memory included."""
    alice = Principal(acme.name, "alice")
    client.remember(alice, "lc-1", "I travel to Oslo next week.")
    retriever = SecureLangChainRetriever(client=client, principal=alice, session_id="lc-1", as_context=True)
    [doc] = retriever.invoke("hotel")
    assert "<<<DATA " in doc.page_content
    assert "Oslo" in doc.page_content
    assert "200 USD" in doc.page_content
    assert [s["collection"] for s in doc.metadata["sources"]] == ["handbook/travel"]
