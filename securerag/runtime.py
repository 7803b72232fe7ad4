"""The long-lived services of one process, built once from `Settings`.

The CLI builds one per command, the API one per application (in its
lifespan). The embedding model loads on first use only, so commands that do
not embed start fast.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

import psycopg

from securerag.apikeys import ApiKeys
from securerag.audit import AuditLog
from securerag.authz import Authorizer
from securerag.config import Settings
from securerag.crypto.keyring import Keyring
from securerag.crypto.master import load_key_provider
from securerag.crypto.secrets import ServiceSecrets
from securerag.db import Database, open_database
from securerag.ingestion import Ingestor, SentenceTransformerEmbedder
from securerag.memory import MemoryStore
from securerag.protocols import Embedder, KeyProvider, Scanner
from securerag.retrieval import Retriever, TokenCounter, VectorSearch
from securerag.scanning import InjectionScanner

EMBEDDING_DIMENSION = 384
"""The schema stores vector(384)."""


class Runtime:
    """Keys, database, authorizer, scanner, embedder, and the pipelines over them."""

    def __init__(
        self,
        settings: Settings,
        *,
        keys: KeyProvider | None = None,
        db: Database | None = None,
        embedder: Embedder | None = None,
        scanner: Scanner | None = None,
        search: VectorSearch | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> None:
        """Args:
        count_tokens: counts the context budget (default: `settings.context_tokenizer`,
            else the embedding model's tokenizer).
        """
        self.settings = settings
        self._count_tokens = count_tokens
        self.keys = keys or load_key_provider(settings)
        self.db = db or open_database(settings, self.keys)
        with self.db.connect() as conn:
            self.secrets = ServiceSecrets.load(conn, self.keys)
        self.keyring = Keyring(self.keys)
        self.audit = AuditLog(self.secrets)
        self.api_keys = ApiKeys(self.secrets)
        self.authorizer = Authorizer()
        self.scanner: Scanner = scanner or InjectionScanner(settings.scan_thresholds_config())
        self.search = search or VectorSearch()
        self.memory = MemoryStore(
            self.keyring,
            default_ttl_seconds=settings.memory_default_ttl_seconds,
            ttl_by_tenant=settings.memory_ttl_by_tenant,
            audit=self.audit,
            scanner=self.scanner,
        )
        self._embedder = embedder
        self._embedder_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Runtime(db={self.db!r})"

    @property
    def embedder(self) -> Embedder:
        """The embedding model, loaded on first use."""
        with self._embedder_lock:
            if self._embedder is None:
                embedder = SentenceTransformerEmbedder(self.settings.embedder)
                if embedder.dimension != EMBEDDING_DIMENSION:
                    from securerag.errors import ConfigError

                    raise ConfigError(
                        f"SECURERAG_EMBEDDER produces {embedder.dimension}-dimensional vectors; "
                        f"the schema stores {EMBEDDING_DIMENSION}"
                    )
                self._embedder = embedder
            return self._embedder

    @cached_property
    def ingestor(self) -> Ingestor:
        """The ingestion pipeline."""
        return Ingestor(
            embedder=self.embedder,
            scanner=self.scanner,
            keyring=self.keyring,
            audit=self.audit,
            secrets=self.secrets,
        )

    @cached_property
    def retriever(self) -> Retriever:
        """The retrieval pipeline."""
        return Retriever(
            embedder=self.embedder,
            scanner=self.scanner,
            keyring=self.keyring,
            authorizer=self.authorizer,
            memory=self.memory,
            search=self.search,
            context_tokens=self.settings.context_max_tokens,
            count_tokens=self._context_counter(),
            audit=self.audit,
            secrets=self.secrets,
        )

    def _context_counter(self) -> TokenCounter | None:
        if self._count_tokens is not None:
            return self._count_tokens
        if self.settings.context_tokenizer is None:
            return None  # the embedding model's tokenizer
        from securerag.retrieval.tokens import load_token_counter

        return load_token_counter(self.settings.context_tokenizer)

    def connect(self) -> psycopg.Connection[Any]:
        """A query-role connection."""
        return self.db.connect()
