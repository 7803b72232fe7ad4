"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response

from securerag.api import metrics as metrics_mod
from securerag.api import problems
from securerag.api.bodylimit import BodyLimit
from securerag.api.deps import Services, ServicesDep
from securerag.api.metrics import Metrics
from securerag.api.ratelimit import PostgresStorage, RateLimiter
from securerag.api.routes import router
from securerag.config import Settings
from securerag.memory import Sweep, sweep_expired
from securerag.runtime import Runtime

_log = logging.getLogger(__name__)


async def _sweep_forever(pool: Any, limiter: RateLimiter | None, every_seconds: float) -> None:
    """Hard-delete expired memory entries, close idle sessions and drop past rate-limit
    windows every `every_seconds` (each worker; the deletes skip rows another worker
    holds, so workers never wait on each other)."""

    def sweep() -> Sweep:
        if limiter is not None:
            limiter.storage.prune()
        with pool.connection() as conn:
            return sweep_expired(conn)

    while True:
        try:
            done = await asyncio.to_thread(sweep)
            if done.entries or done.sessions:
                _log.info("memory sweep", extra={"deleted": done.entries, "sessions_closed": done.sessions})
        except Exception:
            _log.exception("memory sweep failed")
        await asyncio.sleep(every_seconds)


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the API. Services (database pool, keys, model) are built in the lifespan.

    Args:
        runtime: an already built runtime (tests, embedding applications).
    """
    metrics = Metrics()
    verifier = settings.jwt_verifier()  # a bad JWT configuration fails here, before serving

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime(settings)  # refuses to start if RLS could be bypassed
        rt.embedder  # noqa: B018 - load the model before taking traffic
        pool = rt.db.pool()
        # The limiter's own small pool: a request holding a connection never waits on
        # the main pool for its rate-limit check.
        limit_pool, limiter = None, None
        if settings.rate_limit:
            limit_pool = rt.db.pool(min_size=1, max_size=2)
            limiter = RateLimiter(PostgresStorage(limit_pool), settings.rate_limit)
        app.state.services = Services(runtime=rt, pool=pool, metrics=metrics, limiter=limiter, jwt=verifier)
        sweeper = asyncio.create_task(_sweep_forever(pool, limiter, settings.memory_sweep_seconds))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            pool.close()
            if limit_pool is not None:
                limit_pool.close()

    app = FastAPI(
        title="securerag",
        version="0.1.0",
        summary="Authorized retrieval over encrypted chunks, with injection scanning.",
        lifespan=lifespan,
    )
    problems.install(app)
    # Inside the metrics middleware (added after, so outside): refusals are counted too.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    metrics_mod.install(app, metrics)
    app.include_router(router)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "database unreachable"}})
    def readyz(services: ServicesDep) -> Any:
        """Readiness: the database answers."""
        try:
            with services.pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
        except Exception:
            return Response('{"status":"unavailable"}', status_code=503, media_type="application/json")
        return {"status": "ready"}

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus text exposition."""
        return metrics.render()

    return app


def app_from_environment() -> FastAPI:
    """The app with settings from the environment: the factory each server worker imports."""
    return create_app(Settings())
