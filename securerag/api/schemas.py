"""Request and response bodies of the HTTP API (pydantic lives only at the edges)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from securerag.retrieval.retriever import MAX_CONTEXT_TOKENS, MAX_K, MAX_QUERY_CHARS, MIN_CONTEXT_TOKENS

LevelName = Literal["public", "internal", "confidential", "restricted"]
SESSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"


def _valid_unicode(value: Any) -> Any:
    """Reject lone surrogates anywhere in a body (JSON can carry them, UTF-8 cannot)."""
    if isinstance(value, str):
        value.encode("utf-8")  # UnicodeEncodeError is a ValueError: pydantic reports a 422
    elif isinstance(value, dict):
        for key, item in value.items():
            _valid_unicode(key)
            _valid_unicode(item)
    elif isinstance(value, list):
        for item in value:
            _valid_unicode(item)
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _unicode(cls, data: Any) -> Any:
        return _valid_unicode(data)


class RetrieveRequest(_Body):
    """`POST /v1/retrieve`."""

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: int = Field(default=5, ge=1, le=MAX_K)
    session_id: str | None = Field(default=None, pattern=SESSION_PATTERN)
    max_tokens: int | None = Field(default=None, ge=MIN_CONTEXT_TOKENS, le=MAX_CONTEXT_TOKENS)
    """Token budget of the assembled context; null means the server's default."""


class Injection(BaseModel):
    """An injection verdict."""

    score: float
    action: Literal["allow", "flag", "withhold"]
    reasons: list[str]


class ChunkOut(BaseModel):
    """One returned chunk."""

    chunk_id: str
    document_id: str
    collection: str
    title: str
    classification: LevelName
    ordinal: int
    """The chunk's position in its document, from 0 (the citation shows `part ordinal + 1`)."""
    score: float
    text: str
    injection: Injection


class MemoryEntryOut(BaseModel):
    """One session-memory entry."""

    role: Literal["user", "assistant"]
    content: str
    created_at: datetime
    expires_at: datetime | None


class RetrieveResponse(BaseModel):
    """What `POST /v1/retrieve` answers."""

    chunks: list[ChunkOut]
    context: str
    memory: list[MemoryEntryOut]
    withheld: int
    context_tokens: int
    """Tokens the context takes (the server's context tokenizer)."""
    omitted_chunks: int
    """Chunks left out because they did not fit the token budget."""
    omitted_memory: int
    """The oldest memory entries, left out because they did not fit the token budget."""


class DocumentRequest(_Body):
    """`POST /v1/documents`."""

    collection: str = Field(min_length=1, max_length=512)
    title: str = Field(max_length=1_000)
    text: str = Field(min_length=1, max_length=5_000_000)
    acl: list[str] = Field(default_factory=list, max_length=256)
    classification: Literal["auto", "public", "internal", "confidential", "restricted"] = "auto"
    source: str | None = Field(default=None, min_length=1, max_length=1_000)
    """Optional identity in the collection: posting the same source again updates that
    document (or does nothing if it is unchanged)."""


class DocumentResponse(BaseModel):
    """What `POST /v1/documents` answers."""

    document_id: str
    chunks: int
    classification: LevelName


class PolicyLines(_Body):
    """Policy lines in and out of `/v1/policies`."""

    lines: list[str] = Field(max_length=10_000)


class MemoryRequest(_Body):
    """`POST /v1/sessions/{sid}/memory`."""

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=32_000)
    ttl_seconds: int | None = Field(default=None, ge=1, le=366 * 86_400)


class MemoryEntries(BaseModel):
    """What `GET /v1/sessions/{sid}/memory` answers."""

    entries: list[MemoryEntryOut]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
