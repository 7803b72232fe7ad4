"""Property: Casbin's single decision, the SQL filter and authorization.md agree on every input.

For random role graphs (cycles included), policies (allow, deny, clearance,
globs with `*`, `%`, `_` and `\\`) and documents, three implementations must
select exactly the same documents for every user:

1. `reference_can_read` below, written from authorization.md and nothing else;
2. `CasbinDecider.can_read`, built on `casbin.Enforcer`;
3. PostgreSQL, twice: the row-level security policy alone (a SELECT with no
   WHERE under the reader's settings), and the routed k-NN search with its own
   WHERE clause, on rows inserted into the real database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securerag.authz import CasbinDecider, Permission, PolicyLine, RoleGrant, TenantPolicy
from securerag.authz.authorizer import apply_read_filter
from securerag.db import Database, set_settings, tenant_transaction
from securerag.models import DocumentAttrs, Level
from securerag.retrieval import VectorSearch
from securerag.tenants import TenantRef, ensure_tenant

TENANT = "prop-tenant"
USERS = ("u0", "u1", "u2")
ROLES = ("role:r0", "role:r1", "role:r2", "role:r3")
SUBJECTS = USERS + ROLES
# Segments full of LIKE metacharacters, so a wrong escape shows up as a wrong answer.
SEGMENTS = ("a", "b", "a%", "%", "_", "a_b", "axb", "a\\", "\\%", "ab")


# -- the reference: authorization.md, read literally ------------------------------------


def reference_subjects(lines: Sequence[PolicyLine], user: str) -> set[str]:
    """The user and every role reachable through g lines, transitively."""
    found = {user}
    while True:
        grown = found | {g.role for g in lines if isinstance(g, RoleGrant) and g.subject in found}
        if grown == found:
            return found
        found = grown


def reference_glob(glob: str, collection: str) -> bool:
    """Exact name, or prefix + one trailing `*` matching any run of characters."""
    if glob.endswith("*"):
        prefix = glob[:-1]
        return collection[: len(prefix)] == prefix
    return collection == glob


def reference_can_read(lines: Sequence[PolicyLine], tenant: str, user: str, doc: DocumentAttrs) -> bool:
    """The four conditions of 'The read decision'."""
    if doc.tenant != tenant:
        return False
    subjects = reference_subjects(lines, user)
    perms = [p for p in lines if isinstance(p, Permission) and p.subject in subjects]
    clearance = max(
        (Level.parse(p.obj.split(":", 1)[1]) for p in perms if p.obj.startswith("clearance:")),
        default=Level.PUBLIC,
    )
    if doc.classification > clearance:
        return False
    collection_lines = [p for p in perms if p.obj.startswith("collection:")]
    if any(p.effect == "deny" and reference_glob(p.obj[11:], doc.collection) for p in collection_lines):
        return False
    allowed = any(
        p.effect == "allow" and reference_glob(p.obj[11:], doc.collection) for p in collection_lines
    )
    return allowed or bool(subjects & set(doc.acl))


# -- random worlds ---------------------------------------------------------------------

collections = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map("/".join)


def like_twin(name: str) -> str:
    """A different name that an unescaped LIKE pattern for `name` would also match."""
    return name.replace("_", "x").replace("%", "pp").replace("\\", "")


@st.composite
def globs(draw: st.DrawFn, pool: Sequence[str]) -> str:
    kind = draw(st.sampled_from(["exact", "prefix", "cut", "star"]))
    name = draw(st.sampled_from(pool))
    if kind == "exact":
        return name
    if kind == "star":
        return "*"
    if kind == "prefix":
        return name + "/*"
    cut = draw(st.integers(1, len(name)))  # a prefix ending mid-segment: "a%/a_*"
    prefix = name[:cut]
    return (prefix if not prefix.endswith("/") else prefix[:-1]) + "*"


@st.composite
def permissions(draw: st.DrawFn, pool: Sequence[str]) -> Permission:
    subject = draw(st.sampled_from(SUBJECTS))
    kind = draw(st.sampled_from(["allow", "allow", "deny", "clearance", "pii", "admin"]))
    if kind in ("allow", "deny"):
        return Permission(subject, TENANT, f"collection:{draw(globs(pool))}", "read", kind)  # type: ignore[arg-type]
    if kind == "clearance":
        return Permission(subject, TENANT, f"clearance:{draw(st.sampled_from(list(Level))).label}", "read")
    return Permission(subject, TENANT, kind, "write" if kind == "admin" else "read")


role_grants = st.builds(RoleGrant, st.sampled_from(SUBJECTS), st.sampled_from(ROLES), st.just(TENANT)).filter(
    lambda g: g.subject != g.role
)


@dataclass(frozen=True)
class World:
    lines: tuple[PolicyLine, ...]
    docs: tuple[DocumentAttrs, ...]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """A few collection names, their LIKE twins and children; policies over the names;
    documents over all of them, so an escaping mistake selects a wrong document."""
    pool = draw(st.lists(collections, min_size=1, max_size=4, unique=True))
    names = sorted({*pool, *(like_twin(c) for c in pool), *(c + "/x" for c in pool)} - {""})
    grants = draw(st.lists(role_grants, max_size=8, unique=True))
    perms = draw(st.lists(permissions(pool), max_size=12, unique=True))
    document = st.builds(
        DocumentAttrs,
        st.just(TENANT),
        st.sampled_from(names),
        st.sampled_from(list(Level)),
        st.lists(st.sampled_from((*SUBJECTS, "u9", "role:nobody")), max_size=3, unique=True).map(tuple),
    )
    docs = draw(st.lists(document, min_size=1, max_size=12))
    return World(tuple(grants) + tuple(perms), tuple(docs))


# -- the database side -------------------------------------------------------------------


@pytest.fixture(scope="module")
def prop_db(db: Database) -> Iterator[tuple[psycopg.Connection[Any], TenantRef]]:
    with db.connect() as conn:
        yield conn, ensure_tenant(conn, TENANT)


def _insert(
    conn: psycopg.Connection[Any], tenant: TenantRef, docs: Sequence[DocumentAttrs]
) -> list[uuid.UUID]:
    """Rows for the documents (one chunk each); ciphertext is irrelevant to filtering."""
    ids = []
    rng = np.random.default_rng(len(docs))
    for doc in docs:
        doc_id = uuid.uuid4()
        ids.append(doc_id)
        conn.execute(
            "INSERT INTO securerag.documents (tenant_id, id, collection, classification, acl, key_id,"
            " sealed_meta, n_chunks) VALUES (%s, %s, %s, %s, %s, %s, %s, 1)",
            (tenant.id, doc_id, doc.collection, int(doc.classification), list(doc.acl), uuid.uuid4(), b"x"),
        )
        vector = rng.standard_normal(384).astype(np.float32)
        conn.execute(
            "INSERT INTO securerag.chunks (tenant_id, id, document_id, ordinal, collection, classification,"
            " acl, embedding, sealed, scan_score, scan_action, scan_reasons, scanner_version)"
            " VALUES (%s, %s, %s, 0, %s, %s, %s, %s, %s, 0, 0, '{}', 1)",
            (
                tenant.id,
                uuid.uuid4(),
                doc_id,
                doc.collection,
                int(doc.classification),
                list(doc.acl),
                vector / np.linalg.norm(vector),
                b"x",
            ),
        )
    return ids


class _Rollback(Exception):
    pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_casbin_sql_and_reference_agree(
    prop_db: tuple[psycopg.Connection[Any], TenantRef], world: World
) -> None:
    """For every user, all implementations select exactly the same documents."""
    conn, tenant = prop_db
    policy = TenantPolicy(tenant=TENANT, lines=world.lines)
    decider = CasbinDecider(TENANT, world.lines)
    search = VectorSearch()
    query = np.ones(384, dtype=np.float32) / np.sqrt(384)
    try:
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            ids = _insert(tx, tenant, world.docs)
            for user in (*USERS, "stranger"):
                expected = {
                    ids[i]
                    for i, doc in enumerate(world.docs)
                    if reference_can_read(world.lines, TENANT, user, doc)
                }
                casbin = {ids[i] for i, doc in enumerate(world.docs) if decider.can_read(TENANT, user, doc)}
                read = policy.grants(user).read
                python = {ids[i] for i, doc in enumerate(world.docs) if read.allows(doc)}
                set_settings(tx, {"access": "read"})
                apply_read_filter(tx, read)
                rls = {r[0] for r in tx.execute("SELECT document_id FROM securerag.chunks").fetchall()}
                found = search.search(tx, tenant.id, read, query, k=50)
                knn = {row.document_id for row in found.rows}
                set_settings(tx, {"access": "admin"})
                assert casbin == expected, (user, "casbin")
                assert python == expected, (user, "compiled filter in Python")
                assert rls == expected, (user, "row-level security")
                assert knn == expected, (user, f"k-NN search ({found.plan})")
            raise _Rollback
    except _Rollback:
        pass


@given(world=worlds(), user=st.sampled_from(USERS))
@settings(max_examples=300, deadline=None)
def test_pii_and_admin_grants_agree_with_casbin(world: World, user: str) -> None:
    """The compiled pii and admin grants are Casbin's answers."""
    grants = TenantPolicy(tenant=TENANT, lines=world.lines).grants(user)
    decider = CasbinDecider(TENANT, world.lines)
    assert grants.pii == decider.can(user, "pii", "read")
    assert grants.admin == decider.can(user, "admin", "write")
    assert set(grants.read.subjects) == reference_subjects(world.lines, user) == decider.subjects(user)


def test_deep_role_chains_agree() -> None:
    """Casbin follows nesting as deep as the compiler allows (its default stops at 10)."""
    from securerag.authz.compiler import MAX_ROLE_DEPTH

    chain: list[PolicyLine] = [RoleGrant("u0", "role:c0", TENANT)]
    chain += [RoleGrant(f"role:c{i}", f"role:c{i + 1}", TENANT) for i in range(MAX_ROLE_DEPTH - 1)]
    top = f"role:c{MAX_ROLE_DEPTH - 1}"
    chain.append(Permission(top, TENANT, "collection:deep/*", "read"))
    doc = DocumentAttrs(TENANT, "deep/x", Level.PUBLIC, ())
    assert reference_can_read(chain, TENANT, "u0", doc)
    assert CasbinDecider(TENANT, chain).can_read(TENANT, "u0", doc)
    assert TenantPolicy(TENANT, tuple(chain)).grants("u0").read.allows(doc)


def test_chain_lengthened_by_a_removal_is_cut_at_the_same_depth() -> None:
    """Removing shortcut roles can leave a chain deeper than allowed; the compiler and
    Casbin then both stop at MAX_ROLE_DEPTH and agree (failing closed)."""
    from securerag.authz.compiler import MAX_ROLE_DEPTH

    n = MAX_ROLE_DEPTH + 8
    chain: list[PolicyLine] = [RoleGrant("u0", "role:c0", TENANT)]
    chain += [RoleGrant(f"role:c{i}", f"role:c{i + 1}", TENANT) for i in range(n)]
    chain.append(Permission(f"role:c{n}", TENANT, "collection:fin", "read"))
    doc = DocumentAttrs(TENANT, "fin", Level.PUBLIC, (f"role:c{n}",))
    policy = TenantPolicy(TENANT, tuple(chain))  # as left behind after the shortcuts were removed
    decider = CasbinDecider(TENANT, chain)
    assert not policy.grants("u0").read.allows(doc)
    assert not decider.can_read(TENANT, "u0", doc)
    assert set(policy.subjects("u0")) == decider.subjects("u0")
    assert len(policy.subjects("u0")) == MAX_ROLE_DEPTH + 1
