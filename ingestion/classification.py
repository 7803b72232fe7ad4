"""Classification: find personal data and secrets, and raise the level for them.

A document's level is the declared level or higher: personal data raises it to
at least `confidential`, secrets to `restricted`. `auto` starts from `internal`
(a document nobody labelled is not public).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import phonenumbers

from securerag.ingestion.secret_detection import find_secrets
from securerag.models import Level

Category = Literal["pii", "secret"]

PHONE_REGION = "US"
"""Region for phone numbers written without a country code (+CC numbers are read anywhere)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected span: what it is and where."""

    kind: str
    category: Category
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Classification:
    """The level a document gets and the findings that decided it."""

    level: Level
    findings: tuple[Finding, ...]

    @property
    def kinds(self) -> dict[str, int]:
        """How many findings of each kind."""
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", match.group(0))
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn(digits)


def _iban(match: re.Match[str]) -> bool:
    raw = match.group(0).replace(" ", "")
    moved = raw[4:] + raw[:4]
    numeric = "".join(str(int(c, 36)) for c in moved)
    return 15 <= len(raw) <= 34 and int(numeric) % 97 == 1


def _ipv4(match: re.Match[str]) -> bool:
    try:
        address = ipaddress.IPv4Address(match.group(0))
    except ValueError:
        return False
    # Loopback, unspecified and documentation ranges say nothing about a person.
    return not (address.is_loopback or address.is_unspecified or str(address).startswith("0."))


def _phone(match: re.Match[str]) -> bool:
    # The regex only proposes candidates cheaply; libphonenumber decides.
    digits = re.sub(r"\D", "", match.group(0))
    if not 7 <= len(digits) <= 15 or _IPV4.fullmatch(match.group(0).strip()) is not None:
        return False
    try:
        number = phonenumbers.parse(match.group(0), PHONE_REGION)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


_PLACEHOLDER = re.compile(r"^(?:[<${%*]|x{4,}$|\.\.\.|changeme$|password$|secret$|none$|null$)", re.I)


_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")

_Check = Callable[[re.Match[str]], bool]
_DETECTORS: tuple[tuple[str, Category, re.Pattern[str], _Check | None], ...] = (
    (
        "email",
        "pii",
        re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        None,
    ),
    ("credit_card", "pii", re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"), _card),
    (
        "us_ssn",
        "pii",
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
        None,
    ),
    ("iban", "pii", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), _iban),
    ("ip_address", "pii", _IPV4, _ipv4),
    (
        "phone",
        "pii",
        re.compile(
            r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,3}(?![\w.])"
        ),
        _phone,
    ),
    # Secrets detect-secrets (see secret_detection) misses: Google API keys, `sk-` tokens,
    # and unquoted assignments in config shown in documents (it wants quotes there).
    ("google_api_key", "secret", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), None),
    ("api_token", "secret", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), None),
    (
        "secret_keyword",
        "secret",
        re.compile(
            r"(?i)\b\w*(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)\b"
            r"\s*[:=]\s*[\"']?(?P<value>[^\s\"',;]{6,})"
        ),
        lambda m: _PLACEHOLDER.match(m.group("value")) is None,
    ),
)


def detect(text: str) -> list[Finding]:
    """Every personal-data and secret span in `text`, in order of position."""
    findings: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def claim(kind: str, category: Category, start: int, end: int) -> None:
        # The first (more specific) detector to claim a span keeps it.
        if not any(start < t_end and t_start < end for t_start, t_end in taken):
            taken.append((start, end))
            findings.append(Finding(kind, category, start, end))

    for kind, start, end in find_secrets(text):
        claim(kind, "secret", start, end)
    for kind, category, pattern, check in _DETECTORS:
        for match in pattern.finditer(text):
            if check is None or check(match):
                claim(kind, category, *match.span())
    return sorted(findings, key=lambda f: f.start)


def classify(text: str, declared: Level | None) -> Classification:
    """The document's level: `declared` (or `internal` for auto), raised by findings."""
    findings = detect(text)
    level = Level.INTERNAL if declared is None else declared
    if any(f.category == "pii" for f in findings):
        level = max(level, Level.CONFIDENTIAL)
    if any(f.category == "secret" for f in findings):
        level = max(level, Level.RESTRICTED)
    return Classification(level=level, findings=tuple(findings))
