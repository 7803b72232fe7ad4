"""Detectors and classification levels."""

from __future__ import annotations

import pytest

from securerag.ingestion import classify, detect
from securerag.models import Level


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to jane.doe@example.com today", "email"),
        ("call +49 30 1234 5678 now", "phone"),
        ("card 4111 1111 1111 1111 on file", "credit_card"),
        ("SSN 123-45-6789 on record", "us_ssn"),
        ("pay to DE89 3704 0044 0532 0130 00 please", "iban"),
        ("client at 203.0.113.45 logged in", "ip_address"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", "private_key"),
        ("key AKIAQ3EGRXPZ7EXAMPLE leaked", "aws_access_key"),
        ("token ghp_" + "a" * 36, "github_token"),
        ("password = hunter2hunter2", "secret_keyword"),
        ("auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.abcdefghijk", "json_web_token"),
        ("bot xoxb-123456789012-abcdefghijk", "slack_token"),
        ("postgres://admin:hunter2pass@db.example.com/x", "basic_auth_credentials"),
        ("London office +44 20 7946 0958", "phone"),
        ("tel (212) 555-0199", "phone"),
        ("db_password: s3cr3t-Value9", "secret_keyword"),
    ],
    ids=[
        "email",
        "phone",
        "card",
        "ssn",
        "iban",
        "ip",
        "pem",
        "aws",
        "github",
        "password",
        "jwt",
        "slack",
        "url-credentials",
        "phone-uk",
        "phone-us",
        "unquoted-config",
    ],
)
def test_detects(text: str, kind: str) -> None:
    """Each detector finds its kind of data."""
    assert kind in {f.kind for f in detect(text)}


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails Luhn",
        "version 1.2.3 released on 2024-01-15",
        "invoice 123-45-678 is short",
        "DE89 3704 0044 0532 0130 01 has a bad checksum",
        "loopback 127.0.0.1 is not a person",
        "set password = <your password> in the config",
        "the word password alone",
        "call 123-456-7890 (no such area code)",
        "ISBN 978-3-16-148410-0",
        "build 20240115.1234",
        "The password policy needs twelve characters.",
    ],
    ids=[
        "luhn",
        "version-date",
        "short-ssn",
        "iban-checksum",
        "loopback",
        "placeholder",
        "word",
        "invalid-area-code",
        "isbn",
        "build-number",
        "password-prose",
    ],
)
def test_no_false_positive(text: str) -> None:
    """Look-alikes are not reported."""
    assert detect(text) == []


@pytest.mark.parametrize(
    ("text", "declared", "level"),
    [
        ("plain text", None, Level.INTERNAL),
        ("plain text", Level.PUBLIC, Level.PUBLIC),
        ("mail me at a@b.example", Level.PUBLIC, Level.CONFIDENTIAL),
        ("key AKIAQ3EGRXPZ7EXAMPLE", Level.INTERNAL, Level.RESTRICTED),
        ("mail a@b.example", Level.RESTRICTED, Level.RESTRICTED),
    ],
    ids=["auto", "declared", "pii-raises", "secret-raises", "never-lowers"],
)
def test_level_is_declared_or_higher(text: str, declared: Level | None, level: Level) -> None:
    """Personal data raises to confidential, secrets to restricted, nothing lowers."""
    assert classify(text, declared).level == level


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "unit",
    ["%", "a", "1", "1 ", "a@", "-", "eyJ", "A1"],
    ids=["percent", "letters", "digits", "spaced-digits", "at", "dashes", "jwt-ish", "iban-ish"],
)
def test_detectors_are_linear_on_adversarial_runs(unit: str) -> None:
    """A megabyte of one repeated unit is scanned in linear time (a quadratic regex would hang here)."""
    detect(unit * (1_000_000 // len(unit)))
