"""Prometheus metrics, one registry per application (no process-global state)."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_log = logging.getLogger("securerag.api.requests")


class Metrics:
    """Counters and histograms the service exports at `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "securerag_http_requests", "HTTP requests", ("route", "method", "status"), registry=self.registry
        )
        self.latency = Histogram(
            "securerag_http_request_seconds",
            "HTTP request latency",
            ("route", "method"),
            registry=self.registry,
        )
        self.withheld = Counter(
            "securerag_withheld_chunks", "Chunks withheld for injection", registry=self.registry
        )
        self.stages = Histogram(
            "securerag_retrieval_stage_seconds",
            "Time in each retrieval stage (embed, search, decrypt, scan, assemble, audit)",
            ("stage",),
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.denials = Counter(
            "securerag_policy_denials", "Refused administrative calls", registry=self.registry
        )

    def render(self) -> Response:
        """The Prometheus text exposition: of every worker when `securerag serve --workers N`
        (N > 1) set `PROMETHEUS_MULTIPROC_DIR`, else of this process."""
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, metrics: Metrics) -> None:
    """Time and count every request by its route template (never by raw path)."""

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.request_id = uuid.uuid4().hex
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request.state.request_id
            return response
        finally:
            route = getattr(request.scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - start
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.latency.labels(route, request.method).observe(elapsed)
            # The route template, never the raw path (it can hold session ids).
            _log.info(
                "request",
                extra={
                    "request_id": request.state.request_id,
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )
