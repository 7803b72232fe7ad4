"""Who runs the CLI, as the audit trail names them."""

from __future__ import annotations

import getpass


def operator() -> str:
    """`cli:<login name>` (the CLI acts as the operator)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
