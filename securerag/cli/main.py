"""The `securerag` command line (typer + rich).

Every command exits 0 on success and non-zero with one line on stderr on
failure; `--json` prints machine-readable JSON on stdout.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from securerag.cli.operator import operator
from securerag.config import Settings
from securerag.errors import InvalidInput, NotFound, SecureRagError
from securerag.models import Level, validate_subject

if TYPE_CHECKING:
    from securerag.runtime import Runtime

app = typer.Typer(
    name="securerag",
    help="Secure retrieval for RAG: authorized vector search over encrypted chunks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(help="Manage a tenant's Casbin policy.", no_args_is_help=True)
apikey_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
document_app = typer.Typer(help="Manage documents.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage encryption keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)
db_app = typer.Typer(help="The embedded database server.", no_args_is_help=True)
memory_app = typer.Typer(help="Session memory.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(apikey_app, name="apikey")
app.add_typer(document_app, name="document")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")
app.add_typer(memory_app, name="memory")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _settings() -> Settings:
    return Settings()


def _runtime() -> Runtime:
    from securerag.runtime import Runtime

    return Runtime(_settings())


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@app.command()
def init(json_out: JsonOpt = False) -> None:
    """Create or migrate the database and create the key file if missing."""
    from securerag.crypto.master import ensure_key_file, load_key_provider
    from securerag.db import initialize

    settings = _settings()
    created = ensure_key_file(settings)
    _, report = initialize(settings, load_key_provider(settings))
    where = f"embedded server under {settings.home}" if report.embedded else "SECURERAG_DATABASE_URL"
    if json_out:
        _print_json(
            {
                "revision": report.revision_after,
                "previous_revision": report.revision_before,
                "embedded": report.embedded,
                "key_file_created": created,
                "home": str(settings.home),
            }
        )
        return
    out.print(f"database ready at revision {report.revision_after} ({where})")
    if created:
        out.print(
            f"created master key file {settings.key_file} (mode 0600): back it up apart "
            "from the database; without it the data cannot be decrypted"
        )


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.txt, .md).")],
    tenant: TenantOpt,
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection path.")],
    acl: Annotated[list[str] | None, typer.Option("--acl", help="Share with a user or role.")] = None,
    classification: Annotated[
        str, typer.Option(help="auto, public, internal, confidential or restricted.")
    ] = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Ingest files or folders into a tenant's collection."""
    from securerag.cli.ingest import run_ingest

    declared = None if classification == "auto" else Level.parse(classification)
    for subject in acl or []:
        validate_subject(subject)
    summary = run_ingest(
        _runtime(),
        paths,
        tenant=tenant,
        collection=collection,
        acl=tuple(acl or ()),
        classification=declared,
        actor=operator(),
        console=err,
        show_progress=not json_out or err.is_terminal,
    )
    if json_out:
        _print_json(summary.as_json())
    else:
        out.print(
            f"ingested {summary.documents} documents, {summary.chunks} chunks "
            f"({summary.flagged} flagged, {summary.replaced} replaced, {summary.unchanged} unchanged) "
            f"into {tenant}/{collection}"
        )
    if summary.failed:
        raise typer.Exit(1)


def _read_policy_file(file: Path, tenant: str) -> list[Any]:
    from securerag.authz import parse_policy

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_policy(text.splitlines(), tenant=tenant)


@policy_app.command("load")
def policy_load(file: Path, tenant: TenantOpt) -> None:
    """Add the Casbin CSV lines of FILE (all or nothing)."""
    from securerag.authz import add_lines
    from securerag.db import tenant_transaction
    from securerag.tenants import ensure_tenant

    lines = _read_policy_file(file, tenant)
    rt = _runtime()
    with rt.connect() as conn:
        ref = ensure_tenant(conn, tenant)
        with tenant_transaction(conn, ref.id, access="admin") as tx:
            added = add_lines(tx, ref, lines, actor=operator(), audit=rt.audit)
    out.print(f"added {added} of {len(lines)} lines to {tenant}")


@policy_app.command("remove")
def policy_remove(file: Path, tenant: TenantOpt) -> None:
    """Remove the Casbin CSV lines of FILE."""
    from securerag.authz import remove_lines
    from securerag.db import tenant_transaction
    from securerag.tenants import find_tenant

    lines = _read_policy_file(file, tenant)
    rt = _runtime()
    with rt.connect() as conn:
        ref = find_tenant(conn, tenant)
        with tenant_transaction(conn, ref.id, access="admin") as tx:
            removed = remove_lines(tx, ref, lines, actor=operator(), audit=rt.audit)
    out.print(f"removed {removed} of {len(lines)} lines from {tenant}")


@policy_app.command("list")
def policy_list(tenant: TenantOpt, json_out: JsonOpt = False) -> None:
    """Print the tenant's policy lines."""
    from securerag.authz import list_lines
    from securerag.db import tenant_transaction
    from securerag.tenants import find_tenant

    rt = _runtime()
    with rt.connect() as conn:
        ref = find_tenant(conn, tenant)
        with tenant_transaction(conn, ref.id, access="admin") as tx:
            lines = [line.csv() for line in list_lines(tx, ref)]
    if json_out:
        _print_json({"lines": lines})
    else:
        for line in lines:
            sys.stdout.write(line + "\n")


@apikey_app.command("create")
def apikey_create(
    tenant: TenantOpt,
    user: Annotated[str, typer.Option("--user", "-u", help="The user the key acts as.")],
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="Expire after N days.")] = None,
) -> None:
    """Print a new API key for USER on stdout (shown only once)."""
    from securerag.db import tenant_transaction
    from securerag.tenants import ensure_tenant

    validate_subject(user, role=False)
    rt = _runtime()
    with rt.connect() as conn:
        ref = ensure_tenant(conn, tenant)
        with tenant_transaction(conn, ref.id, access="admin") as tx:
            rt.keyring.tenant_key(tx, ref.id)
            expires = timedelta(days=expires_in_days) if expires_in_days else None
            key = rt.api_keys.create(tx, ref, user, expires_in=expires)
            rt.audit.append(
                tx,
                ref.id,
                actor=operator(),
                action="apikey.create",
                detail={"user": user, "key_id": key.split("_")[1]},
            )
    sys.stdout.write(key + "\n")


@apikey_app.command("list")
def apikey_list(tenant: TenantOpt, json_out: JsonOpt = False) -> None:
    """List the tenant's API keys: id, user, created, expires, status (never secrets)."""
    from securerag.apikeys import list_keys
    from securerag.db import tenant_transaction
    from securerag.tenants import find_tenant

    rt = _runtime()
    with rt.connect() as conn:
        ref = find_tenant(conn, tenant)
        with tenant_transaction(conn, ref.id, access="admin") as tx:
            keys = list_keys(tx, ref)
    rows = [
        {
            "key_id": k.key_id,
            "user": k.user,
            "created_at": k.created_at.isoformat(),
            "expires_at": k.expires_at.isoformat() if k.expires_at else None,
            "status": k.status,
        }
        for k in keys
    ]
    if json_out:
        _print_json(rows)
        return
    for row in rows:
        out.print(
            f"{row['key_id']}  {row['status']:8} {row['user']}  created {row['created_at']}", markup=False
        )


@apikey_app.command("revoke")
def apikey_revoke(
    key: Annotated[str, typer.Argument(help="The key's id (from `apikey list`) or the whole key.")],
    tenant: TenantOpt,
) -> None:
    """Revoke an API key for good; it fails like an unknown key from the next request on."""
    from securerag.apikeys import key_id_of, revoke_key
    from securerag.db import tenant_transaction
    from securerag.tenants import find_tenant

    key_id = key_id_of(key)
    rt = _runtime()
    with rt.connect() as conn:
        ref = find_tenant(conn, tenant)
        with tenant_transaction(conn, ref.id, access="admin") as tx:
            if not revoke_key(tx, ref, key_id):
                raise NotFound(f"no active API key {key_id} in tenant {tenant!r}")
            rt.audit.append(tx, ref.id, actor=operator(), action="apikey.revoke", detail={"key_id": key_id})
    out.print(f"revoked {key_id}")


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="The question.")],
    tenant: TenantOpt,
    user: Annotated[str, typer.Option("--user", "-u", help="Ask as this user.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many chunks.")] = 5,
    session: Annotated[str | None, typer.Option(help="Include this session's memory.")] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(min=128, max=200_000, help="Token budget of the context (default: the configured one)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Retrieve what USER may read for TEXT (same as POST /v1/retrieve)."""
    from securerag.cli.render import retrieval_table
    from securerag.tenants import find_tenant

    validate_subject(user, role=False)
    rt = _runtime()
    with rt.connect() as conn:
        result = rt.retriever.retrieve(
            conn, find_tenant(conn, tenant), user, text, k=k, session_id=session, max_tokens=max_tokens
        )
    if json_out:
        _print_json(result.as_dict())
    else:
        out.print(retrieval_table(result))
        out.print(result.context, markup=False)


@memory_app.command("sweep")
def memory_sweep(json_out: JsonOpt = False) -> None:
    """Hard-delete every expired session-memory entry and close sessions left empty
    for an hour, destroying their keys (all tenants)."""
    from securerag.memory import sweep_expired

    rt = _runtime()
    with rt.connect() as conn:
        done = sweep_expired(conn)
    if json_out:
        _print_json({"deleted": done.entries, "sessions_closed": done.sessions})
    else:
        out.print(f"deleted {done.entries} expired memory entries; closed {done.sessions} idle sessions")


@app.command()
def scan(json_out: JsonOpt = False) -> None:
    """Scan JSON lines ({"text": ...}) from stdin for prompt injection."""
    from securerag.scanning import InjectionScanner

    scanner = InjectionScanner(_settings().scan_thresholds_config())
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text = record["text"]
            if not isinstance(text, str):
                raise TypeError
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InvalidInput(f"stdin line {number}: expected a JSON object with a string 'text'") from None
        result = scanner.scan(text)
        body = {"score": result.score, "action": result.action.label, "reasons": list(result.reasons)}
        if json_out:
            sys.stdout.write(json.dumps(body) + "\n")
        else:
            out.print(f"{result.action.label:8} {result.score:.2f} {', '.join(result.reasons)}")


@app.command()
def rescan(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant name (default: all).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Rescan stored chunks whose sealed verdict is older than the running scanner (after an
    upgrade), so retrieval reads current verdicts again; resumable."""
    from securerag.cli.rescan import rescan as run

    summaries = run(_runtime(), tenant=tenant, actor=operator(), console=err)
    for summary in summaries:
        if json_out:
            sys.stdout.write(json.dumps(summary) + "\n")
        else:
            out.print(
                f"{summary['tenant']}: {summary['chunks']} chunks in {summary['documents']} documents "
                f"rescanned (scanner version {summary['scanner_version']}); "
                f"{summary['changed']} changed action"
            )
            for document_id in summary["failed"]:
                out.print(f"{summary['tenant']}: document {document_id} did not authenticate; not rescanned")
    failed = sum(len(s["failed"]) for s in summaries)
    if failed:
        raise SecureRagError(f"{failed} documents did not authenticate and were not rescanned")


@document_app.command("delete")
def document_delete(document_id: str, tenant: TenantOpt) -> None:
    """Delete a document for good: chunks, vectors and its key."""
    from securerag.db import tenant_transaction
    from securerag.tenants import find_tenant

    try:
        doc = uuid.UUID(document_id)
    except ValueError:
        raise InvalidInput(f"{document_id!r} is not a document id") from None
    rt = _runtime()
    with rt.connect() as conn:
        ref = find_tenant(conn, tenant)
        with tenant_transaction(conn, ref.id, access="admin") as tx:
            deleted = rt.ingestor.delete(tx, ref.id, doc, actor=operator())
    if not deleted:
        raise NotFound(f"no document {document_id} in tenant {tenant}")
    out.print(f"deleted document {document_id}; its key is destroyed")


@keys_app.command("rotate")
def keys_rotate(tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None) -> None:
    """New data keys: every document re-encrypted under a new key, in batches; resumable."""
    from securerag.cli.keys import rotate

    rotate(_runtime(), tenant=tenant, actor=operator(), console=out)


@keys_app.command("rotate-master")
def keys_rotate_master() -> None:
    """A new master key: tenant keys and service secrets re-wrapped under it; resumable."""
    from securerag.cli.keys import rotate_master

    rotate_master(_settings(), console=out)


@audit_app.command("verify")
def audit_verify(
    against: Annotated[
        Path | None, typer.Option(help="An earlier `audit export`: its entries must all still be there.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check the audit trail end to end; non-zero exit if it was tampered with."""
    from securerag.audit import missing_from

    exported: list[dict[str, Any]] = []
    if against is not None:
        try:
            lines = against.read_text().splitlines()
        except OSError as exc:
            raise InvalidInput(f"cannot read the export {against}: {type(exc).__name__}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if not (
                    isinstance(entry["tenant"], str)
                    and isinstance(entry["seq"], int)
                    and isinstance(entry["mac"], str)
                ):
                    raise TypeError
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InvalidInput(f"{against} line {number}: not an `audit export` entry") from None
            exported.append(entry)
    rt = _runtime()
    with rt.db.connect_admin() as conn:
        problems = rt.audit.verify(conn) + missing_from(conn, exported)
        count = conn.execute("SELECT count(*) FROM securerag.audit_log").fetchone()
    total = int(count[0]) if count else 0
    if json_out:
        _print_json(
            {"entries": total, "ok": not problems, "problems": [dataclasses.asdict(p) for p in problems]}
        )
    elif not problems:
        out.print(f"audit trail intact: {total} entries verified")
    if problems:
        for p in problems[:20]:
            err.print(f"tenant {p.tenant_id} entry {p.seq}: {p.problem}")
        raise SecureRagError(f"audit trail verification failed: {len(problems)} problems")


@audit_app.command("export")
def audit_export(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here instead of stdout (refuses to overwrite)."),
    ] = None,
) -> None:
    """Write the audit trail as JSON lines, one entry per line, in chain order."""
    from securerag.audit import export

    rt = _runtime()
    if output is not None and output.exists():
        raise InvalidInput(f"{output} exists; choose a new file")
    with rt.db.connect_admin() as conn, conn.transaction():
        sink = output.open("x", encoding="utf-8") if output is not None else sys.stdout
        try:
            count = 0
            for entry in export(conn, tenant=tenant):
                sink.write(json.dumps(entry, sort_keys=True) + "\n")
                count += 1
        finally:
            if output is not None:
                sink.close()
    if output is not None:
        err.print(f"wrote {count} audit entries to {output}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API (WORKERS processes sharing the database, limits and audit trail)."""
    import uvicorn

    from securerag.logs import log_config

    settings = _settings()  # fail here, once, on bad configuration
    if workers > 1:
        # Metrics of every worker in one /metrics: each writes its values to files here.
        import os
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="securerag-metrics-")
    uvicorn.run(
        "securerag.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config(settings.log_format),
    )


@app.command()
def demo() -> None:
    """Set everything up on the embedded default and show how answers differ by user."""
    from securerag.demo import run_demo

    run_demo(_settings(), console=out)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server."""
    from securerag.db.embedded import stop_server

    settings = _settings()
    if not settings.embedded:
        raise InvalidInput("SECURERAG_DATABASE_URL is set: there is no embedded server to stop")
    stopped = stop_server(settings)
    out.print("stopped the embedded server" if stopped else "the embedded server was not running")
