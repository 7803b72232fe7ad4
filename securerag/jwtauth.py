"""Optional JWT bearer tokens mapped to (tenant, user).

A deployment with its own identity provider can skip securerag API keys: a
token signed with HS256 (a shared secret) or RS256 (keys from a JWKS file)
names the tenant and the user in configurable claims. Each key is used with
its own algorithm only (no `none`, no HS256 with a public key), `exp` is
required, `aud` is required with a JWKS file (an identity provider signs for
many services), `iss` and `aud` are checked when configured, the tenant and
user claims must be strings and the tenant must exist. The JWKS file is read
at start-up: rotating the provider's keys means restarting the service.
Every failure is the same `AuthenticationError` as a bad API key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import psycopg

from securerag.errors import AuthenticationError, ConfigError, InvalidInput, NotFound
from securerag.models import Principal
from securerag.tenants import TenantRef, find_tenant


class JwtVerifier:
    """Checks bearer JWTs against the configured secret and/or JWKS."""

    def __init__(
        self,
        *,
        hs256_secret: bytes | None = None,
        jwks_file: Path | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        tenant_claim: str = "tenant",
        user_claim: str = "sub",
        leeway_seconds: int = 30,
    ) -> None:
        if hs256_secret is None and jwks_file is None:
            raise ConfigError("JWT authentication needs a shared secret or a JWKS file")
        if hs256_secret is not None and len(hs256_secret) < 32:
            raise ConfigError("the JWT HS256 secret must be at least 32 bytes")
        if jwks_file is not None and audience is None:
            # An identity provider signs tokens for many services: without an audience,
            # a token minted for any of them would be accepted here.
            raise ConfigError("RS256 JWTs from a JWKS file need SECURERAG_JWT_AUDIENCE")
        self._secret = hs256_secret
        self._rsa: dict[str, Any] = {}
        if jwks_file is not None:
            try:
                keys = jwt.PyJWKSet.from_json(jwks_file.read_text()).keys
            except (OSError, json.JSONDecodeError, jwt.PyJWKSetError) as exc:
                raise ConfigError(f"cannot read the JWKS file {jwks_file}: {type(exc).__name__}") from None
            self._rsa = {k.key_id: k.key for k in keys if k.key_type == "RSA" and k.key_id}
            if not self._rsa:
                raise ConfigError(f"the JWKS file {jwks_file} holds no RSA key with a 'kid'")
        self._issuer = issuer
        self._audience = audience
        self._tenant_claim = tenant_claim
        self._user_claim = user_claim
        self._leeway = leeway_seconds

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        """Three base64url parts: worth trying as a JWT (API keys start with `srk_`)."""
        return token.count(".") == 2 and not token.startswith("srk_")

    def authenticate(self, conn: psycopg.Connection[Any], token: str) -> tuple[TenantRef, str]:
        """The tenant and user the token names; `AuthenticationError` for anything wrong."""
        try:
            claims = self._claims(token)
            tenant, user = claims[self._tenant_claim], claims[self._user_claim]
            if not isinstance(tenant, str) or not isinstance(user, str):
                raise ValueError("tenant and user claims must be strings")
            principal = Principal(tenant, user)
            return find_tenant(conn, principal.tenant), principal.user
        except (jwt.PyJWTError, KeyError, InvalidInput, NotFound, ValueError):
            raise AuthenticationError("invalid credentials") from None

    def _claims(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._secret is not None:
            key = self._secret
        elif algorithm == "RS256" and self._rsa:
            key = self._rsa[str(header.get("kid"))]
        else:
            raise jwt.InvalidAlgorithmError("algorithm not accepted")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            issuer=self._issuer,
            audience=self._audience,
            leeway=self._leeway,
            options={
                "require": ["exp", self._tenant_claim, self._user_claim],
                "verify_aud": self._audience is not None,
                "verify_iss": self._issuer is not None,
            },
        )
        return claims
