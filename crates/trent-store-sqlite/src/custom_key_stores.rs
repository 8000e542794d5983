//! The `custom_key_stores` table (migration 7): one row per custom key store.

use rusqlite::{Connection, Row, params};
use trent_core::model::CustomKeyStoreRecord;
use trent_core::store::{StoreError, StoreResult};

use crate::backend;

const COLUMNS: &str = "account_id, region, id, name, store_type, cluster_id, \
    trust_anchor_certificate, wrapped_password, connection_state, connection_error_code, created_ms";

fn row(r: &Row<'_>) -> rusqlite::Result<CustomKeyStoreRecord> {
    Ok(CustomKeyStoreRecord {
        account_id: r.get(0)?,
        region: r.get(1)?,
        id: r.get(2)?,
        name: r.get(3)?,
        store_type: r.get(4)?,
        cluster_id: r.get(5)?,
        trust_anchor_certificate: r.get(6)?,
        wrapped_password: r.get(7)?,
        connection_state: r.get(8)?,
        connection_error_code: r.get(9)?,
        created_ms: r.get(10)?,
    })
}

pub(crate) fn list(
    c: &Connection,
    account_id: &str,
    region: &str,
) -> StoreResult<Vec<CustomKeyStoreRecord>> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {COLUMNS} FROM custom_key_stores WHERE account_id = ?1 AND region = ?2 \
             ORDER BY id"
        ))
        .map_err(backend)?;
    stmt.query_map(params![account_id, region], row)
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)
}

pub(crate) fn by_cluster(
    c: &Connection,
    cluster_id: &str,
) -> StoreResult<Vec<CustomKeyStoreRecord>> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {COLUMNS} FROM custom_key_stores WHERE cluster_id = ?1 ORDER BY id"
        ))
        .map_err(backend)?;
    stmt.query_map(params![cluster_id], row)
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)
}

pub(crate) fn insert(c: &Connection, r: &CustomKeyStoreRecord) -> StoreResult<()> {
    c.execute(
        &format!(
            "INSERT INTO custom_key_stores ({COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        params![
            r.account_id,
            r.region,
            r.id,
            r.name,
            r.store_type,
            r.cluster_id,
            r.trust_anchor_certificate,
            r.wrapped_password,
            r.connection_state,
            r.connection_error_code,
            r.created_ms
        ],
    )
    .map_err(backend)?;
    Ok(())
}

pub(crate) fn update(c: &Connection, r: &CustomKeyStoreRecord) -> StoreResult<()> {
    let n = c
        .execute(
            "UPDATE custom_key_stores SET name = ?2, cluster_id = ?3, \
             trust_anchor_certificate = ?4, wrapped_password = ?5, connection_state = ?6, \
             connection_error_code = ?7 WHERE id = ?1",
            params![
                r.id,
                r.name,
                r.cluster_id,
                r.trust_anchor_certificate,
                r.wrapped_password,
                r.connection_state,
                r.connection_error_code
            ],
        )
        .map_err(backend)?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// The keys held in store `id` (migration 10's column, indexed).
pub(crate) fn keys(c: &Connection, id: &str) -> StoreResult<Vec<String>> {
    let mut stmt = c
        .prepare("SELECT key_id FROM keys WHERE custom_key_store_id = ?1 ORDER BY key_id")
        .map_err(backend)?;
    stmt.query_map([id], |r| r.get(0))
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(backend)
}

/// The token keys store `id` is to destroy at its next connect (migration 12).
pub(crate) fn pending_destructions(c: &Connection, id: &str) -> StoreResult<Vec<String>> {
    let mut stmt = c
        .prepare(
            "SELECT label FROM pending_token_destructions WHERE custom_key_store_id = ?1 \
             ORDER BY label",
        )
        .map_err(backend)?;
    stmt.query_map([id], |r| r.get(0))
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(backend)
}

pub(crate) fn add_pending_destruction(
    c: &Connection,
    id: &str,
    label: &str,
    recorded_ms: i64,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO pending_token_destructions (custom_key_store_id, label, recorded_ms) \
         VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        rusqlite::params![id, label, recorded_ms],
    )
    .map_err(backend)?;
    Ok(())
}

pub(crate) fn remove_pending_destruction(c: &Connection, id: &str, label: &str) -> StoreResult<()> {
    c.execute(
        "DELETE FROM pending_token_destructions WHERE custom_key_store_id = ?1 AND label = ?2",
        [id, label],
    )
    .map_err(backend)?;
    Ok(())
}

pub(crate) fn delete(c: &Connection, id: &str) -> StoreResult<()> {
    let n = c
        .execute("DELETE FROM custom_key_stores WHERE id = ?1", [id])
        .map_err(backend)?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}
