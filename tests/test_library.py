"""The Python API chatbot backends embed: `SecureRetriever`, on the real database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import psycopg
import pytest

import securerag
from securerag import Principal, SecureRetriever
from securerag.db import tenant_transaction
from securerag.errors import AuthenticationError, InvalidInput, NotFound
from securerag.models import Level
from securerag.retrieval import RetrievalResult
from securerag.runtime import Runtime

POLICY = """
g, alice, role:staff, {T}
p, role:staff, {T}, collection:handbook/*, read
p, role:staff, {T}, clearance:internal, read
p, bob, {T}, collection:*, read
p, bob, {T}, clearance:restricted, read
"""


@pytest.fixture(scope="module")
def client(runtime: Runtime) -> Iterator[SecureRetriever]:
    with SecureRetriever(runtime=runtime, pool_size=4) as retriever:
        yield retriever


@pytest.fixture
def acme(make_tenant: Callable[..., Any], ingest: Callable[..., Any]) -> Any:
    tenant = make_tenant(policy=POLICY)
    ingest(tenant, "handbook/travel", "Hotels are reimbursed up to 200 USD a night.", title="Travel")
    ingest(tenant, "board/minutes", "The board approved the acquisition.", level=Level.RESTRICTED)
    return tenant


def test_the_package_exports_the_library_api() -> None:
    """`from securerag import SecureRetriever, Principal` works, and unknown names fail plainly."""
    assert securerag.SecureRetriever is SecureRetriever
    with pytest.raises(AttributeError):
        _ = securerag.NoSuchThing  # type: ignore[attr-defined]


def test_each_principal_gets_what_its_policy_allows(client: SecureRetriever, acme: Any) -> None:
    """The same query answers differently per principal; results are typed."""
    alice = client.retrieve(Principal(acme.name, "alice"), "hotel board", k=5)
    bob = client.retrieve(Principal(acme.name, "bob"), "hotel board", k=5)
    stranger = client.retrieve(Principal(acme.name, "mallory"), "hotel board", k=5)
    assert isinstance(alice, RetrievalResult)
    assert {c.collection for c in alice.chunks} == {"handbook/travel"}
    assert {c.collection for c in bob.chunks} == {"handbook/travel", "board/minutes"}
    assert stranger.chunks == []
    assert "acquisition" not in alice.context
    assert alice.chunks[0].title == "Travel"


def test_another_tenant_cannot_be_named_into(
    client: SecureRetriever, acme: Any, make_tenant: Callable[..., Any]
) -> None:
    """Bob of another tenant reads nothing of acme's; an unknown tenant is a clear error."""
    other = make_tenant(policy=POLICY)
    assert client.retrieve(Principal(other.name, "bob"), "board acquisition").chunks == []
    with pytest.raises(NotFound):
        client.retrieve(Principal("no-such-tenant-x", "bob"), "board")
    with pytest.raises(InvalidInput):
        Principal(acme.name, "role:admin")  # a role is not a user


def test_session_memory_round_trip_is_isolated(client: SecureRetriever, acme: Any) -> None:
    """Memory written by one user is in that user's context only, and gone after `forget`."""
    alice, bob = Principal(acme.name, "alice"), Principal(acme.name, "bob")
    client.remember(alice, "chat-1", "My trip is to Lisbon.")
    client.remember(alice, "chat-1", "Noted: Lisbon.", role="assistant")
    assert [e.role for e in client.session(alice, "chat-1")] == ["user", "assistant"]
    assert client.session(bob, "chat-1") == []
    result = client.retrieve(alice, "hotel", session_id="chat-1")
    assert [e.content for e in result.memory] == ["My trip is to Lisbon.", "Noted: Lisbon."]
    assert "Lisbon" in result.context
    assert "Lisbon" not in client.retrieve(bob, "hotel", session_id="chat-1").context
    assert client.forget(alice, "chat-1")
    assert client.session(alice, "chat-1") == []
    assert not client.forget(alice, "chat-1")


def test_api_keys_authenticate_to_principals(
    client: SecureRetriever, runtime: Runtime, conn: psycopg.Connection[Any], acme: Any
) -> None:
    """A backend may reuse securerag API keys; unknown and expired keys fail alike."""
    with tenant_transaction(conn, acme.id, access="admin") as tx:
        key = runtime.api_keys.create(tx, acme, "alice")
        expired = runtime.api_keys.create(tx, acme, "alice", expires_in=timedelta(seconds=-1))
    assert client.authenticate(key) == Principal(acme.name, "alice")
    for bad in (expired, key[:-2] + "xx", "srk_nothing_here"):
        with pytest.raises(AuthenticationError):
            client.authenticate(bad)


def test_one_instance_serves_concurrent_requests(client: SecureRetriever, acme: Any) -> None:
    """Threads share one SecureRetriever; every answer is the one its principal should get."""
    asks = [Principal(acme.name, "alice"), Principal(acme.name, "bob")] * 8
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda p: client.retrieve(p, "board hotel", k=5), asks))
    for principal, answer in zip(asks, answers, strict=True):
        readable = {"handbook/travel"} if principal.user == "alice" else {"handbook/travel", "board/minutes"}
        assert {c.collection for c in answer.chunks} == readable


def test_the_real_model_behind_the_library(
    real_runtime: Runtime, ingest: Callable[..., Any], make_tenant: Callable[..., Any]
) -> None:
    """With the real embedding model, the nearest readable chunk is the one that means the query."""
    acme = make_tenant(policy=POLICY)
    ingest(acme, "handbook/it", "Reset your laptop password from the self-service portal.", rt=real_runtime)
    ingest(acme, "handbook/food", "The canteen serves lunch from noon.", rt=real_runtime)
    with SecureRetriever(runtime=real_runtime, pool_size=2) as retriever:
        result = retriever.retrieve(
            Principal(acme.name, "alice"), "how do I change my login credentials", k=1
        )
    assert "password" in result.chunks[0].text
