"""Authorization: Casbin policy, the policy-to-SQL compiler, and row-level security.

`securerag.authz` never imports `securerag.retrieval`.
"""

from securerag.authz.admin import (
    add_lines,
    admin_transaction,
    authorize_admin,
    list_lines,
    remove_lines,
)
from securerag.authz.authorizer import Authorizer, apply_read_filter
from securerag.authz.compiler import (
    MAX_ROLE_DEPTH,
    Grants,
    ReadFilter,
    TenantPolicy,
    build_policy,
    compile_read_filter,
    glob_to_like,
)
from securerag.authz.decision import CasbinDecider
from securerag.authz.policy import Permission, PolicyLine, RoleGrant, parse_policy

__all__ = [
    "MAX_ROLE_DEPTH",
    "Authorizer",
    "CasbinDecider",
    "Grants",
    "Permission",
    "PolicyLine",
    "ReadFilter",
    "RoleGrant",
    "TenantPolicy",
    "add_lines",
    "admin_transaction",
    "apply_read_filter",
    "authorize_admin",
    "build_policy",
    "compile_read_filter",
    "glob_to_like",
    "list_lines",
    "parse_policy",
    "remove_lines",
]
