"""Configuration: one `Settings`, read from `SECURERAG_*` environment variables.

Built once in an entry point (the CLI's `main`, `create_app`, `migrations/env.py`)
and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from securerag.scanning.scanner import DEFAULT_FLAG, DEFAULT_WITHHOLD

if TYPE_CHECKING:
    from securerag.jwtauth import JwtVerifier
    from securerag.scanning import ScanThresholds


def _default_home() -> Path:
    return platformdirs.user_data_path("securerag", appauthor=False)


class Settings(BaseSettings):
    """Everything securerag can be told from outside, with safe defaults."""

    model_config = SettingsConfigDict(env_prefix="SECURERAG_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=_default_home)
    """Data folder: the embedded database and the local master key file."""

    database_url: SecretStr | None = None
    """Owner/administrator URL of a PostgreSQL with pgvector; unset means embedded."""

    app_database_url: SecretStr | None = None
    """URL for the query role; derived from `database_url` when unset."""

    master_key: SecretStr | None = None
    """Base64 of a 32-byte key-encryption key; unset means the key file in `home`."""

    embedder: str | None = None
    """A sentence-transformers model name or folder; unset means the bundled MiniLM."""

    embedded_database: str = "securerag"
    """Database name used inside the embedded server."""

    flag_threshold: float = Field(default=DEFAULT_FLAG, ge=0.0, le=1.0)
    """Injection score at or above which a chunk is returned fenced and flagged."""

    withhold_threshold: float = Field(default=DEFAULT_WITHHOLD, ge=0.0, le=1.0)
    """Injection score at or above which a chunk is withheld."""

    scan_thresholds: dict[str, dict[str, tuple[float, float]]] = Field(default_factory=dict)
    """Per tenant (or `*`) and classification (or `*`): `[flag, withhold]`, as JSON:
    `{"acme": {"restricted": [0.3, 0.6], "*": [0.4, 0.8]}}`. The most specific entry wins;
    the flag and withhold thresholds above apply where none matches."""

    memory_default_ttl_seconds: int | None = Field(default=86_400, ge=1, le=366 * 86_400)
    """TTL applied to memory entries written without one; None keeps them until deleted."""

    memory_ttl_by_tenant: dict[str, int] = Field(default_factory=dict)
    """Per tenant name, the TTL of its entries written without one, as JSON: `{"acme": 3600}`.
    Tenants not named use `memory_default_ttl_seconds`."""

    context_max_tokens: int = Field(default=4_000, ge=128, le=200_000)
    """Token budget of an assembled context when a request names none."""

    context_tokenizer: str | None = None
    """A Hugging Face tokenizer name or folder (loaded offline) counting the context budget in the
    tokens of the model that reads it; unset means the embedding model's tokenizer."""

    statement_timeout_ms: int = Field(default=30_000, ge=100, le=3_600_000)
    """Longest any single statement of the query role may run before PostgreSQL cancels it."""

    max_body_bytes: int = Field(default=8_000_000, ge=1_024)
    """Largest HTTP request body the service reads; larger ones get 413."""

    jwt_hs256_secret: SecretStr | None = None
    """Accept HS256 bearer JWTs signed with this secret (at least 32 bytes)."""

    jwt_jwks_file: Path | None = None
    """Accept RS256 bearer JWTs signed by a key (by `kid`) of this JWKS file."""

    jwt_issuer: str | None = None
    """Required `iss` of accepted JWTs."""

    jwt_audience: str | None = None
    """Required `aud` of accepted JWTs."""

    jwt_tenant_claim: str = "tenant"
    """The JWT claim naming the tenant."""

    jwt_user_claim: str = "sub"
    """The JWT claim naming the user."""

    rate_limit: str | None = "120/minute"
    """Requests each (tenant, user) may make to `/v1` per window, in `limits` syntax
    (`"120/minute"`, `"10/second"`), shared by every worker; `off` turns limits off."""

    log_format: Literal["json", "text"] = "json"
    """How `securerag serve` writes its logs: JSON lines (ids, routes, timings; never content)."""

    memory_sweep_seconds: float = Field(default=60.0, gt=0)
    """How often the server hard-deletes expired session-memory entries."""

    @field_validator("scan_thresholds", mode="after")
    @classmethod
    def _valid_thresholds(
        cls, value: dict[str, dict[str, tuple[float, float]]]
    ) -> dict[str, dict[str, tuple[float, float]]]:
        for tenant, by_class in value.items():
            for level, (flag, withhold) in by_class.items():
                if not 0 <= flag <= withhold <= 1:
                    raise ValueError(f"scan threshold {tenant}/{level}: need 0 <= flag <= withhold <= 1")
        return value

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _no_rate_limit(cls, value: object) -> object:
        # SECURERAG_RATE_LIMIT= (empty) or "off" turns limits off.
        return None if isinstance(value, str) and value.strip().lower() in ("", "off", "none") else value

    @field_validator("rate_limit", mode="after")
    @classmethod
    def _valid_rate_limit(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from limits import parse

        parse(value)  # ValueError, reported by pydantic, for anything but e.g. "120/minute"
        return value

    @field_validator("memory_ttl_by_tenant", mode="after")
    @classmethod
    def _valid_ttls(cls, value: dict[str, int]) -> dict[str, int]:
        for tenant, ttl in value.items():
            if not 1 <= ttl <= 366 * 86_400:
                raise ValueError(f"memory TTL of {tenant}: need 1 to {366 * 86_400} seconds")
        return value

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    def jwt_verifier(self) -> JwtVerifier | None:
        """The JWT verifier, when a secret or a JWKS file is configured."""
        if self.jwt_hs256_secret is None and self.jwt_jwks_file is None:
            return None
        from securerag.jwtauth import JwtVerifier

        return JwtVerifier(
            hs256_secret=self.jwt_hs256_secret.get_secret_value().encode() if self.jwt_hs256_secret else None,
            jwks_file=self.jwt_jwks_file,
            issuer=self.jwt_issuer,
            audience=self.jwt_audience,
            tenant_claim=self.jwt_tenant_claim,
            user_claim=self.jwt_user_claim,
        )

    @property
    def key_file(self) -> Path:
        """Where `securerag init` keeps the master key when none is given."""
        return self.home / "master.key"

    @property
    def embedded(self) -> bool:
        """True when securerag runs its own PostgreSQL under `home`."""
        return self.database_url is None

    def scan_thresholds_config(self) -> ScanThresholds:
        """The injection scanner's thresholds as configured."""
        from securerag.scanning import ScanThresholds, Thresholds

        return ScanThresholds(
            default=Thresholds(self.flag_threshold, self.withhold_threshold),
            overrides={
                tenant: {level: Thresholds(*pair) for level, pair in by_class.items()}
                for tenant, by_class in self.scan_thresholds.items()
            },
        )
