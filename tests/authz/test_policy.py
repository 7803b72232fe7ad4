"""Parsing and validating policy lines."""

from __future__ import annotations

import pytest

from securerag.authz import Permission, RoleGrant, parse_policy
from securerag.authz.compiler import MAX_ROLE_DEPTH, build_policy
from securerag.errors import PolicyError


def test_parses_every_form() -> None:
    """Each line form of authorization.md parses to its value, comments and blanks skipped."""
    lines = parse_policy(
        [
            "# comment",
            "",
            "g, alice, role:analyst, acme",
            "g, role:analyst, role:staff, acme",
            "p, role:staff, acme, collection:finance/*, read",
            "p, bob, acme, collection:finance/secret, read, deny",
            "p, role:staff, acme, clearance:Confidential, read",
            "p, carol, acme, pii, read",
            "p, carol, acme, admin, write",
        ],
        tenant="acme",
    )
    assert lines == [
        RoleGrant("alice", "role:analyst", "acme"),
        RoleGrant("role:analyst", "role:staff", "acme"),
        Permission("role:staff", "acme", "collection:finance/*", "read"),
        Permission("bob", "acme", "collection:finance/secret", "read", "deny"),
        Permission("role:staff", "acme", "clearance:confidential", "read"),
        Permission("carol", "acme", "pii", "read"),
        Permission("carol", "acme", "admin", "write"),
    ]
    assert lines[3].csv() == "p, bob, acme, collection:finance/secret, read, deny"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("g, alice, role:x, other", "tenant 'other'"),
        ("p, alice, other, collection:a, read", "tenant 'other'"),
        ("p, alice, acme, collection:fin*ance, read", "at the very end"),
        ("p, alice, acme, collection:*fin, read", "at the very end"),
        ("p, alice, acme, collection:a**, read", "at the very end"),
        ("p, alice, acme, collection:a, write", "action 'read'"),
        ("p, alice, acme, admin, read", "action 'write'"),
        ("p, alice, acme, clearance:secret, read", "unknown classification"),
        ("p, alice, acme, clearance:internal, read, deny", "only collection lines"),
        ("p, alice, acme, pii, read, deny", "only collection lines"),
        ("p, alice, acme, collection:a, read, maybe", "effect"),
        ("p, alice, acme, documents, read", "unknown object"),
        ("g, alice, analyst, acme", "not a role"),
        ("g, alice, role:x", "expected 'g"),
        ("q, alice, acme, collection:a, read", "starts with 'p' or 'g'"),
        ("p, al ice, acme, collection:a, read", "invalid user or role"),
        ("g, role:x, role:x, acme", "member of itself"),
    ],
    ids=[
        "g-other-tenant",
        "p-other-tenant",
        "star-in-middle",
        "star-first",
        "two-stars",
        "collection-write",
        "admin-read",
        "bad-level",
        "deny-clearance",
        "deny-pii",
        "bad-effect",
        "unknown-object",
        "role-without-prefix",
        "g-short",
        "bad-ptype",
        "space-in-name",
        "self-member",
    ],
)
def test_bad_line_rejects_whole_file_with_line_number(line: str, message: str) -> None:
    """A malformed line, or one naming another tenant, rejects the file and names its line."""
    with pytest.raises(PolicyError, match=message) as info:
        parse_policy(["p, ok, acme, collection:fine, read", "", line], tenant="acme")
    assert info.value.line == 3
    assert str(info.value).startswith("line 3:")


def test_literal_like_characters_are_accepted() -> None:
    """`%`, `_` and `\\` are ordinary characters in collection globs."""
    lines = parse_policy([r"p, a, acme, collection:100%_done\x/*, read"], tenant="acme")
    assert isinstance(lines[0], Permission)
    assert lines[0].argument == r"100%_done\x/*"


def test_role_nesting_deeper_than_the_limit_is_rejected() -> None:
    """A role chain longer than MAX_ROLE_DEPTH is refused when the policy is built."""
    chain = [RoleGrant("alice", "role:r0", "acme")]
    chain += [RoleGrant(f"role:r{i}", f"role:r{i + 1}", "acme") for i in range(MAX_ROLE_DEPTH)]
    with pytest.raises(PolicyError, match="nested"):
        build_policy("acme", chain)
    build_policy("acme", chain[:-1])  # exactly at the limit is fine
