"""The policy compiler: from one tenant's policy and a user, the read filter.

Casbin cannot turn a policy into a database filter, so this module does it,
as a pure function. The filter is what authorization.md's read decision needs,
in a form SQL can bind as parameters:

    tenant = T
    AND classification <= clearance
    AND NOT collection LIKE ANY(deny patterns)
    AND (collection LIKE ANY(allow patterns) OR acl && subjects)

Globs become LIKE patterns with `\\`, `%` and `_` escaped, so a collection name
containing them matches only itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from securerag.authz.policy import Permission, PolicyLine, RoleGrant
from securerag.errors import PolicyError
from securerag.models import DocumentAttrs, Level

MAX_ROLE_DEPTH = 32
"""Longest chain of nested roles a policy may contain (checked when it is loaded)."""


def glob_to_like(glob: str) -> str:
    """The SQL LIKE pattern (escape character `\\`) matching what Casbin's keyMatch does."""
    prefix, star = (glob[:-1], True) if glob.endswith("*") else (glob, False)
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%" if star else escaped


def glob_matches(glob: str, collection: str) -> bool:
    """keyMatch for our globs: exact, or prefix followed by any run of characters."""
    if glob.endswith("*"):
        return collection.startswith(glob[:-1])
    return collection == glob


@dataclass(frozen=True, slots=True)
class ReadFilter:
    """What one user may read in one tenant, ready for SQL and for RLS."""

    subjects: tuple[str, ...]
    clearance: Level
    allow_globs: tuple[str, ...]
    deny_globs: tuple[str, ...]

    @property
    def allow_patterns(self) -> list[str]:
        """Allow globs as LIKE patterns."""
        return [glob_to_like(g) for g in self.allow_globs]

    @property
    def deny_patterns(self) -> list[str]:
        """Deny globs as LIKE patterns."""
        return [glob_to_like(g) for g in self.deny_globs]

    @property
    def reads_nothing(self) -> bool:
        """True when no document can pass (no allow line and no subject to share with)."""
        return not self.allow_globs and not self.subjects

    def allows(self, doc: DocumentAttrs) -> bool:
        """The same decision, evaluated in Python (a tripwire over query results)."""
        if doc.classification > self.clearance:
            return False
        if any(glob_matches(g, doc.collection) for g in self.deny_globs):
            return False
        return any(glob_matches(g, doc.collection) for g in self.allow_globs) or bool(
            set(doc.acl) & set(self.subjects)
        )

    def rls_settings(self) -> dict[str, int | list[str]]:
        """Transaction settings the row-level security policies read."""
        return {
            "clearance": int(self.clearance),
            "subjects": list(self.subjects),
            "allow": self.allow_patterns,
            "deny": self.deny_patterns,
        }


@dataclass(frozen=True, slots=True)
class Grants:
    """Everything a policy grants one user: the read filter, pii and admin."""

    user: str
    read: ReadFilter
    pii: bool
    admin: bool
    policy_version: int = 0
    """The version of the tenant policy these grants were compiled from."""


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """One tenant's policy lines, indexed for compiling."""

    tenant: str
    lines: tuple[PolicyLine, ...]
    version: int = 0
    _parents: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _perms: Mapping[str, tuple[Permission, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parents: dict[str, set[str]] = {}
        perms: dict[str, list[Permission]] = {}
        for line in self.lines:
            if line.tenant != self.tenant:
                raise PolicyError(f"a line for tenant {line.tenant!r} in the policy of {self.tenant!r}")
            if isinstance(line, RoleGrant):
                parents.setdefault(line.subject, set()).add(line.role)
            else:
                perms.setdefault(line.subject, []).append(line)
        object.__setattr__(self, "_parents", {k: frozenset(v) for k, v in parents.items()})
        object.__setattr__(self, "_perms", {k: tuple(v) for k, v in perms.items()})

    def subjects(self, user: str) -> tuple[str, ...]:
        """`user` and every role reachable from it (cycles are harmless), sorted.

        Roles more than `MAX_ROLE_DEPTH` steps away are not followed, exactly like
        the Casbin enforcer: adding such a chain is refused, but removing lines (a
        revocation, always allowed) can lengthen one, and both paths then agree
        on failing closed.
        """
        return tuple(sorted(self._reach(user, limit=MAX_ROLE_DEPTH)))

    def _reach(self, start: str, *, limit: int | None = None) -> dict[str, int]:
        depth = {start: 0}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if limit is not None and depth[node] >= limit:
                continue
            for parent in self._parents.get(node, ()):
                if parent not in depth:
                    depth[parent] = depth[node] + 1
                    queue.append(parent)
        return depth

    def check_depth(self) -> None:
        """Raise `PolicyError` if some role chain is longer than `MAX_ROLE_DEPTH`."""
        for subject in self._parents:
            deepest = max(self._reach(subject).values())
            if deepest > MAX_ROLE_DEPTH:
                raise PolicyError(
                    f"roles of {subject!r} are nested {deepest} deep; at most {MAX_ROLE_DEPTH} allowed"
                )

    def grants(self, user: str) -> Grants:
        """Compile everything `user` is granted."""
        subjects = self.subjects(user)
        clearance = Level.PUBLIC
        allow: set[str] = set()
        deny: set[str] = set()
        pii = admin = False
        for subject in subjects:
            for perm in self._perms.get(subject, ()):
                kind = perm.kind
                if kind == "collection":
                    (deny if perm.effect == "deny" else allow).add(perm.argument)
                elif kind == "clearance":
                    clearance = max(clearance, Level.parse(perm.argument))
                elif kind == "pii":
                    pii = True
                else:
                    admin = True
        read = ReadFilter(
            subjects=subjects,
            clearance=clearance,
            allow_globs=tuple(sorted(allow)),
            deny_globs=tuple(sorted(deny)),
        )
        return Grants(user=user, read=read, pii=pii, admin=admin, policy_version=self.version)


def compile_read_filter(policy: TenantPolicy, user: str) -> ReadFilter:
    """The read filter of `user` under `policy` (a pure function)."""
    return policy.grants(user).read


def build_policy(tenant: str, lines: Iterable[PolicyLine], *, version: int = 0) -> TenantPolicy:
    """A validated `TenantPolicy` (role depth checked)."""
    policy = TenantPolicy(tenant=tenant, lines=tuple(lines), version=version)
    policy.check_depth()
    return policy


def unique(lines: Sequence[PolicyLine]) -> list[PolicyLine]:
    """`lines` without repeats, first occurrence kept."""
    return list(dict.fromkeys(lines))
