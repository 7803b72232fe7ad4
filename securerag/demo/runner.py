"""`securerag demo`: the whole product on the embedded default, in one command.

Initialises everything on a fresh `SECURERAG_HOME`, ingests the bundled
corpus for one tenant, loads the sample policy, then asks every user the same
question and shows how the answers differ, including a chunk withheld because
it carries a prompt injection.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from securerag.authz import add_lines, parse_policy
from securerag.config import Settings
from securerag.crypto.master import ensure_key_file, load_key_provider
from securerag.db import initialize, tenant_transaction
from securerag.ingestion import DocumentInput, Ingestor
from securerag.models import Level
from securerag.runtime import Runtime
from securerag.tenants import ensure_tenant

ACTOR = "demo"
DEMO_CHUNK_TOKENS = 90


def _files() -> Any:
    return resources.files("securerag.demo")


def run_demo(settings: Settings, *, console: Console) -> list[dict[str, Any]]:
    """Run the demo and print its table; the rows, for tests."""
    ensure_key_file(settings)
    keys = load_key_provider(settings)
    db, _ = initialize(settings, keys)
    rt = Runtime(settings, keys=keys, db=db)
    manifest = json.loads(_files().joinpath("corpus", "manifest.json").read_text())
    tenant_name = manifest["tenant"]
    policy = parse_policy(_files().joinpath("policy.csv").read_text().splitlines(), tenant=tenant_name)
    with rt.connect() as conn:
        tenant = ensure_tenant(conn, tenant_name)
        with tenant_transaction(conn, tenant.id, access="admin") as tx:
            rt.keyring.tenant_key(tx, tenant.id)
            add_lines(tx, tenant, policy, actor=ACTOR, audit=rt.audit)
            have = tx.execute(
                "SELECT count(*) FROM securerag.documents WHERE tenant_id = %s", (tenant.id,)
            ).fetchone()
        if not have or have[0] == 0:
            _ingest(rt, conn, tenant, manifest["documents"], console)
        else:
            console.print(f"tenant {tenant_name!r} already holds the demo corpus; asking again")
        rows = []
        for entry in manifest["users"]:
            result = rt.retriever.retrieve(conn, tenant, entry["user"], manifest["question"], k=3)
            rows.append({"user": entry["user"], "about": entry["about"], "result": result})
    _print(console, manifest["question"], rows)
    return rows


def _ingest(rt: Runtime, conn: Any, tenant: Any, documents: list[dict[str, str]], console: Console) -> None:
    # Small chunks so each section of these short documents is its own passage.
    ingestor = Ingestor(
        embedder=rt.embedder,
        scanner=rt.scanner,
        keyring=rt.keyring,
        audit=rt.audit,
        secrets=rt.secrets,
        max_tokens=DEMO_CHUNK_TOKENS,
        overlap_tokens=0,
    )
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("ingesting the demo corpus", total=len(documents))
        for spec in documents:
            text = _files().joinpath("corpus", spec["file"]).read_text()
            title = text.splitlines()[0].lstrip("# ").strip()
            declared = None if spec["classification"] == "auto" else Level.parse(spec["classification"])
            prepared = ingestor.prepare(
                DocumentInput(
                    collection=spec["collection"],
                    title=title,
                    text=text,
                    classification=declared,
                    source=f"demo:{spec['file']}",
                )
            )
            with tenant_transaction(conn, tenant.id, access="admin") as tx:
                stored = ingestor.store(tx, tenant.id, prepared, actor=ACTOR)
            console.print(
                f"  ingested {spec['file']:26} -> {stored.collection:21} "
                f"{stored.classification.label:12} {stored.chunks} chunks"
                + (f", {stored.withheld} carrying an injection" if stored.withheld else "")
            )
            progress.advance(task)


def _snippet(text: str, limit: int = 150) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    flat = " ".join(" ".join(lines).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _print(console: Console, question: str, rows: list[dict[str, Any]]) -> None:
    table = Table(
        title=f'Same question, different readers:\n"{question}"', show_lines=True, title_justify="left"
    )
    table.add_column("user", style="bold")
    table.add_column("may read")
    table.add_column("chunks returned (collection, level)")
    table.add_column("withheld", justify="right")
    table.add_column("best passage")
    for row in rows:
        result = row["result"]
        sources = "\n".join(f"{h.title} ({h.collection}, {h.classification})" for h in result.chunks)
        best = _snippet(result.chunks[0].text) if result.chunks else "(nothing)"
        table.add_row(row["user"], row["about"], sources or "(nothing readable)", str(result.withheld), best)
    if not console.is_terminal:
        # Off a terminal rich assumes 80 columns; give the table room to stay readable.
        console = Console(file=console.file, width=150, highlight=False)
    console.print(table)
    console.print(
        "Chunks are filtered inside the vector query and again by PostgreSQL row-level security; "
        "withheld chunks carried a prompt injection; personal data is masked for readers without "
        "'pii, read'."
    )
