"""API keys: shown once, stored as HMAC digests under a key derived from the master key.

A key reads `srk_<id>_<secret>`. The id finds the row; the secret is checked
by comparing HMAC-SHA256 digests in constant time. A database leak alone does
not allow checking guesses offline, because the HMAC key is not in it.
Unknown, malformed, expired and revoked keys all fail the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from securerag.errors import AuthenticationError, InvalidInput
from securerag.models import Principal
from securerag.protocols import Secrets
from securerag.tenants import TenantRef

_TOKEN = re.compile(r"srk_([a-z2-7]{16})_([A-Za-z0-9_-]{43})")
_KEY_ID = re.compile(r"[a-z2-7]{16}")
_DUMMY = b"\x00" * 32


class ApiKeys:
    """Creates and checks API keys."""

    __slots__ = ("_pepper",)

    def __init__(self, secrets: Secrets) -> None:
        self._pepper = secrets.derive("api-key-digest")

    def _digest(self, secret: str) -> bytes:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).digest()

    def create(
        self,
        conn: psycopg.Connection[Any],
        tenant: TenantRef,
        user: str,
        *,
        expires_in: timedelta | None = None,
    ) -> str:
        """A new key for `user` (in the caller's admin transaction); shown only now."""
        Principal(tenant.name, user)  # validates the user name
        key_id = secrets.token_bytes(10)
        public_id = _base32(key_id)
        secret = secrets.token_urlsafe(32)
        expires = None if expires_in is None else datetime.now(UTC) + expires_in
        conn.execute(
            "INSERT INTO securerag.api_keys (id, tenant_id, user_name, digest, expires_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (public_id, tenant.id, user, self._digest(secret), expires),
        )
        return f"srk_{public_id}_{secret}"

    def authenticate(self, conn: psycopg.Connection[Any], token: str) -> tuple[TenantRef, str]:
        """The tenant and user of a valid key; `AuthenticationError` for anything else."""
        match = _TOKEN.fullmatch(token.strip())
        row = None
        if match is not None:
            row = conn.execute(
                "SELECT tenant_id, tenant_name, user_name, digest, expires_at, revoked_at"
                " FROM securerag.lookup_api_key(%s)",
                (match.group(1),),
            ).fetchone()
        # Compare even when there is no row, so timing does not tell which failed.
        stored = bytes(row[3]) if row is not None else _DUMMY
        given = self._digest(match.group(2) if match else "")
        good = hmac.compare_digest(stored, given) and row is not None
        now = datetime.now(UTC)
        if not good or row is None or row[5] is not None or (row[4] is not None and row[4] <= now):
            raise AuthenticationError("invalid credentials")
        return TenantRef(id=int(row[0]), name=str(row[1])), str(row[2])


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What an operator may see of a key: never its secret or digest."""

    key_id: str
    user: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        """`active`, `expired` or `revoked`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            return "expired"
        return "active"


def key_id_of(key_or_id: str) -> str:
    """The public id of a key, given the id itself or a whole `srk_<id>_<secret>` key."""
    value = key_or_id.strip()
    match = _TOKEN.fullmatch(value)
    if match is not None:
        return match.group(1)
    if not _KEY_ID.fullmatch(value):
        raise InvalidInput("expected an API key id (16 characters a-z, 2-7) or a whole key")
    return value


def list_keys(conn: psycopg.Connection[Any], tenant: TenantRef) -> list[ApiKeyInfo]:
    """The tenant's keys, newest first (in an admin transaction)."""
    rows = conn.execute(
        "SELECT id, user_name, created_at, expires_at, revoked_at FROM securerag.api_keys"
        " WHERE tenant_id = %s ORDER BY created_at DESC, id",
        (tenant.id,),
    ).fetchall()
    return [ApiKeyInfo(*row) for row in rows]


def revoke_key(conn: psycopg.Connection[Any], tenant: TenantRef, key_or_id: str) -> bool:
    """Revoke one of the tenant's keys for good (in an admin transaction); False if it
    is not the tenant's or was already revoked. Takes effect on the next request."""
    row = conn.execute(
        "UPDATE securerag.api_keys SET revoked_at = now()"
        " WHERE tenant_id = %s AND id = %s AND revoked_at IS NULL RETURNING id",
        (tenant.id, key_id_of(key_or_id)),
    ).fetchone()
    return row is not None


def _base32(raw: bytes) -> str:
    import base64

    return base64.b32encode(raw).decode().lower().rstrip("=")
