"""The example chatbot backend (examples/chatbot) against the real database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from examples.chatbot.app import create_app
from securerag import SecureRetriever
from securerag.db import tenant_transaction
from securerag.retrieval import RetrievalResult
from securerag.runtime import Runtime

POLICY = """
g, alice, role:staff, {T}
g, bob, role:staff, {T}
p, role:staff, {T}, collection:handbook/*, read
p, role:staff, {T}, clearance:internal, read
"""

PROMPTS: list[str] = []


def recording_model(prompt: str, result: RetrievalResult) -> str:
    """Stands in for the model and keeps the prompts it was given."""
    PROMPTS.append(prompt)
    return f"answer {len(PROMPTS)}"


Chat = tuple[TestClient, dict[str, dict[str, str]]]


@pytest.fixture
def tenant(make_tenant: Callable[..., Any], ingest: Callable[..., Any]) -> Any:
    tenant = make_tenant(policy=POLICY)
    ingest(
        tenant, "handbook/travel", "Hotels are reimbursed up to 200 USD a night. Trains too.", title="Travel"
    )
    return tenant


def _client(runtime: Runtime, conn: psycopg.Connection[Any], tenant: Any, **options: Any) -> Iterator[Chat]:
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        keys = {u: runtime.api_keys.create(tx, tenant, u) for u in ("alice", "bob")}
    with (
        SecureRetriever(runtime=runtime, pool_size=2) as retriever,
        TestClient(create_app(retriever, **options), raise_server_exceptions=False) as client,
    ):
        yield client, {u: {"Authorization": f"Bearer {k}"} for u, k in keys.items()}


@pytest.fixture
def chat(runtime: Runtime, conn: psycopg.Connection[Any], tenant: Any) -> Iterator[Chat]:
    yield from _client(runtime, conn, tenant, answer=recording_model)


def _say(chat: Chat, who: str, message: str, session: str = "s1") -> Any:
    client, auth = chat
    return client.post("/chat", json={"session_id": session, "message": message}, headers=auth[who])


def test_a_conversation_remembers_its_turns_for_its_user_only(chat: Chat) -> None:
    """Two turns: the second prompt holds the first exchange as fenced memory; another user with
    the same session id starts empty; deleting the session forgets it."""
    client, auth = chat
    first = _say(chat, "alice", "hotel limit?")
    assert first.status_code == 200, first.text
    assert first.json()["citations"][0]["title"] == "Travel"
    assert _say(chat, "alice", "and trains?").status_code == 200
    assert "hotel limit?" in PROMPTS[-1]  # the first turn, as memory
    assert "200 USD" in PROMPTS[-1]
    history = client.get("/chat/s1", headers=auth["alice"]).json()
    assert [t["role"] for t in history] == ["user", "assistant", "user", "assistant"]
    assert client.get("/chat/s1", headers=auth["bob"]).json() == []
    _say(chat, "bob", "hi")
    assert "hotel limit?" not in PROMPTS[-1]
    assert client.delete("/chat/s1", headers=auth["alice"]).status_code == 204
    assert client.get("/chat/s1", headers=auth["alice"]).json() == []


def test_the_default_answer_quotes_and_cites_the_best_source(
    runtime: Runtime, conn: psycopg.Connection[Any], tenant: Any
) -> None:
    """Without a model, the example answers with the top source's first sentence, cited."""
    for chat in _client(runtime, conn, tenant):
        reply = _say(chat, "alice", "hotel limit?").json()
        assert reply["answer"] == "Hotels are reimbursed up to 200 USD a night. [1: Travel]"


def test_bad_requests_are_4xx(chat: Chat) -> None:
    """No key, a wrong key, or a malformed body: a 4xx, never a 500."""
    client, _ = chat
    body = {"session_id": "s1", "message": "hi"}
    assert client.post("/chat", json=body).status_code == 401
    assert client.post("/chat", json=body, headers={"Authorization": "Bearer srk_x_y"}).status_code == 401
    assert _say(chat, "alice", "hi", session="no spaces").status_code == 422
    assert _say(chat, "alice", "").status_code == 422
