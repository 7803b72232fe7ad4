"""securerag: a secure retrieval layer for RAG.

`SecureRetriever` and `Principal` are the Python API for chatbot backends
(`securerag.library`); they are imported on first use, so `import securerag`
stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from securerag.library import SecureRetriever
    from securerag.models import Principal

__all__ = ["Principal", "SecureRetriever"]


def __getattr__(name: str) -> Any:
    if name == "SecureRetriever":
        from securerag.library import SecureRetriever

        return SecureRetriever
    if name == "Principal":
        from securerag.models import Principal

        return Principal
    raise AttributeError(f"module 'securerag' has no attribute {name!r}")
