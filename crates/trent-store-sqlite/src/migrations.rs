//! Versioned schema migrations. Each entry runs once, in order, in its own transaction, and the
//! applied version is recorded in `schema_version`. Never edit a released migration: add one
//! (here and in `trent-store-postgres`, which keeps the same history). A database whose schema
//! is newer than this build's (a newer Trent migrated it) is refused at open.

use rusqlite::Connection;
use trent_core::store::{StoreError, StoreResult};

use crate::backend;

const MIGRATIONS: &[&str] = &[
    // 1: accounts, access keys, keys with their material versions, aliases.
    r#"
    CREATE TABLE accounts (
        account_id TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE access_keys (
        access_key_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(account_id),
        principal_arn TEXT NOT NULL,
        wrapped_secret BLOB NOT NULL,
        active INTEGER NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE keys (
        key_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(account_id),
        region TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        description TEXT NOT NULL,
        key_spec TEXT NOT NULL,
        key_usage TEXT NOT NULL,
        origin TEXT NOT NULL,
        key_state TEXT NOT NULL,
        policy TEXT NOT NULL,
        tags TEXT NOT NULL,
        current_material_id TEXT NOT NULL,
        multi_region INTEGER NOT NULL
    );
    CREATE INDEX keys_by_account ON keys (account_id, region, key_id);
    CREATE TABLE key_materials (
        key_id TEXT NOT NULL REFERENCES keys(key_id),
        material_id TEXT NOT NULL,
        wrapped BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (key_id, material_id)
    );
    CREATE TABLE aliases (
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        alias_name TEXT NOT NULL,
        target_key_id TEXT NOT NULL REFERENCES keys(key_id),
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (account_id, region, alias_name)
    );
    "#,
    // 2: IAM entities as versioned JSON documents, and STS temporary credentials.
    r#"
    CREATE TABLE iam_entities (
        account_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (account_id, kind, name)
    );
    CREATE TABLE sessions (
        access_key_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        identity TEXT NOT NULL,
        wrapped_secret BLOB NOT NULL,
        token_sha256 BLOB NOT NULL,
        expires_ms INTEGER NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX sessions_by_expiry ON sessions (expires_ms);
    "#,
    // 3: grants (retired ones kept as tombstones).
    r#"
    CREATE TABLE grants (
        grant_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys(key_id),
        retiring_principal TEXT,
        body TEXT NOT NULL,
        retired_ms INTEGER
    );
    CREATE INDEX grants_by_key ON grants (key_id);
    CREATE INDEX grants_by_retiring_principal ON grants (retiring_principal);
    "#,
    // 4: key lifecycle: rotation schedule, pending deletion, imported-material expiry (due dates
    // indexed for the background task), rotation history, import parameters, the clock offset.
    r#"
    ALTER TABLE keys ADD COLUMN rotation_period_days INTEGER;
    ALTER TABLE keys ADD COLUMN next_rotation_ms INTEGER;
    ALTER TABLE keys ADD COLUMN deletion_ms INTEGER;
    ALTER TABLE keys ADD COLUMN pending_window_days INTEGER;
    ALTER TABLE keys ADD COLUMN expiration_model TEXT;
    ALTER TABLE keys ADD COLUMN valid_to_ms INTEGER;
    CREATE INDEX keys_by_next_rotation ON keys (next_rotation_ms) WHERE next_rotation_ms IS NOT NULL;
    CREATE INDEX keys_by_deletion ON keys (deletion_ms) WHERE deletion_ms IS NOT NULL;
    CREATE INDEX keys_by_valid_to ON keys (valid_to_ms) WHERE valid_to_ms IS NOT NULL;
    CREATE TABLE key_rotations (
        key_id TEXT NOT NULL REFERENCES keys(key_id),
        material_id TEXT NOT NULL,
        rotation_type TEXT NOT NULL,
        rotation_ms INTEGER NOT NULL,
        PRIMARY KEY (key_id, material_id)
    );
    CREATE TABLE import_params (
        token TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys(key_id),
        wrapping_algorithm TEXT NOT NULL,
        wrapping_key_spec TEXT NOT NULL,
        wrapped_private_key BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE TABLE service_settings (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    "#,
    // 5: the change feed's and the step claims' tables (PostgreSQL's triggers and nodes fill
    // them; one process on a SQLite file needs neither, so nothing writes them here yet).
    r#"
    CREATE TABLE changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        account_id TEXT,
        region TEXT,
        key_id TEXT,
        name TEXT,
        origin TEXT,
        at_ms INTEGER NOT NULL
    );
    CREATE TABLE step_claims (
        key_id TEXT PRIMARY KEY,
        due_ms INTEGER NOT NULL,
        node TEXT NOT NULL,
        claimed_at INTEGER NOT NULL
    );
    "#,
    // 6: multi-Region keys: each related key is its own row (key id `mrk-…@<region>`), with
    // its family (the public id, indexed: a key's replica Regions are read from its family's
    // rows), its primary's Region, and when a transition (Creating, Updating, the wait of a
    // primary pending replica deletion) is next due (indexed for the background task).
    r#"
    ALTER TABLE keys ADD COLUMN family_id TEXT;
    ALTER TABLE keys ADD COLUMN primary_region TEXT;
    ALTER TABLE keys ADD COLUMN transition_ms INTEGER;
    CREATE INDEX keys_by_family ON keys (family_id) WHERE family_id IS NOT NULL;
    CREATE INDEX keys_by_transition ON keys (transition_ms) WHERE transition_ms IS NOT NULL;
    "#,
    // 7: custom key stores (AWS_CLOUDHSM type): one row per store, its name unique in its
    // account and Region, the key store password root-wrapped, the last persisted connection
    // state.
    r#"
    CREATE TABLE custom_key_stores (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        store_type TEXT NOT NULL,
        cluster_id TEXT NOT NULL,
        trust_anchor_certificate TEXT NOT NULL,
        wrapped_password BLOB NOT NULL,
        connection_state TEXT NOT NULL,
        connection_error_code TEXT,
        created_ms INTEGER NOT NULL,
        UNIQUE (account_id, region, name)
    );
    "#,
    // 8: the unique id of the user an access key belongs to (NULL for root keys; keys stored
    // before this version are bound at start-up to the user then of that name).
    r#"
    ALTER TABLE access_keys ADD COLUMN principal_id TEXT;
    "#,
    // 9: the materials imported into a symmetric EXTERNAL key, with their states and expiry
    // (trent-core's `encode_imported_materials` form; NULL for other keys).
    r#"
    ALTER TABLE keys ADD COLUMN imported_materials TEXT;
    "#,
    // 10: keys held in a custom key store: the store, fixed at creation (NULL for Trent's own
    // material), indexed for the store's key count and CustomKeyStoreHasCMKs.
    r#"
    ALTER TABLE keys ADD COLUMN custom_key_store_id TEXT;
    CREATE INDEX keys_by_custom_key_store ON keys (custom_key_store_id) WHERE custom_key_store_id IS NOT NULL;
    "#,
    // 11: the shared audit trail's tables (PostgreSQL's migration 11: every node ships its
    // committed batches there). One process on a SQLite file reads its own trail's files, so
    // nothing writes these here; they exist so both histories stay the same.
    r#"
    CREATE TABLE audit_batches (
        node_id TEXT NOT NULL,
        batch INTEGER NOT NULL,
        previous_digest TEXT NOT NULL,
        digest TEXT NOT NULL,
        events INTEGER NOT NULL,
        newest_event_secs INTEGER NOT NULL,
        PRIMARY KEY (node_id, batch)
    );
    CREATE TABLE audit_events (
        node_id TEXT NOT NULL,
        batch INTEGER NOT NULL,
        line_no INTEGER NOT NULL,
        recipient_account_id TEXT NOT NULL,
        event_time INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        event_name TEXT NOT NULL,
        event_source TEXT NOT NULL,
        read_only INTEGER,
        username TEXT,
        access_key_id TEXT,
        resource_type TEXT,
        resource_name TEXT,
        error_code TEXT,
        request_id TEXT,
        record BLOB NOT NULL,
        PRIMARY KEY (node_id, batch, line_no),
        FOREIGN KEY (node_id, batch) REFERENCES audit_batches (node_id, batch) ON DELETE CASCADE
    );
    CREATE TABLE audit_pruned (
        node_id TEXT PRIMARY KEY,
        batch INTEGER NOT NULL,
        digest TEXT NOT NULL
    );
    "#,
    // 12: the unique id each IAM user or role principal of a key policy was bound to when the
    // policy was set (trent-core's `encode_principal_bindings` form; NULL: none, or a policy
    // stored before this version, whose principals are still compared by ARN).
    r#"
    ALTER TABLE keys ADD COLUMN policy_principals TEXT;
    "#,
    // 13: token keys a custom key store is to destroy at its next connect: those of keys
    // deleted while it was disconnected (`custom_key_stores.rs`), by store and label.
    r#"
    CREATE TABLE pending_token_destructions (
        custom_key_store_id TEXT NOT NULL,
        label TEXT NOT NULL,
        recorded_ms INTEGER NOT NULL,
        PRIMARY KEY (custom_key_store_id, label)
    );
    "#,
];

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Brings the schema up to the latest version, or refuses a newer one.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    apply(conn).map_err(backend)?
}

fn apply(conn: &mut Connection) -> rusqlite::Result<StoreResult<()>> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    let latest = latest_version();
    if current > latest {
        return Ok(Err(StoreError::Backend(format!(
            "the database's schema is version {current}, newer than this Trent's {latest}: a \
             newer Trent has migrated it; run that version"
        ))));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        if version <= current {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )?;
        tx.commit()?;
    }
    Ok(Ok(()))
}
