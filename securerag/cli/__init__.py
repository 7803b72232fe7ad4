"""The `securerag` console script."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import click
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
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        print(f"securerag: error: {exc.format_message()} (see --help)", file=sys.stderr)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        print("securerag: aborted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("securerag: interrupted", file=sys.stderr)
        sys.exit(130)
    except SecureRagError as exc:
        if debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"securerag: error: {message}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        if debug:
            raise
        print(f"securerag: internal error ({type(exc).__name__}); rerun with SECURERAG_DEBUG=1 "
              "for details", file=sys.stderr)
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)


__all__ = ["main"]
