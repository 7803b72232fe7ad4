"""Policy lines: parsing and validating the Casbin CSV of authorization.md.

    g, SUBJ, ROLE, T                          SUBJ has ROLE in tenant T
    p, SUBJ, T, collection:GLOB, read[, deny] allow (or deny) reading a collection glob
    p, SUBJ, T, clearance:LEVEL, read         clearance up to LEVEL
    p, SUBJ, T, pii, read                     may see personal data unmasked
    p, SUBJ, T, admin, write                  may ingest, delete and change policy in T

A file is accepted whole or not at all: the first bad line is reported with
its number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from securerag.errors import InvalidInput, PolicyError
from securerag.models import Level, require_text, validate_collection, validate_subject

Effect = Literal["allow", "deny"]
ObjectKind = Literal["collection", "clearance", "pii", "admin"]


@dataclass(frozen=True, slots=True)
class RoleGrant:
    """`g, SUBJ, ROLE, T`: `subject` holds `role` in `tenant`."""

    subject: str
    role: str
    tenant: str

    @property
    def fields(self) -> tuple[str, ...]:
        """Casbin's v0.. columns."""
        return (self.subject, self.role, self.tenant)

    def csv(self) -> str:
        """The canonical CSV line."""
        return ", ".join(("g", *self.fields))


@dataclass(frozen=True, slots=True)
class Permission:
    """`p, SUBJ, T, OBJ, ACT[, EFT]`."""

    subject: str
    tenant: str
    obj: str
    act: str
    effect: Effect = "allow"

    @property
    def kind(self) -> ObjectKind:
        """Which of the four permission forms this is."""
        if self.obj.startswith("collection:"):
            return "collection"
        if self.obj.startswith("clearance:"):
            return "clearance"
        return "pii" if self.obj == "pii" else "admin"

    @property
    def argument(self) -> str:
        """The glob of a collection line, the level of a clearance line, else ''."""
        return self.obj.partition(":")[2]

    @property
    def fields(self) -> tuple[str, ...]:
        """Casbin's v0.. columns (the effect is always stored)."""
        return (self.subject, self.tenant, self.obj, self.act, self.effect)

    def csv(self) -> str:
        """The canonical CSV line (`, deny` only when it is a deny)."""
        fields = self.fields if self.effect == "deny" else self.fields[:4]
        return ", ".join(("p", *fields))


PolicyLine = RoleGrant | Permission


def validate_glob(glob: str) -> str:
    """Return `glob` if it is an exact collection or a prefix ending in one `*`."""
    if glob == "*":
        return glob
    star = glob.find("*")
    if star == -1:
        return validate_collection(glob)
    if star != len(glob) - 1:
        raise InvalidInput(f"collection glob {glob!r}: '*' is only allowed once, at the very end")
    prefix = glob[:-1]
    # A prefix may end in '/' (finance/*) or mid-name (fin*); check it as a name.
    validate_collection(prefix.rstrip("/") or "x")
    if prefix.startswith("/") or "//" in prefix:
        raise InvalidInput(f"collection glob {glob!r}: empty path segment")
    return glob


def parse_fields(fields: list[str], *, tenant: str) -> PolicyLine:
    """Validate one line's fields (already split) for `tenant`."""
    if not fields or fields[0] not in ("p", "g"):
        raise InvalidInput("a policy line starts with 'p' or 'g'")
    if fields[0] == "g":
        if len(fields) != 4:
            raise InvalidInput("expected 'g, SUBJ, ROLE, TENANT'")
        _, subject, role, line_tenant = fields
        _same_tenant(line_tenant, tenant)
        validate_subject(subject)
        validate_subject(role, role=True)
        if subject == role:
            raise InvalidInput(f"{role!r} cannot be a member of itself")
        return RoleGrant(subject, role, line_tenant)
    if len(fields) not in (5, 6):
        raise InvalidInput("expected 'p, SUBJ, TENANT, OBJECT, ACTION[, deny]'")
    _, subject, line_tenant, obj, act, *rest = fields
    _same_tenant(line_tenant, tenant)
    validate_subject(subject)
    effect = rest[0] if rest else "allow"
    if effect not in ("allow", "deny"):
        raise InvalidInput(f"effect must be 'allow' or 'deny', not {effect!r}")
    line = Permission(subject, line_tenant, obj, act, effect)  # type: ignore[arg-type]
    if obj.startswith("collection:"):
        validate_glob(line.argument)
        expected_act = "read"
    elif obj.startswith("clearance:"):
        line = Permission(
            subject, line_tenant, f"clearance:{Level.parse(line.argument).label}", act, line.effect
        )
        expected_act = "read"
    elif obj == "pii":
        expected_act = "read"
    elif obj == "admin":
        expected_act = "write"
    else:
        raise InvalidInput(f"unknown object {obj!r}: expected collection:GLOB, clearance:LEVEL, pii or admin")
    if act != expected_act:
        raise InvalidInput(f"{line.kind} lines take the action {expected_act!r}, not {act!r}")
    if effect == "deny" and line.kind != "collection":
        raise InvalidInput("only collection lines can be denies")
    return line


def _same_tenant(line_tenant: str, tenant: str) -> None:
    if line_tenant != tenant:
        raise InvalidInput(f"the line names tenant {line_tenant!r}, not {tenant!r}")


def parse_policy(lines: Iterable[str], *, tenant: str) -> list[PolicyLine]:
    """Parse CSV policy lines for `tenant`; blank lines and `#` comments are skipped.

    Raises:
        PolicyError: on the first malformed line, or one naming another tenant,
            with its 1-based line number.
    """
    parsed: list[PolicyLine] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            require_text(text, "the line")
            fields = [f.strip() for f in next(csv.reader([text], skipinitialspace=True))]
            parsed.append(parse_fields(fields, tenant=tenant))
        except (InvalidInput, csv.Error) as exc:
            raise PolicyError(str(exc), line=number) from None
    return parsed


def from_row(ptype: str, values: tuple[str, ...]) -> PolicyLine:
    """Rebuild a line from stored Casbin columns (already validated at load)."""
    if ptype == "g":
        return RoleGrant(values[0], values[1], values[2])
    effect: Effect = "deny" if values[4] == "deny" else "allow"
    return Permission(values[0], values[1], values[2], values[3], effect)
