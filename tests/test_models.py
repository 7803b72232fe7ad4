"""Validation of names: tenants, subjects, collections, levels."""

from __future__ import annotations

import pytest

from securerag.errors import InvalidInput
from securerag.models import Level, Principal, validate_collection, validate_subject, validate_tenant


@pytest.mark.parametrize(
    "name",
    ["finance", "finance/reports/2024", "100%_done", "back\\slash", "é/ü", "\U0001f600", "\U00020000/x"],
    ids=["plain", "path", "like-chars", "backslash", "accents", "emoji", "cjk-ext-b"],
)
def test_valid_collections(name: str) -> None:
    """Slash paths of ordinary characters (LIKE metacharacters included) are collections."""
    assert validate_collection(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/lead",
        "trail/",
        "a//b",
        "a*b",
        "a,b",
        "a'b",
        "a\x00b",
        " pad",
        "x\ufdd0",
        "x\U0010ffff",
        "x\ufffe",
    ],
    ids=[
        "empty",
        "leading-slash",
        "trailing-slash",
        "empty-segment",
        "star",
        "comma",
        "quote",
        "nul",
        "whitespace",
        "nonchar-fdd0",
        "nonchar-10ffff",
        "nonchar-fffe",
    ],
)
def test_invalid_collections(name: str) -> None:
    """Names that would be ambiguous in policies or key ranges are refused."""
    with pytest.raises(InvalidInput):
        validate_collection(name)


@pytest.mark.parametrize(("name", "role"), [("alice", False), ("role:staff", True), ("a.b@c.example", False)])
def test_valid_subjects(name: str, role: bool) -> None:
    """Users and roles (prefixed 'role:') validate."""
    assert validate_subject(name, role=role) == name


@pytest.mark.parametrize(
    "name", ["", "has space", "role:", "a,b", "x" * 200], ids=["empty", "space", "bare-role", "comma", "long"]
)
def test_invalid_subjects(name: str) -> None:
    """Names outside the subject alphabet are refused."""
    with pytest.raises(InvalidInput):
        validate_subject(name)


def test_principal_rejects_roles_and_bad_tenants() -> None:
    """A principal is a user (not a role) in a well-formed tenant."""
    with pytest.raises(InvalidInput):
        Principal("acme", "role:admin")
    with pytest.raises(InvalidInput):
        Principal("bad tenant", "alice")
    assert validate_tenant("acme-2") == "acme-2"


def test_levels_parse_and_order() -> None:
    """Levels parse case-insensitively and are ordered public < ... < restricted."""
    assert Level.parse("Confidential") is Level.CONFIDENTIAL
    assert Level.PUBLIC < Level.INTERNAL < Level.CONFIDENTIAL < Level.RESTRICTED
    with pytest.raises(InvalidInput, match="expected one of"):
        Level.parse("secret")
