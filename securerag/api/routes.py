"""The `/v1` routes: thin, typed, and free of security decisions of their own.

Every decision is made in `securerag.authz` and the pipelines; routes only
translate between HTTP and those calls.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from securerag.api.deps import CallerDep, ConnDep, ServicesDep
from securerag.api.schemas import (
    DocumentRequest,
    DocumentResponse,
    MemoryEntries,
    MemoryEntryOut,
    MemoryRequest,
    PolicyLines,
    Problem,
    RetrieveRequest,
    RetrieveResponse,
)
from securerag.authz import (
    add_lines,
    admin_transaction,
    authorize_admin,
    list_lines,
    parse_policy,
    remove_lines,
)
from securerag.db import tenant_transaction
from securerag.errors import AccessDenied, NotFound
from securerag.ingestion import DocumentInput
from securerag.memory import MemoryEntry
from securerag.models import Level

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (400, 401, 403, 404, 413, 422, 429, 500, 503)
}

router = APIRouter(prefix="/v1", responses=_ERRORS)


def _entry(entry: MemoryEntry) -> MemoryEntryOut:
    return MemoryEntryOut(
        role=entry.role, content=entry.content, created_at=entry.created_at, expires_at=entry.expires_at
    )


@router.post("/retrieve", response_model=RetrieveResponse)
def retrieve(body: RetrieveRequest, caller: CallerDep, conn: ConnDep, services: ServicesDep) -> Any:
    """The k nearest chunks the caller may read, scanned, with an assembled context."""
    result = services.runtime.retriever.retrieve(
        conn,
        caller.tenant,
        caller.user,
        body.query,
        k=body.k,
        session_id=body.session_id,
        max_tokens=body.max_tokens,
    )
    services.metrics.withheld.inc(result.withheld)
    for stage, seconds in result.stage_seconds.items():
        services.metrics.stages.labels(stage).observe(seconds)
    return result.as_dict()


def _admin(services: ServicesDep, conn: ConnDep, caller: CallerDep, action: str) -> None:
    try:
        authorize_admin(
            conn,
            caller.tenant,
            caller.user,
            authorizer=services.runtime.authorizer,
            audit=services.runtime.audit,
            action=action,
        )
    except AccessDenied:
        services.metrics.denials.inc()
        raise


@router.post("/documents", status_code=status.HTTP_201_CREATED, response_model=DocumentResponse)
def create_document(body: DocumentRequest, caller: CallerDep, conn: ConnDep, services: ServicesDep) -> Any:
    """Ingest one document (admin)."""
    rt = services.runtime
    _admin(services, conn, caller, "document.create")  # before spending CPU on embedding
    doc = DocumentInput(
        collection=body.collection,
        title=body.title,
        text=body.text,
        acl=tuple(body.acl),
        classification=None if body.classification == "auto" else Level.parse(body.classification),
        source=f"api:{body.source}" if body.source else "api",
        key=body.source,
    )
    prepared = rt.ingestor.prepare(doc)
    with admin_transaction(
        conn, caller.tenant, caller.user, authorizer=rt.authorizer, audit=rt.audit, action="document.create"
    ) as tx:
        stored = rt.ingestor.store(tx, caller.tenant.id, prepared, actor=caller.user)
    return DocumentResponse(
        document_id=str(stored.document_id), chunks=stored.chunks, classification=stored.classification.label
    )


@router.delete("/documents/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(
    document_id: uuid.UUID, caller: CallerDep, conn: ConnDep, services: ServicesDep
) -> Response:
    """Delete a document, its vectors and its key (admin)."""
    rt = services.runtime
    _admin(services, conn, caller, "document.delete")
    with admin_transaction(
        conn, caller.tenant, caller.user, authorizer=rt.authorizer, audit=rt.audit, action="document.delete"
    ) as tx:
        deleted = rt.ingestor.delete(tx, caller.tenant.id, document_id, actor=caller.user)
    if not deleted:
        raise NotFound("no such document")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/policies", response_model=PolicyLines)
def get_policies(caller: CallerDep, conn: ConnDep, services: ServicesDep) -> Any:
    """The tenant's policy lines (admin)."""
    rt = services.runtime
    _admin(services, conn, caller, "policy.list")
    with admin_transaction(
        conn, caller.tenant, caller.user, authorizer=rt.authorizer, audit=rt.audit, action="policy.list"
    ) as tx:
        return PolicyLines(lines=[line.csv() for line in list_lines(tx, caller.tenant)])


@router.post("/policies", response_model=PolicyLines)
def post_policies(body: PolicyLines, caller: CallerDep, conn: ConnDep, services: ServicesDep) -> Any:
    """Add policy lines, all or nothing (admin); answers the tenant's lines."""
    rt = services.runtime
    _admin(services, conn, caller, "policy.add")
    lines = parse_policy(body.lines, tenant=caller.tenant.name)
    with admin_transaction(
        conn, caller.tenant, caller.user, authorizer=rt.authorizer, audit=rt.audit, action="policy.add"
    ) as tx:
        add_lines(tx, caller.tenant, lines, actor=caller.user, audit=rt.audit)
        return PolicyLines(lines=[line.csv() for line in list_lines(tx, caller.tenant)])


@router.delete("/policies", response_model=PolicyLines)
def delete_policies(body: PolicyLines, caller: CallerDep, conn: ConnDep, services: ServicesDep) -> Any:
    """Remove policy lines (admin); answers the tenant's lines."""
    rt = services.runtime
    _admin(services, conn, caller, "policy.remove")
    lines = parse_policy(body.lines, tenant=caller.tenant.name)
    with admin_transaction(
        conn, caller.tenant, caller.user, authorizer=rt.authorizer, audit=rt.audit, action="policy.remove"
    ) as tx:
        remove_lines(tx, caller.tenant, lines, actor=caller.user, audit=rt.audit)
        return PolicyLines(lines=[line.csv() for line in list_lines(tx, caller.tenant)])


@router.post(
    "/sessions/{session_id}/memory", status_code=status.HTTP_201_CREATED, response_model=MemoryEntryOut
)
def add_memory(
    session_id: str, body: MemoryRequest, caller: CallerDep, conn: ConnDep, services: ServicesDep
) -> Any:
    """Remember one turn in the caller's session."""
    with tenant_transaction(conn, caller.tenant.id, access="read", user=caller.user) as tx:
        entry = services.runtime.memory.append(
            tx,
            caller.tenant,
            caller.user,
            session_id,
            role=body.role,
            content=body.content,
            ttl_seconds=body.ttl_seconds,
        )
    return _entry(entry)


@router.get("/sessions/{session_id}/memory", response_model=MemoryEntries)
def get_memory(session_id: str, caller: CallerDep, conn: ConnDep, services: ServicesDep) -> Any:
    """The caller's live entries of this session (empty for any other user)."""
    with tenant_transaction(conn, caller.tenant.id, access="read", user=caller.user) as tx:
        entries = services.runtime.memory.entries(tx, caller.tenant, caller.user, session_id)
    return MemoryEntries(entries=[_entry(e) for e in entries])


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_session(session_id: str, caller: CallerDep, conn: ConnDep, services: ServicesDep) -> Response:
    """Delete the caller's session and destroy its key."""
    with tenant_transaction(conn, caller.tenant.id, access="read", user=caller.user) as tx:
        services.runtime.memory.delete_session(tx, caller.tenant, caller.user, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
