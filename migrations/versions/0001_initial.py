"""Initial schema: tenants, documents, chunks, keys, policy, API keys, memory, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Security shape, in one place:

- Every tenant-scoped table has row-level security ENABLED and FORCED, with
  policies for the query role `securerag_app` keyed on per-transaction
  settings (`set_config(..., true)`), read through the `ctx_*` functions. A
  missing setting reads as NULL, so a query without context sees nothing.
- `securerag.access` is 'read' (the reader's filter applies to documents and
  chunks) or 'admin' (the whole tenant, granted by the application only after
  it checked `admin, write` or for the operator's CLI).
- The reader's filter (clearance, allow and deny LIKE patterns, subjects) is
  repeated in the chunk and document policies, so a query that forgets its
  WHERE clause still returns only what that reader may read.
- `chunks` is LIST-partitioned by tenant; each partition gets its own HNSW
  graph. Partitions are created by `ensure_tenant()` with no grants and RLS
  forced with no policy, so they can only be read through the parent.
- The owner gets an explicit all-rows policy: FORCE makes RLS apply to it, and
  migrations and operator commands run as the owner.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APP = "securerag_app"

# Tables whose every row belongs to one tenant.
TENANT_TABLES = (
    "documents",
    "chunks",
    "collection_stats",
    "document_shares",
    "casbin_rule",
    "data_keys",
    "api_keys",
    "memory_sessions",
    "memory_entries",
    "audit_log",
)

TENANT = "tenant_id = (SELECT securerag.ctx_tenant())"
ADMIN = f"{TENANT} AND (SELECT securerag.ctx_access()) = 'admin'"
# The read decision of authorization.md, rows 2-4 (row 1 is TENANT).
READER = (
    "classification <= (SELECT securerag.ctx_clearance())"
    " AND NOT (collection LIKE ANY ((SELECT securerag.ctx_deny())::text[]))"
    " AND (collection LIKE ANY ((SELECT securerag.ctx_allow())::text[])"
    "      OR acl && (SELECT securerag.ctx_subjects()))"
)
IS_ADMIN = "(SELECT securerag.ctx_access()) = 'admin'"
READ_FILTERED = f"{TENANT} AND ({IS_ADMIN} OR ({READER}))"
# Counts of what the reader may read, and shares with the reader's subjects: the
# planner's estimate needs them, and a reader should see no more than that.
READER_STATS = (
    f"{TENANT} AND ({IS_ADMIN} OR (classification <= (SELECT securerag.ctx_clearance())"
    " AND NOT (collection LIKE ANY ((SELECT securerag.ctx_deny())::text[]))"
    " AND collection LIKE ANY ((SELECT securerag.ctx_allow())::text[])))"
)
READER_SHARES = (
    f"{TENANT} AND ({IS_ADMIN} OR (subject = ANY ((SELECT securerag.ctx_subjects())::text[])"
    " AND classification <= (SELECT securerag.ctx_clearance())))"
)
OWN_USER = f"{TENANT} AND user_name = (SELECT securerag.ctx_user())"


def _policies(table: str, *, select: str, insert: str, update: str | None, delete: str | None) -> None:
    op.execute(f"ALTER TABLE securerag.{table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE securerag.{table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY app_select ON securerag.{table} FOR SELECT TO {APP} USING ({select})")
    op.execute(f"CREATE POLICY app_insert ON securerag.{table} FOR INSERT TO {APP} WITH CHECK ({insert})")
    if update is not None:
        op.execute(
            f"CREATE POLICY app_update ON securerag.{table} FOR UPDATE TO {APP}"
            f" USING ({update}) WITH CHECK ({update})"
        )
    if delete is not None:
        op.execute(f"CREATE POLICY app_delete ON securerag.{table} FOR DELETE TO {APP} USING ({delete})")
    op.execute(
        f"DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON securerag.{table} TO %I"
        f" USING (true) WITH CHECK (true)', current_user); END $$"
    )


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP}') THEN
            CREATE ROLE {APP} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
          END IF;
        END $$
        """
    )

    # Per-transaction context. Unset or empty reads as NULL: fail closed.
    for name, setting, sql_type in (
        ("ctx_tenant", "tenant_id", "integer"),
        ("ctx_access", "access", "text"),
        ("ctx_user", "user", "text"),
        ("ctx_clearance", "clearance", "smallint"),
        ("ctx_subjects", "subjects", "text[]"),
        ("ctx_allow", "allow", "text[]"),
        ("ctx_deny", "deny", "text[]"),
    ):
        op.execute(
            f"CREATE FUNCTION securerag.{name}() RETURNS {sql_type} LANGUAGE sql STABLE PARALLEL SAFE"
            f" AS $$ SELECT nullif(current_setting('securerag.{setting}', true), '')::{sql_type} $$"
        )

    op.execute(
        """
        CREATE TABLE securerag.tenants (
          id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
          policy_version bigint NOT NULL DEFAULT 0,
          created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE securerag.documents (
          tenant_id integer NOT NULL REFERENCES securerag.tenants (id) ON DELETE CASCADE,
          id uuid NOT NULL,
          collection text COLLATE "C" NOT NULL,
          classification smallint NOT NULL CHECK (classification BETWEEN 0 AND 3),
          acl text[] NOT NULL DEFAULT '{}',
          key_id uuid NOT NULL,
          sealed_meta bytea NOT NULL,
          n_chunks integer NOT NULL CHECK (n_chunks >= 0),
          created_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (tenant_id, id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE securerag.chunks (
          tenant_id integer NOT NULL,
          id uuid NOT NULL,
          document_id uuid NOT NULL,
          ordinal integer NOT NULL CHECK (ordinal >= 0),
          collection text COLLATE "C" NOT NULL,
          classification smallint NOT NULL CHECK (classification BETWEEN 0 AND 3),
          acl text[] NOT NULL,
          embedding vector(384) NOT NULL,
          sealed bytea NOT NULL,
          scan_score real NOT NULL,
          scan_action smallint NOT NULL CHECK (scan_action BETWEEN 0 AND 2),
          scan_reasons text[] NOT NULL DEFAULT '{}',
          scanner_version integer NOT NULL,
          PRIMARY KEY (tenant_id, id),
          FOREIGN KEY (tenant_id, document_id)
            REFERENCES securerag.documents (tenant_id, id) ON DELETE CASCADE
        ) PARTITION BY LIST (tenant_id)
        """
    )
    op.execute(
        "CREATE INDEX chunks_embedding ON securerag.chunks"
        " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 128)"
    )
    op.execute("CREATE INDEX chunks_collection ON securerag.chunks (tenant_id, collection, classification)")
    op.execute("CREATE INDEX chunks_document ON securerag.chunks (tenant_id, document_id)")
    op.execute("CREATE INDEX documents_key ON securerag.documents (tenant_id, key_id)")

    # Chunk counts per (collection, classification) and per acl share: a query
    # estimates how many chunks its reader may see from these, in well under a
    # millisecond, without touching the chunks.
    op.execute(
        """
        CREATE TABLE securerag.collection_stats (
          tenant_id integer NOT NULL REFERENCES securerag.tenants (id) ON DELETE CASCADE,
          collection text COLLATE "C" NOT NULL,
          classification smallint NOT NULL,
          n_chunks bigint NOT NULL,
          PRIMARY KEY (tenant_id, collection, classification)
        )
        """
    )
    # The acl as rows: lets the exact path find shared documents by index
    # (`acl && subjects` is not leakproof, so under RLS it can never drive one).
    op.execute(
        """
        CREATE TABLE securerag.document_shares (
          tenant_id integer NOT NULL,
          subject text NOT NULL,
          document_id uuid NOT NULL,
          classification smallint NOT NULL,
          n_chunks integer NOT NULL,
          PRIMARY KEY (tenant_id, subject, document_id),
          FOREIGN KEY (tenant_id, document_id)
            REFERENCES securerag.documents (tenant_id, id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        """
        CREATE TABLE securerag.casbin_rule (
          tenant_id integer NOT NULL REFERENCES securerag.tenants (id) ON DELETE CASCADE,
          id bigint GENERATED ALWAYS AS IDENTITY,
          ptype text NOT NULL CHECK (ptype IN ('p', 'g')),
          v0 text NOT NULL,
          v1 text NOT NULL,
          v2 text NOT NULL,
          v3 text NOT NULL DEFAULT '',
          v4 text NOT NULL DEFAULT '',
          v5 text NOT NULL DEFAULT '',
          PRIMARY KEY (tenant_id, id),
          UNIQUE (tenant_id, ptype, v0, v1, v2, v3, v4, v5)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE securerag.data_keys (
          tenant_id integer NOT NULL REFERENCES securerag.tenants (id) ON DELETE CASCADE,
          id uuid NOT NULL,
          purpose text NOT NULL CHECK (purpose IN ('tenant', 'document', 'session')),
          ref text NOT NULL DEFAULT '',
          owner text,
          parent_id uuid,
          kek_id text,
          wrapped bytea NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          retired_at timestamptz,
          PRIMARY KEY (tenant_id, id),
          -- A wrapped key cannot outlive the key that wraps it (rotation re-wraps first).
          FOREIGN KEY (tenant_id, parent_id) REFERENCES securerag.data_keys (tenant_id, id)
            ON DELETE RESTRICT,
          CHECK ((purpose = 'tenant') = (parent_id IS NULL)),
          CHECK ((purpose = 'tenant') = (kek_id IS NOT NULL)),
          CHECK ((purpose = 'session') = (owner IS NOT NULL))
        )
        """
    )
    op.execute(
        """
        CREATE TABLE securerag.api_keys (
          id text PRIMARY KEY,
          tenant_id integer NOT NULL REFERENCES securerag.tenants (id) ON DELETE CASCADE,
          user_name text NOT NULL,
          digest bytea NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz,
          revoked_at timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE securerag.memory_sessions (
          tenant_id integer NOT NULL REFERENCES securerag.tenants (id) ON DELETE CASCADE,
          user_name text NOT NULL,
          session_id text NOT NULL,
          key_id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (tenant_id, user_name, session_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE securerag.memory_entries (
          tenant_id integer NOT NULL,
          id uuid NOT NULL,
          user_name text NOT NULL,
          session_id text NOT NULL,
          seq bigint GENERATED ALWAYS AS IDENTITY,
          role text NOT NULL CHECK (role IN ('user', 'assistant')),
          sealed bytea NOT NULL,
          created_at timestamptz NOT NULL,
          expires_at timestamptz,
          PRIMARY KEY (tenant_id, id),
          FOREIGN KEY (tenant_id, user_name, session_id)
            REFERENCES securerag.memory_sessions (tenant_id, user_name, session_id) ON DELETE CASCADE
        )
        """
    )
    op.execute(
        "CREATE INDEX memory_entries_session ON securerag.memory_entries"
        " (tenant_id, user_name, session_id, seq)"
    )
    op.execute("CREATE INDEX memory_entries_expiry ON securerag.memory_entries (expires_at)")
    op.execute(
        """
        CREATE TABLE securerag.audit_log (
          tenant_id integer NOT NULL REFERENCES securerag.tenants (id),
          seq bigint NOT NULL,
          at timestamptz NOT NULL,
          actor text NOT NULL,
          action text NOT NULL,
          detail jsonb NOT NULL,
          prev_mac bytea NOT NULL,
          mac bytea NOT NULL,
          PRIMARY KEY (tenant_id, seq)
        )
        """
    )

    # Policy version: bumped in the same transaction as any rule change, so a
    # process that sees the new rules also sees the new version (no stale cache).
    op.execute(
        """
        CREATE FUNCTION securerag.bump_policy_version() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
          UPDATE securerag.tenants SET policy_version = policy_version + 1
           WHERE id = COALESCE(NEW.tenant_id, OLD.tenant_id);
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER casbin_rule_version AFTER INSERT OR UPDATE OR DELETE ON securerag.casbin_rule"
        " FOR EACH ROW EXECUTE FUNCTION securerag.bump_policy_version()"
    )

    op.execute(
        """
        CREATE FUNCTION securerag.track_documents() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
          IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE securerag.collection_stats SET n_chunks = n_chunks - OLD.n_chunks
             WHERE tenant_id = OLD.tenant_id AND collection = OLD.collection
               AND classification = OLD.classification;
            DELETE FROM securerag.collection_stats
             WHERE tenant_id = OLD.tenant_id AND collection = OLD.collection
               AND classification = OLD.classification AND n_chunks <= 0;
            DELETE FROM securerag.document_shares
             WHERE tenant_id = OLD.tenant_id AND document_id = OLD.id;
          END IF;
          IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO securerag.collection_stats AS s
                   (tenant_id, collection, classification, n_chunks)
            VALUES (NEW.tenant_id, NEW.collection, NEW.classification, NEW.n_chunks)
            ON CONFLICT (tenant_id, collection, classification)
            DO UPDATE SET n_chunks = s.n_chunks + EXCLUDED.n_chunks;
            INSERT INTO securerag.document_shares
                   (tenant_id, subject, document_id, classification, n_chunks)
            SELECT DISTINCT NEW.tenant_id, subject, NEW.id, NEW.classification, NEW.n_chunks
              FROM unnest(NEW.acl) AS subject;
          END IF;
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER documents_track AFTER INSERT OR DELETE"
        " OR UPDATE OF collection, classification, acl, n_chunks ON securerag.documents"
        " FOR EACH ROW EXECUTE FUNCTION securerag.track_documents()"
    )

    # Tenant provisioning for the query role, which cannot run DDL itself.
    op.execute(
        """
        CREATE FUNCTION securerag.ensure_tenant(p_name text) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE
          tid integer;
          part text;
        BEGIN
          SELECT id INTO tid FROM securerag.tenants WHERE name = p_name;
          IF tid IS NOT NULL THEN RETURN tid; END IF;
          PERFORM pg_advisory_xact_lock(hashtext('securerag.ensure_tenant'));
          SELECT id INTO tid FROM securerag.tenants WHERE name = p_name;
          IF tid IS NOT NULL THEN RETURN tid; END IF;
          INSERT INTO securerag.tenants (name) VALUES (p_name) RETURNING id INTO tid;
          -- The partition name is built from the integer id, never from the name.
          part := 'chunks_t' || tid::text;
          EXECUTE format('CREATE TABLE securerag.%I PARTITION OF securerag.chunks FOR VALUES IN (%s)',
                         part, tid);
          EXECUTE format('ALTER TABLE securerag.%I ENABLE ROW LEVEL SECURITY', part);
          EXECUTE format('ALTER TABLE securerag.%I FORCE ROW LEVEL SECURITY', part);
          RETURN tid;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION securerag.tenant_id(p_name text) RETURNS integer
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT id FROM securerag.tenants WHERE name = p_name
        $$
        """
    )
    # API keys are looked up before any tenant is known: one row by its public id.
    op.execute(
        """
        CREATE FUNCTION securerag.lookup_api_key(p_id text)
        RETURNS TABLE (tenant_id integer, tenant_name text, user_name text, digest bytea,
                       expires_at timestamptz, revoked_at timestamptz)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT k.tenant_id, t.name, k.user_name, k.digest, k.expires_at, k.revoked_at
            FROM securerag.api_keys k JOIN securerag.tenants t ON t.id = k.tenant_id
           WHERE k.id = p_id
        $$
        """
    )

    # The audit chain's head, for appending from any access mode (the trail itself is
    # readable by administrators only). Only the transaction's own tenant.
    op.execute(
        """
        CREATE FUNCTION securerag.audit_head(p_tenant integer) RETURNS TABLE (seq bigint, mac bytea)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT a.seq, a.mac FROM securerag.audit_log a
           WHERE a.tenant_id = p_tenant AND p_tenant = securerag.ctx_tenant()
           ORDER BY a.seq DESC LIMIT 1
        $$
        """
    )

    # Row-level security.
    op.execute("ALTER TABLE securerag.tenants ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE securerag.tenants FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY app_select ON securerag.tenants FOR SELECT TO {APP}"
        " USING (id = (SELECT securerag.ctx_tenant()))"
    )
    op.execute(
        "DO $$ BEGIN EXECUTE format('CREATE POLICY owner_all ON securerag.tenants TO %I"
        " USING (true) WITH CHECK (true)', current_user); END $$"
    )
    for table in ("documents", "chunks"):
        _policies(table, select=READ_FILTERED, insert=ADMIN, update=ADMIN, delete=ADMIN)
    # Written only by the SECURITY DEFINER trigger on documents (no write grant).
    _policies("collection_stats", select=READER_STATS, insert=ADMIN, update=ADMIN, delete=ADMIN)
    _policies("document_shares", select=READER_SHARES, insert=ADMIN, update=ADMIN, delete=ADMIN)
    # The whole tenant's policy is needed to compile any one reader's filter.
    _policies("casbin_rule", select=TENANT, insert=ADMIN, update=ADMIN, delete=ADMIN)
    # Looked up by `lookup_api_key()` before any tenant is known; listing is admin work.
    _policies("api_keys", select=ADMIN, insert=ADMIN, update=ADMIN, delete=ADMIN)
    session_key = "(purpose = 'session' AND owner = (SELECT securerag.ctx_user()))"
    # A reader may load tenant keys (they only wrap), its own session keys, and the
    # keys of documents it may read: the EXISTS runs under the documents' policies.
    readable_document_key = (
        "(purpose = 'document' AND EXISTS (SELECT 1 FROM securerag.documents d"
        " WHERE d.tenant_id = data_keys.tenant_id AND d.key_id = data_keys.id))"
    )
    _policies(
        "data_keys",
        select=f"{TENANT} AND ({IS_ADMIN} OR purpose = 'tenant' OR {session_key} OR {readable_document_key})",
        insert=f"({ADMIN}) OR ({TENANT} AND {session_key})",
        update=ADMIN,
        delete=f"({ADMIN}) OR ({TENANT} AND {session_key})",
    )
    for table in ("memory_sessions", "memory_entries"):
        _policies(table, select=OWN_USER, insert=OWN_USER, update=OWN_USER, delete=OWN_USER)
    # Append-only for the query role: no UPDATE or DELETE policy, and no grant. Readers
    # append through `audit_head()` (the chain head only); reading the trail is admin work.
    _policies("audit_log", select=ADMIN, insert=TENANT, update=None, delete=None)

    # Grants: the query role owns nothing and gets only what it needs.
    op.execute(f"GRANT USAGE ON SCHEMA securerag TO {APP}")
    op.execute(f"GRANT SELECT ON securerag.tenants TO {APP}")
    read_only = ("collection_stats", "document_shares")
    tables = ", ".join(f"securerag.{t}" for t in TENANT_TABLES if t not in (*read_only, "audit_log"))
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {APP}")
    op.execute(f"GRANT SELECT ON {', '.join(f'securerag.{t}' for t in read_only)} TO {APP}")
    op.execute(f"GRANT SELECT, INSERT ON securerag.audit_log TO {APP}")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA securerag TO {APP}")
    # Lets the service check the schema version without the owner's credentials.
    op.execute(f"GRANT SELECT ON securerag.alembic_version TO {APP}")
    op.execute("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA securerag FROM PUBLIC")
    for fn in (
        "ctx_tenant()",
        "ctx_access()",
        "ctx_user()",
        "ctx_clearance()",
        "ctx_subjects()",
        "ctx_allow()",
        "ctx_deny()",
        "ensure_tenant(text)",
        "tenant_id(text)",
        "lookup_api_key(text)",
        "audit_head(integer)",
    ):
        op.execute(f"GRANT EXECUTE ON FUNCTION securerag.{fn} TO {APP}")


def downgrade() -> None:
    tables = ", ".join(f"securerag.{t}" for t in (*TENANT_TABLES, "tenants"))
    op.execute(f"DROP TABLE {tables} CASCADE")
    for fn in (
        "ctx_tenant()",
        "ctx_access()",
        "ctx_user()",
        "ctx_clearance()",
        "ctx_subjects()",
        "ctx_allow()",
        "ctx_deny()",
        "bump_policy_version()",
        "track_documents()",
        "ensure_tenant(text)",
        "tenant_id(text)",
        "lookup_api_key(text)",
        "audit_head(integer)",
    ):
        op.execute(f"DROP FUNCTION securerag.{fn}")
