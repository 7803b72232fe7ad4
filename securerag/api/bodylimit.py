"""A bound on request bodies, enforced before any route reads them.

A declared `Content-Length` over the bound is refused at once; otherwise the
body that actually arrives is counted (whatever was declared, chunked or
not) and refused as soon as it passes the bound. Either way the answer is a
413 problem, and nothing larger than the bound is ever held in memory. A
request declaring both `Content-Length` and `Transfer-Encoding` is a 400.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: 413 for request bodies over `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and b"transfer-encoding" in headers:
            # Both framings at once is how request smuggling starts: refuse it outright.
            await self._refuse(scope, send, 400, "Bad request", "both Content-Length and Transfer-Encoding")
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self._max):
            await self._refuse(scope, send, 413, *self._too_large())
            return
        # Read the body that actually arrives (bounded, whatever was declared), then replay it.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                await self._refuse(scope, send, 413, *self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)

    def _too_large(self) -> tuple[str, str]:
        return "Request body too large", f"the request body is larger than {self._max} bytes"

    async def _refuse(self, scope: Scope, send: Send, status: int, title: str, detail: str) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": title,
                "status": status,
                "detail": detail,
                "instance": scope.get("path", ""),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
