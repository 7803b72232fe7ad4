"""The `securerag` console script."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import typer

from securerag.errors import SecureRagError


def main() -> None:
    """Entry point: run the CLI; errors become one line on stderr and a non-zero exit."""
    from securerag.cli.main import app

    warnings.filterwarnings("ignore")  # library warnings are not the user's business here
    logging.basicConfig(level=logging.WARNING, format="securerag: %(levelname)s: %(message)s")
    debug = bool(os.environ.get("SECURERAG_DEBUG"))
    try:
        result = typer.main.get_command(app).main(prog_name="securerag", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        print("securerag: interrupted", file=sys.stderr)
        sys.exit(130)
    except SecureRagError as exc:
        if debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"securerag: error: {message}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        if _is_usage_error(exc):
            print(
                f"securerag: error: {exc.format_message()} (see --help)",  # type: ignore[attr-defined]
                file=sys.stderr,
            )
            sys.exit(int(getattr(exc, "exit_code", 2)))
        if debug:
            raise
        print(
            f"securerag: internal error ({type(exc).__name__}); rerun with SECURERAG_DEBUG=1 for details",
            file=sys.stderr,
        )
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)


def _is_usage_error(exc: BaseException) -> bool:
    # Typer vendors its own click; recognise its usage errors by shape, not by class.
    return hasattr(exc, "format_message") and hasattr(exc, "exit_code")


__all__ = ["main"]
