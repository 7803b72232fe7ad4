"""Structured logs for the service: one JSON object per line.

Log records carry ids, counts, routes and timings. Nothing in securerag logs
chunk text, queries, memory content or keys; messages are fixed strings and
the variable parts go in `extra` fields.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

LogFormat = Literal["json", "text"]


class NoExceptionText(logging.Filter):
    """Replace a record's traceback and exception message with the exception's type.

    Third-party errors (a database driver, the ASGI server's "Exception in ASGI
    application") put values into their messages and tracebacks show local data;
    the type is enough to find the request by its id.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def log_config(fmt: LogFormat = "json", level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for securerag and uvicorn (pass as uvicorn's `log_config`)."""
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "stream": "ext://sys.stderr",
        "filters": ["no_exception_text"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"no_exception_text": {"()": "securerag.logs.NoExceptionText"}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "loggers": {
            "securerag": {"handlers": ["main"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["main"], "level": level, "propagate": False},
            # Access lines carry raw paths and client addresses; securerag logs each request itself.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
