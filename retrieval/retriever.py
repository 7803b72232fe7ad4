"""The retrieval path: embed, authorized search, decrypt, scan, mask, assemble."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from securerag.audit import AuditLog
from securerag.authz import Authorizer, ReadFilter
from securerag.crypto.aead import Aead, DataKey
from securerag.crypto.binding import chunk_aad, document_aad
from securerag.crypto.keyring import Keyring
from securerag.db import tenant_transaction
from securerag.errors import DecryptionError, InvalidInput
from securerag.memory import MemoryEntry, MemoryStore
from securerag.models import Action, DocumentAttrs, Level, ScanResult, require_text
from securerag.protocols import Embedder, Scanner, Secrets
from securerag.retrieval.batching import QueryBatcher
from securerag.retrieval.context import AssembledContext, ChunkHit, TokenCounter, assemble_context
from securerag.retrieval.search import ChunkRow, Plan, VectorSearch
from securerag.scanning.scanner import is_stale, refreshed
from securerag.tenants import TenantRef

_log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 4_000
MAX_K = 50
MIN_CONTEXT_TOKENS = 128
MAX_CONTEXT_TOKENS = 200_000
DEFAULT_CONTEXT_TOKENS = 4_000


@dataclass(frozen=True, slots=True)
class _Judged:
    """Text to judge for injection, with its sealed verdict and classification level.
    `hidden_floor`: a rescan keeps what the document's hidden text raised (chunks, whose hidden
    HTML is not stored; a memory entry is stored whole, so its rescan is the whole verdict)."""

    text: str
    sealed: Mapping[str, Any] | None
    level: str | None = None
    hidden_floor: bool = False


@dataclass(frozen=True, slots=True)
class _Opened:
    """A decrypted chunk: its row, its text (as sealed, and as shown) and its sealed verdict."""

    row: ChunkRow
    text: str
    shown: str
    sealed_scan: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RetrievalResult:
    """What one retrieval returns (the interface.md body, plus how it was planned)."""

    chunks: list[ChunkHit]
    """The chunks in the context, most relevant first; `chunks[n - 1]` is citation [n]."""
    context: str
    """The assembled context block, within the token budget."""
    memory: list[MemoryEntry]
    """The session's memory entries in the context, oldest first."""
    withheld: int
    """Chunks withheld as likely prompt injection (not returned, not in the context)."""
    plan: Plan
    context_tokens: int = 0
    """Tokens the context takes under the retriever's token counter."""
    omitted_chunks: int = 0
    """Readable, allowed chunks left out because they did not fit the token budget."""
    omitted_memory: int = 0
    """Memory entries (the oldest) left out because they did not fit the token budget."""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each stage: embed, search (policy, vector query, keys, titles, memory
    rows), decrypt, scan, assemble, audit."""

    def as_dict(self) -> dict[str, Any]:
        """The `POST /v1/retrieve` body of interface.md."""
        return {
            "chunks": [
                {
                    "chunk_id": h.chunk_id,
                    "document_id": h.document_id,
                    "collection": h.collection,
                    "title": h.title,
                    "classification": h.classification,
                    "ordinal": h.ordinal,
                    "score": h.score,
                    "text": h.text,
                    "injection": {
                        "score": h.injection.score,
                        "action": h.injection.action.label,
                        "reasons": list(h.injection.reasons),
                    },
                }
                for h in self.chunks
            ],
            "context": self.context,
            "memory": [
                {
                    "role": m.role,
                    "content": m.content,
                    "created_at": m.created_at.isoformat(),
                    "expires_at": m.expires_at.isoformat() if m.expires_at else None,
                }
                for m in self.memory
            ],
            "withheld": self.withheld,
            "context_tokens": self.context_tokens,
            "omitted_chunks": self.omitted_chunks,
            "omitted_memory": self.omitted_memory,
        }


class _Stages:
    """Wall time per retrieval stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


def _check_budget(tokens: int) -> int:
    if not MIN_CONTEXT_TOKENS <= tokens <= MAX_CONTEXT_TOKENS:
        raise InvalidInput(f"max_tokens must be between {MIN_CONTEXT_TOKENS} and {MAX_CONTEXT_TOKENS}")
    return tokens


def mask_pii(text: str, spans: Sequence[Sequence[Any]]) -> str:
    """Replace personal-data spans with `[KIND]` placeholders."""
    out, pos = [], 0
    for start, end, kind in sorted(spans, key=lambda s: int(s[0])):
        if start < pos:
            continue
        out += [text[pos:start], f"[{str(kind).upper()}]"]
        pos = end
    out.append(text[pos:])
    return "".join(out)


class Retriever:
    """Answers one user's query with the chunks that user may read."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        scanner: Scanner,
        keyring: Keyring,
        authorizer: Authorizer,
        memory: MemoryStore,
        search: VectorSearch | None = None,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
        count_tokens: TokenCounter | None = None,
        audit: AuditLog | None = None,
        secrets: Secrets | None = None,
    ) -> None:
        """Args:
        context_tokens: the default token budget of the assembled context.
        count_tokens: how to count the tokens of the model that reads the context
            (default: the embedding model's tokenizer).
        audit: when given (with `secrets`), every retrieval is appended to the audit trail:
            who, a keyed digest of the query (never its text), the chunk ids returned, the
            withheld count and the policy version.
        """
        if (audit is None) != (secrets is None):
            raise ValueError("auditing retrievals needs both the audit log and the service secrets")
        self._audit = audit
        self._query_key = secrets.derive("audit/query-digest") if secrets is not None else b""
        _check_budget(context_tokens)
        self._context_tokens = context_tokens
        self._count_tokens = count_tokens or embedder.count_tokens
        self._queries = QueryBatcher(embedder.embed)
        self._scanner = scanner
        self._keyring = keyring
        self._authorizer = authorizer
        self._memory = memory
        self._search = search or VectorSearch()

    def retrieve(
        self,
        conn: psycopg.Connection[Any],
        tenant: TenantRef,
        user: str,
        query: str,
        *,
        k: int = 5,
        session_id: str | None = None,
        max_tokens: int | None = None,
    ) -> RetrievalResult:
        """The k nearest readable chunks for `query`, scanned, with the assembled context.

        The context never takes more than `max_tokens` (default: the retriever's budget);
        the result holds only the chunks and memory entries that are in it.
        """
        budget = _check_budget(self._context_tokens if max_tokens is None else max_tokens)
        if not require_text(query, "the query").strip():
            raise InvalidInput("the query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"the query is longer than {MAX_QUERY_CHARS} characters")
        if not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be between 1 and {MAX_K}")
        stages = _Stages()
        vector = self._queries.embed_one(query)
        stages.lap("embed")
        # One snapshot: the policy version, the rows it filters and their keys agree.
        with tenant_transaction(conn, tenant.id, access="read", user=user, snapshot=True) as tx:
            grants = self._authorizer.apply(tx, tenant, user)
            found = self._search.search(tx, tenant.id, grants.read, vector, k)
            titles, keys = self._documents(tx, tenant.id, found.rows)
            stored = self._memory.stored(tx, tenant, user, session_id) if session_id else []
        stages.lap("search")
        maybe = (self._open(tenant, grants.read, row, keys, unmask=grants.pii) for row in found.rows)
        opened = [o for o in maybe if o is not None]
        stages.lap("decrypt")
        # Memory can carry what a tool or a pasted document said: judged like chunks, by the
        # verdict sealed with it, rescanned in the same batch when that is stale.
        verdicts = self._verdicts(
            tenant,
            [
                _Judged(o.text, o.sealed_scan, Level(o.row.classification).label, hidden_floor=True)
                for o in opened
            ]
            + [_Judged(s.entry.content, s.sealed_scan) for s in stored],
        )
        chunk_verdicts, memory_verdicts = verdicts[: len(opened)], verdicts[len(opened) :]
        stages.lap("scan")
        hits: list[ChunkHit] = []
        withheld = 0
        for o, scan in zip(opened, chunk_verdicts, strict=True):
            if scan.action == Action.WITHHOLD:
                withheld += 1
                continue
            row = o.row
            hits.append(
                ChunkHit(
                    chunk_id=str(row.id),
                    document_id=str(row.document_id),
                    collection=row.collection,
                    title=titles.get(row.document_id, ""),
                    classification=Level(row.classification).label,
                    ordinal=row.ordinal,
                    score=round(1.0 - row.distance, 6),
                    text=o.shown,
                    injection=scan,
                )
            )
        memory: list[MemoryEntry] = []
        for entry, verdict in zip((s.entry for s in stored), memory_verdicts, strict=True):
            if verdict.action == Action.WITHHOLD:
                # `withheld` counts chunks (interface.md); memory drops are logged, not counted.
                _log.info("memory entry withheld: possible prompt injection")
                continue
            memory.append(replace(entry, injection=verdict) if verdict.action == Action.FLAG else entry)
        assembled: AssembledContext = assemble_context(
            hits, memory, max_tokens=budget, count_tokens=self._count_tokens
        )
        stages.lap("assemble")
        if self._audit is not None:
            self._record(conn, tenant, user, query, k, grants.policy_version, assembled, withheld)
            stages.lap("audit")
        return RetrievalResult(
            chunks=assembled.chunks,
            context=assembled.text,
            memory=assembled.memory,
            withheld=withheld,
            plan=found.plan,
            context_tokens=assembled.tokens or 0,
            omitted_chunks=assembled.omitted_chunks,
            omitted_memory=assembled.omitted_memory,
            stage_seconds=stages.seconds,
        )

    def _record(
        self,
        conn: psycopg.Connection[Any],
        tenant: TenantRef,
        user: str,
        query: str,
        k: int,
        policy_version: int,
        assembled: AssembledContext,
        withheld: int,
    ) -> None:
        """Append this retrieval to the audit trail (its own short transaction)."""
        assert self._audit is not None
        digest = hmac.new(self._query_key, query.encode(), hashlib.sha256).hexdigest()
        with tenant_transaction(conn, tenant.id, access="read", user=user) as tx:
            self._audit.append(
                tx,
                tenant.id,
                actor=user,
                action="retrieve",
                detail={
                    "query_digest": digest,
                    "k": k,
                    "chunk_ids": [hit.chunk_id for hit in assembled.chunks],
                    "withheld": withheld,
                    "omitted": assembled.omitted_chunks,
                    "memory_entries": len(assembled.memory),
                    "policy_version": policy_version,
                },
            )

    def _documents(
        self, conn: psycopg.Connection[Any], tenant_id: int, rows: Sequence[ChunkRow]
    ) -> tuple[dict[Any, str], dict[Any, DataKey]]:
        if not rows:
            return {}, {}
        docs = conn.execute(
            "SELECT id, key_id, sealed_meta FROM securerag.documents WHERE tenant_id = %s AND id = ANY(%s)",
            (tenant_id, list({r.document_id for r in rows})),
        ).fetchall()
        keys = self._keyring.keys(conn, tenant_id, {d[1] for d in docs})
        titles: dict[Any, str] = {}
        by_doc: dict[Any, DataKey] = {}
        for doc_id, key_id, sealed_meta in docs:
            key = keys.get(key_id)
            if key is None:
                continue
            by_doc[doc_id] = key
            try:
                meta = Aead(key).open(
                    bytes(sealed_meta), aad=document_aad(tenant_id=tenant_id, document_id=doc_id)
                )
                titles[doc_id] = self._safe_title(json.loads(meta))
            except DecryptionError:
                _log.warning("document metadata failed authentication", extra={"document_id": str(doc_id)})
        return titles, by_doc

    def _safe_title(self, meta: dict[str, Any]) -> str:
        # Titles are shown outside the data fences, so they are scanned too: at ingestion,
        # with the verdict sealed in the metadata, and again here only when that verdict is
        # missing or older than the running scanner.
        title = str(meta["title"])
        sealed: dict[str, Any] = meta.get("title_scan") or {}
        if is_stale(sealed, self._scanner.version):
            action = self._scanner.scan(title).action
        else:
            action = self._scanner.action_for(float(sealed["score"]))
        if action != Action.ALLOW:
            return "[title withheld: possible prompt injection]"
        return title

    def _open(
        self,
        tenant: TenantRef,
        read: ReadFilter,
        row: ChunkRow,
        keys: dict[Any, DataKey],
        *,
        unmask: bool,
    ) -> _Opened | None:
        attrs = DocumentAttrs(tenant.name, row.collection, Level(row.classification), tuple(row.acl))
        # Tripwire: the database already filtered; a row that fails here means a bug.
        if not read.allows(attrs):
            _log.error(
                "authorization tripwire: a row outside the reader's filter was returned",
                extra={"chunk_id": str(row.id)},
            )
            return None
        key = keys.get(row.document_id)
        try:
            if key is None:
                raise DecryptionError()
            payload = json.loads(
                Aead(key).open(
                    row.sealed,
                    aad=chunk_aad(
                        tenant_id=tenant.id,
                        document_id=row.document_id,
                        chunk_id=row.id,
                        ordinal=row.ordinal,
                        collection=row.collection,
                        classification=row.classification,
                        acl=row.acl,
                    ),
                )
            )
        except DecryptionError:
            # Fail closed: a chunk that does not authenticate is never shown.
            _log.warning("chunk failed authentication", extra={"chunk_id": str(row.id)})
            return None
        text = str(payload["text"])
        # Only the verdict sealed with the text is trusted (the row's columns could be
        # edited by whoever can write to the database).
        sealed_scan = payload.get("scan")
        shown = mask_pii(text, payload["pii"]) if not unmask and payload.get("pii") else text
        return _Opened(row, text, shown, sealed_scan)

    def _verdicts(self, tenant: TenantRef, items: list[_Judged]) -> list[ScanResult]:
        """The verdict of each item: the sealed one, or a rescan (one batch for all) when it is
        missing or older than the running scanner."""
        version = self._scanner.version
        stale = [i for i, item in enumerate(items) if is_stale(item.sealed, version)]
        fresh = dict(zip(stale, self._scanner.scan_many([items[i].text for i in stale]), strict=True))
        out: list[ScanResult] = []
        for i, item in enumerate(items):
            if i in fresh:
                if item.hidden_floor:
                    score, reasons = refreshed(item.sealed, fresh[i])
                else:
                    score, reasons = fresh[i].score, fresh[i].reasons
            else:
                assert item.sealed is not None
                score, reasons = float(item.sealed["score"]), tuple(map(str, item.sealed["reasons"]))
            out.append(ScanResult(score, self._scanner.action_for(score, tenant.name, item.level), reasons))
        return out
