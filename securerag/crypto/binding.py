"""What each kind of ciphertext is bound to (its AAD), defined in one place.

A ciphertext opens only under the AAD it was sealed with, so binding it to the
row's identity and labels means a ciphertext moved to another row, or a row
whose collection, classification or acl was changed behind securerag's back,
fails to decrypt instead of being shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from securerag.crypto.aead import encode_aad


def chunk_aad(
    *,
    tenant_id: int,
    document_id: uuid.UUID,
    chunk_id: uuid.UUID,
    ordinal: int,
    collection: str,
    classification: int,
    acl: Iterable[str],
) -> bytes:
    """AAD of a chunk's text."""
    return encode_aad(
        "securerag/chunk/v1",
        tenant_id,
        document_id,
        chunk_id,
        ordinal,
        collection,
        int(classification),
        "\n".join(sorted(acl)),
    )


def document_aad(*, tenant_id: int, document_id: uuid.UUID) -> bytes:
    """AAD of a document's sealed metadata (title, source)."""
    return encode_aad("securerag/document-meta/v1", tenant_id, document_id)


def memory_aad(*, tenant_id: int, user: str, session_id: str, entry_id: uuid.UUID, role: str) -> bytes:
    """AAD of one session-memory entry."""
    return encode_aad("securerag/memory/v1", tenant_id, user, session_id, entry_id, role)
