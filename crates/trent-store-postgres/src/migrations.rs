//! Versioned schema migrations, the same history as `trent-store-sqlite`'s `migrations.rs`:
//! migration N here creates what migration N there creates, in PostgreSQL's types (`BIGINT` for
//! SQLite's `INTEGER`, `BYTEA` for `BLOB`, `BOOLEAN` for flags). Text keys are `COLLATE "C"`, so
//! ordering and `>` comparisons (pagination markers) are byte order, as in SQLite, whatever the
//! database's default collation. Never edit a released migration: add one, here and in SQLite.
//!
//! [`migrate`] runs every pending migration in one transaction under an advisory lock, so nodes
//! starting together migrate once, and refuses a database whose schema is newer than this build
//! knows (a newer Trent wrote it: nodes of different versions must not share a database).

use tokio_postgres::Client;
use trent_core::store::{StoreError, StoreResult};

use crate::db;

const MIGRATIONS: &[&str] = &[
    // 1: accounts, access keys, keys with their material versions, aliases.
    r#"
    CREATE TABLE accounts (
        account_id TEXT COLLATE "C" PRIMARY KEY,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE access_keys (
        access_key_id TEXT COLLATE "C" PRIMARY KEY,
        account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(account_id),
        principal_arn TEXT NOT NULL,
        wrapped_secret BYTEA NOT NULL,
        active BOOLEAN NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE keys (
        key_id TEXT COLLATE "C" PRIMARY KEY,
        account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts(account_id),
        region TEXT COLLATE "C" NOT NULL,
        created_ms BIGINT NOT NULL,
        description TEXT NOT NULL,
        key_spec TEXT NOT NULL,
        key_usage TEXT NOT NULL,
        origin TEXT NOT NULL,
        key_state TEXT NOT NULL,
        policy TEXT NOT NULL,
        tags TEXT NOT NULL,
        current_material_id TEXT NOT NULL,
        multi_region BOOLEAN NOT NULL
    );
    CREATE INDEX keys_by_account ON keys (account_id, region, key_id);
    CREATE TABLE key_materials (
        key_id TEXT COLLATE "C" NOT NULL REFERENCES keys(key_id),
        material_id TEXT COLLATE "C" NOT NULL,
        wrapped BYTEA NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (key_id, material_id)
    );
    CREATE TABLE aliases (
        account_id TEXT COLLATE "C" NOT NULL,
        region TEXT COLLATE "C" NOT NULL,
        alias_name TEXT COLLATE "C" NOT NULL,
        target_key_id TEXT COLLATE "C" NOT NULL REFERENCES keys(key_id),
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL,
        PRIMARY KEY (account_id, region, alias_name)
    );
    CREATE INDEX aliases_by_target ON aliases (target_key_id);
    "#,
    // 2: IAM entities as versioned JSON documents, and STS temporary credentials.
    r#"
    CREATE TABLE iam_entities (
        account_id TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (account_id, kind, name)
    );
    CREATE TABLE sessions (
        access_key_id TEXT COLLATE "C" PRIMARY KEY,
        account_id TEXT COLLATE "C" NOT NULL,
        identity TEXT NOT NULL,
        wrapped_secret BYTEA NOT NULL,
        token_sha256 BYTEA NOT NULL,
        expires_ms BIGINT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE INDEX sessions_by_expiry ON sessions (expires_ms);
    "#,
    // 3: grants (retired ones kept as tombstones).
    r#"
    CREATE TABLE grants (
        grant_id TEXT COLLATE "C" PRIMARY KEY,
        key_id TEXT COLLATE "C" NOT NULL REFERENCES keys(key_id),
        retiring_principal TEXT COLLATE "C",
        body TEXT NOT NULL,
        retired_ms BIGINT
    );
    CREATE INDEX grants_by_key ON grants (key_id);
    CREATE INDEX grants_by_retiring_principal ON grants (retiring_principal);
    "#,
    // 4: key lifecycle: rotation schedule, pending deletion, imported-material expiry (due dates
    // indexed for the background task), rotation history, import parameters, the clock offset.
    r#"
    ALTER TABLE keys ADD COLUMN rotation_period_days BIGINT;
    ALTER TABLE keys ADD COLUMN next_rotation_ms BIGINT;
    ALTER TABLE keys ADD COLUMN deletion_ms BIGINT;
    ALTER TABLE keys ADD COLUMN pending_window_days BIGINT;
    ALTER TABLE keys ADD COLUMN expiration_model TEXT;
    ALTER TABLE keys ADD COLUMN valid_to_ms BIGINT;
    CREATE INDEX keys_by_next_rotation ON keys (next_rotation_ms) WHERE next_rotation_ms IS NOT NULL;
    CREATE INDEX keys_by_deletion ON keys (deletion_ms) WHERE deletion_ms IS NOT NULL;
    CREATE INDEX keys_by_valid_to ON keys (valid_to_ms) WHERE valid_to_ms IS NOT NULL;
    CREATE TABLE key_rotations (
        key_id TEXT COLLATE "C" NOT NULL REFERENCES keys(key_id),
        material_id TEXT COLLATE "C" NOT NULL,
        rotation_type TEXT NOT NULL,
        rotation_ms BIGINT NOT NULL,
        PRIMARY KEY (key_id, material_id)
    );
    CREATE TABLE import_params (
        token TEXT COLLATE "C" PRIMARY KEY,
        key_id TEXT COLLATE "C" NOT NULL REFERENCES keys(key_id),
        wrapping_algorithm TEXT NOT NULL,
        wrapping_key_spec TEXT NOT NULL,
        wrapped_private_key BYTEA NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL
    );
    CREATE TABLE service_settings (
        name TEXT COLLATE "C" PRIMARY KEY,
        value BIGINT NOT NULL
    );
    "#,
    // 5: the change feed, and the claims of lifecycle steps (one node per step). A trigger on every table a node caches appends one row per changed
    // row (two for an update: the old row and the new), in the writing transaction, tagged with
    // the writer's `application_name` (its node), and notifies `trent_changes`.
    r#"
    CREATE TABLE changes (
        id BIGSERIAL PRIMARY KEY,
        source TEXT COLLATE "C" NOT NULL,
        account_id TEXT COLLATE "C",
        region TEXT COLLATE "C",
        key_id TEXT COLLATE "C",
        name TEXT COLLATE "C",
        origin TEXT COLLATE "C",
        at_ms BIGINT NOT NULL
    );
    CREATE FUNCTION trent_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        r jsonb;
        items jsonb[] := ARRAY[]::jsonb[];
    BEGIN
        IF TG_OP <> 'INSERT' THEN items := items || to_jsonb(OLD); END IF;
        IF TG_OP <> 'DELETE' THEN items := items || to_jsonb(NEW); END IF;
        FOREACH r IN ARRAY items LOOP
            INSERT INTO changes (source, account_id, region, key_id, name, origin, at_ms)
            VALUES (
                TG_TABLE_NAME,
                r->>'account_id',
                r->>'region',
                COALESCE(r->>'key_id', r->>'target_key_id'),
                COALESCE(r->>'alias_name', r->>'access_key_id', r->>'grant_id', r->>'name'),
                current_setting('application_name', true),
                (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
            );
        END LOOP;
        PERFORM pg_notify('trent_changes', '');
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER keys_changes AFTER INSERT OR UPDATE OR DELETE ON keys
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    CREATE TRIGGER key_materials_changes AFTER INSERT OR UPDATE OR DELETE ON key_materials
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    CREATE TRIGGER aliases_changes AFTER INSERT OR UPDATE OR DELETE ON aliases
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    CREATE TRIGGER grants_changes AFTER INSERT OR UPDATE OR DELETE ON grants
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    CREATE TRIGGER access_keys_changes AFTER INSERT OR UPDATE OR DELETE ON access_keys
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    CREATE TRIGGER sessions_changes AFTER INSERT OR UPDATE OR DELETE ON sessions
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    CREATE TRIGGER iam_entities_changes AFTER INSERT OR UPDATE OR DELETE ON iam_entities
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    CREATE TRIGGER accounts_changes AFTER INSERT OR UPDATE OR DELETE ON accounts
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    CREATE TRIGGER service_settings_changes AFTER INSERT OR UPDATE OR DELETE ON service_settings
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    CREATE TABLE step_claims (
        key_id TEXT COLLATE "C" PRIMARY KEY,
        due_ms BIGINT NOT NULL,
        node TEXT COLLATE "C" NOT NULL,
        claimed_at TIMESTAMPTZ NOT NULL
    );
    "#,
    // 6: multi-Region keys, as SQLite's migration 6: each related key its own row (key id
    // `mrk-…@<region>`), its family (the public id, indexed), its primary's Region, and the due
    // date of a transition (indexed). No new table: `keys` already has its change trigger.
    r#"
    ALTER TABLE keys ADD COLUMN family_id TEXT COLLATE "C";
    ALTER TABLE keys ADD COLUMN primary_region TEXT COLLATE "C";
    ALTER TABLE keys ADD COLUMN transition_ms BIGINT;
    CREATE INDEX keys_by_family ON keys (family_id) WHERE family_id IS NOT NULL;
    CREATE INDEX keys_by_transition ON keys (transition_ms) WHERE transition_ms IS NOT NULL;
    "#,
    // 7: custom key stores, as SQLite's migration 7, with the change trigger of migration 5
    // (a node's connection to a store is its own; the row's changes reach the others' feed).
    r#"
    CREATE TABLE custom_key_stores (
        id TEXT COLLATE "C" PRIMARY KEY,
        account_id TEXT COLLATE "C" NOT NULL,
        region TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        store_type TEXT COLLATE "C" NOT NULL,
        cluster_id TEXT COLLATE "C" NOT NULL,
        trust_anchor_certificate TEXT NOT NULL,
        wrapped_password BYTEA NOT NULL,
        connection_state TEXT COLLATE "C" NOT NULL,
        connection_error_code TEXT COLLATE "C",
        created_ms BIGINT NOT NULL,
        UNIQUE (account_id, region, name)
    );
    CREATE TRIGGER custom_key_stores_changes AFTER INSERT OR UPDATE OR DELETE ON custom_key_stores
        FOR EACH ROW EXECUTE FUNCTION trent_record_change();
    "#,
    // 8: the unique id of the user an access key belongs to, as SQLite's migration 8.
    r#"
    ALTER TABLE access_keys ADD COLUMN principal_id TEXT COLLATE "C";
    "#,
    // 9: the materials imported into a symmetric EXTERNAL key, as SQLite's migration 9.
    r#"
    ALTER TABLE keys ADD COLUMN imported_materials TEXT;
    "#,
    // 10: keys held in a custom key store, as SQLite's migration 10.
    r#"
    ALTER TABLE keys ADD COLUMN custom_key_store_id TEXT COLLATE "C";
    CREATE INDEX keys_by_custom_key_store ON keys (custom_key_store_id) WHERE custom_key_store_id IS NOT NULL;
    "#,
    // 11: one audit trail for several nodes, as SQLite's migration 11 (docs/audit.md, "Several
    // nodes"): each node's committed batches (`trent_audit::ship`), their events with the
    // lookup attributes as indexed columns (newest first per account, per attribute), and per
    // node where the chain starts after retention. No change trigger: no cache mirrors them.
    r#"
    CREATE TABLE audit_batches (
        node_id TEXT COLLATE "C" NOT NULL,
        batch BIGINT NOT NULL,
        previous_digest TEXT COLLATE "C" NOT NULL,
        digest TEXT COLLATE "C" NOT NULL,
        events BIGINT NOT NULL,
        newest_event_secs BIGINT NOT NULL,
        PRIMARY KEY (node_id, batch)
    );
    CREATE INDEX audit_batches_by_age ON audit_batches (node_id, newest_event_secs);
    CREATE TABLE audit_events (
        node_id TEXT COLLATE "C" NOT NULL,
        batch BIGINT NOT NULL,
        line_no INTEGER NOT NULL,
        recipient_account_id TEXT COLLATE "C" NOT NULL,
        event_time BIGINT NOT NULL,
        event_id TEXT COLLATE "C" NOT NULL,
        event_name TEXT COLLATE "C" NOT NULL,
        event_source TEXT COLLATE "C" NOT NULL,
        read_only BOOLEAN,
        username TEXT COLLATE "C",
        access_key_id TEXT COLLATE "C",
        resource_type TEXT COLLATE "C",
        resource_name TEXT COLLATE "C",
        error_code TEXT COLLATE "C",
        request_id TEXT COLLATE "C",
        record BYTEA NOT NULL,
        PRIMARY KEY (node_id, batch, line_no),
        FOREIGN KEY (node_id, batch) REFERENCES audit_batches (node_id, batch) ON DELETE CASCADE
    );
    CREATE INDEX audit_events_newest ON audit_events
        (recipient_account_id, event_time DESC, node_id DESC, batch DESC, line_no DESC);
    CREATE INDEX audit_events_by_event_id ON audit_events (recipient_account_id, event_id);
    CREATE INDEX audit_events_by_event_name ON audit_events
        (recipient_account_id, event_name, event_time DESC, node_id DESC, batch DESC, line_no DESC);
    CREATE INDEX audit_events_by_event_source ON audit_events
        (recipient_account_id, event_source, event_time DESC, node_id DESC, batch DESC, line_no DESC);
    CREATE INDEX audit_events_by_read_only ON audit_events
        (recipient_account_id, read_only, event_time DESC, node_id DESC, batch DESC, line_no DESC);
    CREATE INDEX audit_events_by_username ON audit_events
        (recipient_account_id, username, event_time DESC, node_id DESC, batch DESC, line_no DESC);
    CREATE INDEX audit_events_by_access_key_id ON audit_events
        (recipient_account_id, access_key_id, event_time DESC, node_id DESC, batch DESC, line_no DESC);
    CREATE INDEX audit_events_by_resource_type ON audit_events
        (recipient_account_id, resource_type, event_time DESC, node_id DESC, batch DESC, line_no DESC);
    CREATE INDEX audit_events_by_resource_name ON audit_events
        (resource_name, event_time DESC, node_id DESC, batch DESC, line_no DESC);
    CREATE TABLE audit_pruned (
        node_id TEXT COLLATE "C" PRIMARY KEY,
        batch BIGINT NOT NULL,
        digest TEXT COLLATE "C" NOT NULL
    );
    "#,
    // 12: the principal bindings of a key policy, as SQLite's migration 12 (a `keys` column:
    // the existing change trigger carries it to other nodes).
    r#"
    ALTER TABLE keys ADD COLUMN policy_principals TEXT;
    "#,
    // 13: token keys a custom key store is to destroy at its next connect, as SQLite's
    // migration 13. No change trigger: no cache mirrors them (the connecting node reads them).
    r#"
    CREATE TABLE pending_token_destructions (
        custom_key_store_id TEXT COLLATE "C" NOT NULL,
        label TEXT COLLATE "C" NOT NULL,
        recorded_ms BIGINT NOT NULL,
        PRIMARY KEY (custom_key_store_id, label)
    );
    "#,
];

/// The advisory lock key migrations hold (any constant unique to Trent: "trent" in ASCII).
const MIGRATION_LOCK: i64 = 0x0074_7265_6e74;

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the schema up to the latest version, or refuses a newer one.
pub async fn migrate(client: &mut Client) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .await
        .map_err(db)?;
    let current: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
    check_version(current)?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        if version <= current {
            continue;
        }
        tx.batch_execute(sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

/// Refuses a schema newer than this build's.
pub fn check_version(current: i64) -> StoreResult<()> {
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::Backend(format!(
            "the database's schema is version {current}, newer than this Trent's {latest}: a \
             newer Trent has migrated it; run that version (every node on one database must run \
             the same version)"
        )));
    }
    Ok(())
}
