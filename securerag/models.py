"""Values shared by every layer: levels, principals, documents, scan results."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from securerag.errors import InvalidInput


class Level(enum.IntEnum):
    """Classification levels, ordered: a reader needs clearance >= the level."""

    PUBLIC = 0
    INTERNAL = 1
    CONFIDENTIAL = 2
    RESTRICTED = 3

    @classmethod
    def parse(cls, name: str) -> Level:
        """Return the level called `name` (case-insensitive)."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            allowed = ", ".join(level.label for level in cls)
            raise InvalidInput(f"unknown classification {name!r}; expected one of {allowed}") from None

    @property
    def label(self) -> str:
        """The lower-case name used in policies and the API."""
        return self.name.lower()


class Action(enum.IntEnum):
    """What happens to a piece of text after an injection scan."""

    ALLOW = 0
    FLAG = 1
    WITHHOLD = 2

    @property
    def label(self) -> str:
        """The lower-case name used in the API."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The verdict of an injection scan: a score in [0, 1], an action and why."""

    score: float
    action: Action
    reasons: tuple[str, ...] = ()


# Names users and roles may take. Restricting the alphabet keeps policy CSV,
# audit lines and SQL arrays unambiguous.
_SUBJECT = re.compile(r"(role:)?[A-Za-z0-9][A-Za-z0-9._@+\-/]{0,127}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,62}")
# Collections are slash paths. `*` is reserved for policy globs; commas and
# quotes would break CSV policy lines; control characters are never wanted.
_COLLECTION_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f*,\"']")


def _is_noncharacter(ch: str) -> bool:
    # U+FDD0..U+FDEF and the last two code points of every plane. Refusing them
    # keeps U+10FFFF free as an upper bound above every name (retrieval's key ranges).
    cp = ord(ch)
    return 0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE


def require_text(text: str, what: str) -> str:
    """Return `text` if it is valid Unicode (no lone surrogates, which UTF-8 cannot hold)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid Unicode text") from None
    return text


def validate_tenant(name: str) -> str:
    """Return `name` if it is a valid tenant name, else raise `InvalidInput`."""
    if not _TENANT.fullmatch(name):
        raise InvalidInput(
            f"invalid tenant name {name!r}: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_subject(name: str, *, role: bool | None = None) -> str:
    """Return `name` if it is a valid user (or, with `role=True`, role) name."""
    if not _SUBJECT.fullmatch(name):  # ASCII-only alphabet: no surrogates get through
        raise InvalidInput(
            f"invalid user or role name {name!r}: letters, digits and . _ @ + - / only, "
            "roles start with 'role:'"
        )
    is_role = name.startswith("role:")
    if role is True and not is_role:
        raise InvalidInput(f"{name!r} is not a role: role names start with 'role:'")
    if role is False and is_role:
        raise InvalidInput(f"{name!r} is a role, a user name was expected")
    return name


def validate_collection(name: str) -> str:
    """Return `name` if it is a valid collection path, else raise `InvalidInput`."""
    require_text(name, "the collection")
    if (
        not name
        or len(name) > 512
        or name != name.strip()
        or name.startswith("/")
        or name.endswith("/")
        or "//" in name
        or _COLLECTION_FORBIDDEN.search(name)
        or any(_is_noncharacter(ch) for ch in name)
    ):
        raise InvalidInput(
            f"invalid collection {name!r}: a slash path such as 'finance/reports', "
            "without '*', commas, quotes, control characters, noncharacters or empty segments"
        )
    return name


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user inside a tenant."""

    tenant: str
    user: str

    def __post_init__(self) -> None:
        validate_tenant(self.tenant)
        validate_subject(self.user, role=False)


@dataclass(frozen=True, slots=True)
class DocumentAttrs:
    """The attributes the read decision looks at, shared by a document and its chunks."""

    tenant: str
    collection: str
    classification: Level
    acl: tuple[str, ...] = field(default=())
