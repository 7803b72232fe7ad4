"""The body bound at the ASGI level: what arrives is counted, whatever the headers claim."""

from __future__ import annotations

import asyncio
from typing import Any

from securerag.api.bodylimit import BodyLimit


def _call(headers: list[tuple[bytes, bytes]], chunks: list[bytes], limit: int = 100) -> tuple[int, bytes]:
    """Run one request through BodyLimit around an app that echoes the body length."""
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen["body"] = body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/retrieve", "headers": headers}
    asyncio.run(BodyLimit(app, max_bytes=limit)(scope, receive, send))
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), 0)
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_small_declared_length_does_not_let_a_large_body_through() -> None:
    """Content-Length says 10, 1,000 bytes arrive: refused, the app never runs."""
    status, body = _call([(b"content-length", b"10")], [b"x" * 500, b"x" * 500])
    assert status == 413
    assert b"larger than 100 bytes" in body


def test_both_framings_at_once_are_refused() -> None:
    """Content-Length with Transfer-Encoding (a smuggling pattern) is a 400."""
    status, _ = _call([(b"content-length", b"5"), (b"transfer-encoding", b"chunked")], [b"hello"])
    assert status == 400


def test_bodies_within_the_bound_reach_the_app_whole() -> None:
    """Declared or chunked, a body within the bound arrives unchanged."""
    assert _call([(b"content-length", b"5")], [b"hello"]) == (200, b"5")
    assert _call([], [b"he", b"llo"]) == (200, b"5")
    assert _call([(b"content-length", b"abc")], [b"x"])[0] == 413


def test_a_client_that_leaves_gets_no_answer() -> None:
    """A disconnect mid-body ends the request; the partial body is never handed on as complete."""
    status, _ = _call([], [])
    assert status == 0
