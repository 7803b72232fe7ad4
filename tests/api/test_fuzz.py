"""Schemathesis against `/openapi.json`, in process: no server error, no response that breaks
the schema, for a bounded number of generated requests per operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from securerag.api import create_app
from securerag.config import Settings
from securerag.db import tenant_transaction
from securerag.runtime import Runtime

POLICY = """
p, carol, {T}, collection:*, read
p, carol, {T}, clearance:restricted, read
p, carol, {T}, admin, write
"""

AUTH: dict[str, str] = {}
# No server error, and every response as documented. Not `positive_data_acceptance`: some
# rules (collection paths without noncharacters or edge whitespace, policy lines) are checked
# by the service and answered with a 400 problem, not spelled out in the schema.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_schema(runtime: Runtime, db: Any) -> Iterator[Any]:
    app = create_app(Settings(home=runtime.settings.home, rate_limit=None), runtime=runtime)
    with TestClient(app):  # runs the lifespan: pools and services
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def _admin_key(runtime: Runtime, db: Any, api_schema: Any) -> None:
    from securerag.tenants import ensure_tenant

    with db.connect() as conn:
        tenant = ensure_tenant(conn, "fuzzed")
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            runtime.keyring.tenant_key(tx, tenant.id)
            from securerag.authz import add_lines, parse_policy

            lines = parse_policy(POLICY.replace("{T}", tenant.name).splitlines(), tenant=tenant.name)
            add_lines(tx, tenant, lines, actor="test", audit=runtime.audit)
            AUTH["Authorization"] = f"Bearer {runtime.api_keys.create(tx, tenant, 'carol')}"


def test_api_holds_its_schema(api_schema: Any) -> None:
    """Every generated request, for every operation, gets a documented status, content type and
    body shape, and never a server error. (Driven by hand: schemathesis' pytest plugin does not
    support pytest 9.)"""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        check()
