"""Single decisions with Casbin: `can_read(tenant, user, document)` and friends.

This is the reference path, independent of the compiler: it asks
`casbin.Enforcer` with securerag's model, and a property test holds it and the
SQL filter against each other on random policies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any

import casbin
from casbin.persist.adapter_filtered import FilteredAdapter
from casbin.rbac.default_role_manager.role_manager import DomainManager

from securerag.authz.compiler import MAX_ROLE_DEPTH
from securerag.authz.policy import PolicyLine, RoleGrant
from securerag.models import DocumentAttrs, Level

_MODEL_TEXT = resources.files("securerag.authz").joinpath("model.conf").read_text()
_DENY_ONLY = "!some(where (p_eft == deny))"


def _clearance_covers(requested: str, granted: str) -> bool:
    """`clearance:X` is covered by a grant of `clearance:Y` when X <= Y."""
    prefix = "clearance:"
    if not (requested.startswith(prefix) and granted.startswith(prefix)):
        return False
    try:
        return Level.parse(requested[len(prefix) :]) <= Level.parse(granted[len(prefix) :])
    except Exception:
        return False


class LinesAdapter(FilteredAdapter):  # type: ignore[misc]
    """A Casbin adapter over lines already read for one tenant (always filtered)."""

    def __init__(self, lines: Sequence[PolicyLine]) -> None:
        self._lines = list(lines)

    def is_filtered(self) -> bool:
        return True

    def load_policy(self, model: Any) -> None:
        self.load_filtered_policy(model, None)

    def load_filtered_policy(self, model: Any, filter: Any) -> None:
        for line in self._lines:
            ptype = "g" if isinstance(line, RoleGrant) else "p"
            model.add_policy(ptype, ptype, list(line.fields))


def _enforcer(lines: Sequence[PolicyLine], *, deny_only: bool) -> Any:
    model = casbin.Enforcer.new_model(text=_MODEL_TEXT)
    if deny_only:
        model["e"]["e"].value = _DENY_ONLY
    enforcer = casbin.Enforcer(model, LinesAdapter(lines))
    # Casbin stops following nested roles after 10 levels by default; follow
    # MAX_ROLE_DEPTH steps, as the compiler does (deeper chains are refused at load).
    enforcer.set_role_manager(DomainManager(MAX_ROLE_DEPTH + 1))
    enforcer.add_function("clearanceCovers", _clearance_covers)
    enforcer.load_filtered_policy(None)
    return enforcer


class CasbinDecider:
    """Answers single questions about one tenant's policy with `casbin.Enforcer`."""

    def __init__(self, tenant: str, lines: Sequence[PolicyLine]) -> None:
        self._tenant = tenant
        # Casbin's constructor disables its own loggers; it touches nothing else.
        self._enforcer = _enforcer(lines, deny_only=False)
        self._not_denied = _enforcer(lines, deny_only=True)
        logging.getLogger("casbin").disabled = True

    @property
    def tenant(self) -> str:
        """The tenant whose policy this decides."""
        return self._tenant

    def subjects(self, user: str) -> set[str]:
        """`user` and every role it holds, directly or through other roles (as far as
        the role manager follows them, which is also how far `g()` does)."""
        manager = self._enforcer.get_role_manager()
        roles = self._enforcer.get_implicit_roles_for_user(user, self._tenant)
        return {user, *(r for r in roles if manager.has_link(user, r, self._tenant))}

    def can(self, user: str, obj: str, act: str) -> bool:
        """A plain Casbin decision, e.g. `can(user, "admin", "write")`."""
        return bool(self._enforcer.enforce(user, self._tenant, obj, act))

    def can_read(self, tenant: str, user: str, document: DocumentAttrs) -> bool:
        """Whether `user` of `tenant` may read `document` (authorization.md's read decision)."""
        if tenant != self._tenant or document.tenant != tenant:
            return False
        level = document.classification
        # Everyone is cleared for public; above it a clearance line must cover the level.
        if level > Level.PUBLIC and not self.can(user, f"clearance:{level.label}", "read"):
            return False
        obj = f"collection:{document.collection}"
        if self.can(user, obj, "read"):  # an allow and no deny
            return True
        if not self.subjects(user) & set(document.acl):
            return False
        # Shared through the acl: still no deny may match.
        return bool(self._not_denied.enforce(user, self._tenant, obj, "read"))
