"""Structured logs for the service: one JSON object per line.

Log records carry ids, counts, routes and timings. Nothing in securerag logs
chunk text, queries, memory content or keys; messages are fixed strings and
the variable parts go in `extra` fields.
"""

from __future__ import annotations

from typing import Any, Literal

LogFormat = Literal["json", "text"]


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
    handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "loggers": {
            "securerag": {"handlers": ["main"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["main"], "level": level, "propagate": False},
            # Access lines carry raw paths and client addresses; securerag logs each request itself.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
