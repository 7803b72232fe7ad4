"""The HTTP API on the real database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from securerag.api import create_app
from securerag.apikeys import key_id_of, list_keys, revoke_key
from securerag.db import tenant_transaction
from securerag.runtime import Runtime

POLICY = """
g, alice, role:staff, {T}
p, role:staff, {T}, collection:handbook/*, read
p, role:staff, {T}, clearance:internal, read
p, root, {T}, admin, write
p, root, {T}, collection:*, read
p, root, {T}, clearance:restricted, read
"""


@pytest.fixture(scope="module")
def client(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime.settings, runtime=runtime)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def keys_for(conn: psycopg.Connection[Any], runtime: Runtime) -> Callable[..., dict[str, str]]:
    def make(tenant: Any, *users: str) -> dict[str, str]:
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            return {u: runtime.api_keys.create(tx, tenant, u) for u in users}

    return make


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def world(
    make_tenant: Callable[..., Any], ingest: Callable[..., Any], keys_for: Callable[..., dict[str, str]]
) -> tuple[Any, dict[str, str]]:
    tenant = make_tenant(policy=POLICY)
    ingest(tenant, "handbook/travel", "Hotels are reimbursed up to 200 USD per night.")
    ingest(tenant, "finance/q3", "Revenue forecast: 48 million.")
    return tenant, keys_for(tenant, "alice", "root", "nobody")


def test_retrieve_returns_the_interface_shape(client: TestClient, world: Any) -> None:
    """POST /v1/retrieve answers chunks, context, memory and withheld."""
    _, keys = world
    response = client.post(
        "/v1/retrieve", json={"query": "hotel reimbursed", "k": 3}, headers=_auth(keys["alice"])
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"chunks", "context", "memory", "withheld"}
    assert body["context_tokens"] > 0
    assert body["omitted_chunks"] == body["omitted_memory"] == 0
    assert [c["collection"] for c in body["chunks"]] == ["handbook/travel"]
    assert body["chunks"][0]["injection"]["action"] == "allow"


def test_the_key_decides_tenant_and_user(client: TestClient, world: Any) -> None:
    """The same query returns what the key's user may read, and nothing of other tenants."""
    _, keys = world
    root = client.post("/v1/retrieve", json={"query": "revenue hotels", "k": 5}, headers=_auth(keys["root"]))
    nobody = client.post(
        "/v1/retrieve", json={"query": "revenue hotels", "k": 5}, headers=_auth(keys["nobody"])
    )
    assert {c["collection"] for c in root.json()["chunks"]} == {"handbook/travel", "finance/q3"}
    assert nobody.json()["chunks"] == []


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic abc", "Bearer srk_aaaaaaaaaaaaaaaa_" + "A" * 43, "Bearer garbage"],
    ids=["missing", "empty", "basic", "unknown-key", "malformed"],
)
def test_bad_credentials_get_401_problem(client: TestClient, header: str | None) -> None:
    """Every credential failure is the same 401 problem+json."""
    headers = {"Authorization": header} if header else {}
    response = client.post("/v1/retrieve", json={"query": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] in ("invalid credentials", "missing bearer API key")


def test_revoked_and_expired_keys_fail_like_unknown_ones(
    client: TestClient, runtime: Runtime, conn: psycopg.Connection[Any], world: Any
) -> None:
    """A key works until revoked; revoked, expired and unknown keys get the same 401 body."""
    tenant, _ = world
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        key = runtime.api_keys.create(tx, tenant, "alice")
        expired = runtime.api_keys.create(tx, tenant, "alice", expires_in=timedelta(seconds=-1))
    ask = {"query": "hotel"}
    assert client.post("/v1/retrieve", json=ask, headers=_auth(key)).status_code == 200
    with tenant_transaction(conn, tenant.id, access="admin") as tx:
        assert revoke_key(tx, tenant, key)
        assert not revoke_key(tx, tenant, key)  # already revoked
        assert {k.key_id: k.status for k in list_keys(tx, tenant)}[key_id_of(key)] == "revoked"
        assert {k.key_id: k.status for k in list_keys(tx, tenant)}[key_id_of(expired)] == "expired"
    unknown = "srk_" + "a" * 16 + "_" + "A" * 43
    bodies = []
    for bad in (key, expired, unknown):
        response = client.post("/v1/retrieve", json=ask, headers=_auth(bad))
        assert response.status_code == 401
        bodies.append(response.json())
    assert bodies[0] == bodies[1] == bodies[2]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": ""},
        {"query": "x", "k": 0},
        {"query": "x", "k": 51},
        {"query": "x", "extra": 1},
        {"query": "x" * 5000},
        {"query": "x", "session_id": "bad id"},
        {"query": "x", "max_tokens": 10},
        {"query": "x", "max_tokens": 10**9},
    ],
    ids=[
        "empty",
        "blank-query",
        "k-zero",
        "k-too-big",
        "unknown-field",
        "too-long",
        "bad-session",
        "budget-too-small",
        "budget-too-big",
    ],
)
def test_bad_bodies_get_4xx_problem(client: TestClient, world: Any, body: dict[str, Any]) -> None:
    """Malformed requests are 4xx problem+json, never a 500."""
    _, keys = world
    response = client.post("/v1/retrieve", json=body, headers=_auth(keys["alice"]))
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


def test_admin_calls_need_admin_write(
    client: TestClient, world: Any, admin_conn: psycopg.Connection[Any]
) -> None:
    """Policy and document calls are refused (403, audited) without `admin, write`."""
    tenant, keys = world
    for method, path, body in (
        ("GET", "/v1/policies", None),
        ("POST", "/v1/policies", {"lines": []}),
        ("POST", "/v1/documents", {"collection": "a", "title": "t", "text": "x"}),
    ):
        response = client.request(method, path, json=body, headers=_auth(keys["alice"]))
        assert response.status_code == 403, (path, response.text)
    denied = admin_conn.execute(
        "SELECT count(*) FROM securerag.audit_log WHERE tenant_id = %s AND action = 'admin.denied'",
        (tenant.id,),
    ).fetchone()
    assert denied == (3,)


def test_admin_manages_policy_and_documents(client: TestClient, world: Any) -> None:
    """An administrator adds a policy line, ingests, retrieves and deletes a document."""
    tenant, keys = world
    root, alice = _auth(keys["root"]), _auth(keys["alice"])
    line = f"p, role:staff, {tenant.name}, collection:wiki/*, read"
    added = client.post("/v1/policies", json={"lines": [line]}, headers=root)
    assert added.status_code == 200
    assert line in added.json()["lines"]
    created = client.post(
        "/v1/documents",
        headers=root,
        json={
            "collection": "wiki/howto",
            "title": "Howto",
            "text": "How to book a meeting room.",
            "classification": "internal",
        },
    )
    assert created.status_code == 201, created.text
    doc_id = created.json()["document_id"]
    seen = client.post("/v1/retrieve", json={"query": "meeting room"}, headers=alice).json()
    assert doc_id in {c["document_id"] for c in seen["chunks"]}
    assert client.delete(f"/v1/documents/{doc_id}", headers=root).status_code == 204
    assert client.delete(f"/v1/documents/{doc_id}", headers=root).status_code == 404
    removed = client.request("DELETE", "/v1/policies", json={"lines": [line]}, headers=root)
    assert line not in removed.json()["lines"]


def test_policy_lines_for_another_tenant_are_refused(client: TestClient, world: Any) -> None:
    """A policy line naming another tenant is a 4xx, and nothing is added."""
    tenant, keys = world
    root = _auth(keys["root"])
    before = client.get("/v1/policies", headers=root).json()["lines"]
    response = client.post(
        "/v1/policies",
        headers=root,
        json={
            "lines": [
                f"p, root, {tenant.name}, collection:ok, read",
                "p, root, other-tenant, collection:*, read",
            ]
        },
    )
    assert response.status_code == 400
    assert "line 2" in response.json()["detail"]
    assert client.get("/v1/policies", headers=root).json()["lines"] == before


def test_memory_is_per_user(client: TestClient, world: Any) -> None:
    """Memory written by one user is invisible to another asking for the same session."""
    _, keys = world
    alice, root = _auth(keys["alice"]), _auth(keys["root"])
    assert (
        client.post(
            "/v1/sessions/s-1/memory", headers=alice, json={"role": "user", "content": "my secret"}
        ).status_code
        == 201
    )
    assert [e["content"] for e in client.get("/v1/sessions/s-1/memory", headers=alice).json()["entries"]] == [
        "my secret"
    ]
    assert client.get("/v1/sessions/s-1/memory", headers=root).json() == {"entries": []}
    with_memory = client.post("/v1/retrieve", headers=alice, json={"query": "hotel", "session_id": "s-1"})
    assert [m["content"] for m in with_memory.json()["memory"]] == ["my secret"]
    assert client.delete("/v1/sessions/s-1", headers=alice).status_code == 204
    assert client.get("/v1/sessions/s-1/memory", headers=alice).json() == {"entries": []}


def test_health_ready_metrics_openapi(client: TestClient) -> None:
    """Operational endpoints answer."""
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "securerag_http_requests" in metrics.text
    assert "/v1/retrieve" in client.get("/openapi.json").json()["paths"]


def test_metrics_time_each_retrieval_stage(client: TestClient, world: Any) -> None:
    """After a retrieval, /metrics has a histogram per stage and counts by route and status;
    no query text, chunk text or key appears in it."""
    _, keys = world
    client.post("/v1/retrieve", json={"query": "zanzibar hotel question"}, headers=_auth(keys["alice"]))
    text = client.get("/metrics").text
    for stage in ("embed", "search", "decrypt", "scan", "assemble", "audit"):
        assert f'securerag_retrieval_stage_seconds_count{{stage="{stage}"}}' in text
    assert 'route="/v1/retrieve"' in text
    assert "zanzibar" not in text
    assert "Hotels are reimbursed" not in text
    assert keys["alice"] not in text


def test_unknown_route_is_problem_json(client: TestClient) -> None:
    """Even a 404 for an unknown path is problem+json."""
    response = client.get("/v1/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_lone_surrogates_are_a_422_not_a_500(client: TestClient, world: Any) -> None:
    """JSON can carry unpaired surrogates that UTF-8 cannot; they are refused as bad input."""
    _, keys = world
    for path, body in (
        ("/v1/retrieve", '{"query": "x\\ud800"}'),
        ("/v1/policies", '{"lines": ["p, a, t, collection:x\\ud800*, read"]}'),
    ):
        response = client.post(
            path, content=body.encode(), headers={**_auth(keys["root"]), "Content-Type": "application/json"}
        )
        assert response.status_code == 422, (path, response.text)


def test_oversized_bodies_are_refused_before_they_are_read(client: TestClient, world: Any) -> None:
    """A body over the bound gets a 413 problem, declared or sent chunked, and is counted."""
    _, keys = world
    limit = client.app.state.services.runtime.settings.max_body_bytes  # type: ignore[attr-defined]
    big = b'{"query": "' + b"x" * limit + b'"}'
    declared = client.post(
        "/v1/retrieve", content=big, headers={**_auth(keys["alice"]), "content-type": "application/json"}
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65_536):
            yield big[start : start + 65_536]

    chunked = client.post(
        "/v1/retrieve", content=chunks(), headers={**_auth(keys["alice"]), "content-type": "application/json"}
    )
    assert chunked.status_code == 413
    small = client.post(
        "/v1/retrieve",
        content=b'{"query": "hotel"}',
        headers={**_auth(keys["alice"]), "content-type": "application/json"},
    )
    assert small.status_code == 200
    assert 'status="413"' in client.get("/metrics").text


def test_every_query_runs_under_a_statement_timeout(runtime: Runtime, conn: psycopg.Connection[Any]) -> None:
    """Query-role sessions carry the configured statement timeout; a slow statement is cancelled."""
    row = conn.execute("SHOW statement_timeout").fetchone()
    assert row is not None
    assert row[0] == f"{runtime.settings.statement_timeout_ms // 1000}s"
    conn.execute("SET statement_timeout = 50")
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute("SELECT pg_sleep(1)")


def test_an_unexpected_failure_is_a_bare_500_with_a_logged_request_id(
    client: TestClient,
    world: Any,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug inside a route answers 500 problem+json whose only detail is the request id; the
    error's message (which could hold data) is neither in the answer nor in the log."""
    _, keys = world

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret chunk text that must not leak")

    monkeypatch.setattr(runtime.retriever, "retrieve", broken)
    with caplog.at_level("ERROR", logger="securerag.api"):
        response = client.post("/v1/retrieve", json={"query": "x"}, headers=_auth(keys["alice"]))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    request_id = response.headers["X-Request-ID"]
    assert response.json()["detail"] == f"request id {request_id}"
    assert "secret chunk" not in response.text
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert logged
    assert all("secret chunk" not in r.getMessage() for r in caplog.records)


def test_log_records_never_carry_exception_text() -> None:
    """The service's log filter keeps an exception's type and drops its message and traceback."""
    import logging

    from securerag.logs import NoExceptionText

    try:
        raise ValueError("patient record 12345")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "uvicorn.error", logging.ERROR, __file__, 1, "Exception in %s", ("ASGI",), sys.exc_info()
        )
    assert NoExceptionText().filter(record)
    assert record.getMessage() == "Exception in ASGI (ValueError)"
    assert record.exc_info is None
    assert "12345" not in logging.Formatter().format(record)
