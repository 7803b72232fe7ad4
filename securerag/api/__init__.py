"""The HTTP API."""

from securerag.api.app import create_app

__all__ = ["create_app"]
