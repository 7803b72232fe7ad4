"""Secrets in text, found by detect-secrets (Yelp), on the lines that could hold one.

detect-secrets runs ~25 plugins per line (cloud keys, API tokens, JWTs,
private keys, passwords in config, ...). Prose rarely holds a secret, so one
cheap prefilter picks the lines worth scanning; the high-entropy plugins are
left out because base64 and hex in ordinary documents would flood them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

# Anything a plugin below could match needs one of these on its line.
_PREFILTER = re.compile(
    r"(?i:pass|pwd|secret|token|key|auth|bearer|credential|private)"
    r"|AKIA|ASIA|A3T|gh[pousr]_|github_pat_|glpat-|xox[abprs]-|[rs]k_(?:live|test)_|sk-|eyJ|BEGIN"
    r"|://[^/\s:@]+:[^/\s@]+@|SG\.|npm_|pypi-|AIza|AccountKey=|discord|hooks\.slack|[0-9]{8,10}:AA"
)
_SKIP = ("Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector")
# Some plugins' patterns are superlinear on long runs (the JWT one on "eyJeyJ..."):
# lines are scanned in bounded, overlapping windows. A secret longer than the
# overlap that straddles two windows is still caught by its start.
_WINDOW = 4_096
_OVERLAP = 1_024


@cache
def _plugins() -> list[dict[str, Any]]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
    names = sorted(c.__name__ for c in classes)
    return [{"name": n} for n in names if n not in _SKIP]


def find_secrets(text: str) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of every secret detect-secrets finds in `text`."""
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    candidate_lines: dict[int, tuple[int, str]] = {}
    for match in _PREFILTER.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line_end = len(text) if line_end == -1 else line_end
        # Long lines are tiled into windows that overlap by _OVERLAP; a match belongs to
        # the tile it starts in, so a secret of up to _OVERLAP characters lies whole in it.
        step = _WINDOW - _OVERLAP
        start = line_start + (match.start() - line_start) // step * step
        if start not in candidate_lines:
            end = min(line_end, start + _WINDOW)
            candidate_lines[start] = (start, text[start:end])
    if not candidate_lines:
        return
    with transient_settings({"plugins_used": _plugins()}):
        for start, line in candidate_lines.values():
            for secret in scan_line(line):
                value = secret.secret_value or ""
                at = line.find(value) if value else -1
                begin, finish = (
                    (start + at, start + at + len(value)) if at >= 0 else (start, start + len(line))
                )
                yield _kind(secret.type), begin, finish


def _kind(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")
