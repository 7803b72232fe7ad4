"""Dependencies: services from the lifespan, a pooled connection, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Header, Request
from psycopg_pool import ConnectionPool

from securerag.api.metrics import Metrics
from securerag.api.ratelimit import RateLimiter
from securerag.errors import AuthenticationError
from securerag.jwtauth import JwtVerifier
from securerag.runtime import Runtime
from securerag.tenants import TenantRef


@dataclass(frozen=True, slots=True)
class Services:
    """What the lifespan builds once per application."""

    runtime: Runtime
    pool: ConnectionPool[psycopg.Connection[Any]]
    metrics: Metrics
    limiter: RateLimiter | None = None
    jwt: JwtVerifier | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal: the API key decides tenant and user."""

    tenant: TenantRef
    user: str


def get_services(request: Request) -> Services:
    """The application's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_conn(services: ServicesDep) -> Iterator[psycopg.Connection[Any]]:
    """A query-role connection for the duration of the request."""
    with services.pool.connection() as conn:
        yield conn


ConnDep = Annotated[psycopg.Connection[Any], Depends(get_conn)]


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; `AuthenticationError` otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("missing bearer API key")
    return token.strip()


def get_caller(
    services: ServicesDep,
    conn: ConnDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    """Authenticate `Authorization: Bearer <API key or JWT>`."""
    token = bearer_token(authorization)
    if services.jwt is not None and JwtVerifier.looks_like_jwt(token):
        tenant, user = services.jwt.authenticate(conn, token)
    else:
        tenant, user = services.runtime.api_keys.authenticate(conn, token)
    if services.limiter is not None:
        services.limiter.hit(tenant.name, user)  # RateLimited: 429 with Retry-After
    return Caller(tenant=tenant, user=user)


CallerDep = Annotated[Caller, Depends(get_caller)]
