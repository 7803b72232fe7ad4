"""One exception tree for everything securerag raises on purpose.

    SecureRagError
    ├── ConfigError          configuration or environment is unusable (how to fix is in the message)
    ├── NotInitialized       the database or key file has not been set up (`securerag init`)
    ├── InvalidInput         a request or file is malformed (maps to 400/422)
    │   └── PolicyError      a policy line is malformed or names another tenant
    ├── AuthenticationError  unknown, expired or revoked credentials (401)
    ├── AccessDenied         authenticated but not allowed (403)
    ├── NotFound             no such object, or one the caller may not see (404)
    ├── QuotaExceeded        a per-session or per-request limit was hit (413/429)
    ├── DecryptionError      a ciphertext failed authentication; every cause looks the same
    ├── KeyNotFound          key material is missing or destroyed
    └── EmbeddingError       the embedding model could not be loaded or run

Third-party exceptions are translated where they enter (for example `InvalidTag`
becomes `DecryptionError` in `securerag.crypto`), chained `from None` where the
cause could leak data. Domain code never raises HTTP exceptions; the API maps
this tree to problem+json in one handler.
"""

from __future__ import annotations


class SecureRagError(Exception):
    """Base of every error securerag raises on purpose."""


class ConfigError(SecureRagError):
    """The configuration or environment cannot work; the message says how to fix it."""


class NotInitialized(ConfigError):
    """The database schema or the master key has not been set up yet."""


class InvalidInput(SecureRagError):
    """A request, file or argument is malformed."""


class PolicyError(InvalidInput):
    """A policy line is malformed, uses an unsupported form, or names another tenant."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class AuthenticationError(SecureRagError):
    """Credentials are missing, unknown, expired or revoked (all look the same)."""


class AccessDenied(SecureRagError):
    """The principal is authenticated but not allowed to do this."""


class NotFound(SecureRagError):
    """The object does not exist, or the caller may not know that it does."""


class QuotaExceeded(SecureRagError):
    """A size or count limit was reached."""


class RateLimited(SecureRagError):
    """Too many requests from one principal; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded; retry in {retry_after} s")
        self.retry_after = retry_after


class DecryptionError(SecureRagError):
    """A ciphertext could not be authenticated; the cause is deliberately not given."""

    def __init__(self) -> None:
        super().__init__("ciphertext failed authentication")


class KeyNotFound(SecureRagError):
    """Key material needed for an operation is missing or has been destroyed."""


class EmbeddingError(SecureRagError):
    """The embedding model could not be loaded or failed to embed."""
