"""One place that maps errors to RFC 9457 problem+json responses."""

from __future__ import annotations

import logging
import uuid

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from securerag.errors import (
    AccessDenied,
    AuthenticationError,
    ConfigError,
    EmbeddingError,
    InvalidInput,
    NotFound,
    QuotaExceeded,
    RateLimited,
    SecureRagError,
)

_log = logging.getLogger("securerag.api")

_STATUS: tuple[tuple[type[SecureRagError], int, str], ...] = (
    (InvalidInput, 400, "Invalid request"),
    (AuthenticationError, 401, "Unauthorized"),
    (AccessDenied, 403, "Forbidden"),
    (NotFound, 404, "Not found"),
    (QuotaExceeded, 413, "Quota exceeded"),
    (ConfigError, 503, "Service unavailable"),
    (EmbeddingError, 503, "Service unavailable"),
)


def problem(
    status: int, title: str, detail: str | None, *, request: Request, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "instance": request.url.path}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers."""

    @app.exception_handler(RateLimited)
    async def _limited(request: Request, exc: RateLimited) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)}
        return problem(429, "Too many requests", str(exc), request=request, headers=headers)

    @app.exception_handler(SecureRagError)
    async def _domain(request: Request, exc: SecureRagError) -> JSONResponse:
        for kind, status, title in _STATUS:
            if isinstance(exc, kind):
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return problem(status, title, str(exc), request=request, headers=headers)
        return _internal(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for error in exc.errors()[:5]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
            parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg")))
        return problem(422, "Unprocessable request", "; ".join(parts), request=request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code, str(exc.detail), None, request=request, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def _timeout(request: Request, exc: psycopg.errors.QueryCanceled) -> JSONResponse:
        _log.warning("statement timeout", extra={"request_id": getattr(request.state, "request_id", None)})
        return problem(503, "Service unavailable", "the database took too long; try again", request=request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request, exc)


def _internal(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    # The type only: messages of third-party errors can carry data.
    _log.error("unhandled error %s", type(exc).__name__, extra={"request_id": request_id})
    return problem(
        500,
        "Internal error",
        f"request id {request_id}",
        request=request,
        headers={"X-Request-ID": request_id},
    )
