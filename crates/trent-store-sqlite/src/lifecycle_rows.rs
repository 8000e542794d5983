//! Rows of the key lifecycle: the lifecycle columns of `keys`, rotation history, import
//! parameters, and the service clock offset (migration 2).

use rusqlite::{Connection, OptionalExtension, params};
use trent_core::model::{
    AliasRecord, ExpirationModel, ImportParams, KeyLifecycle, KeyRecord, RotationRecord,
    RotationType, StoredMaterial,
};
use trent_core::store::StoreResult;
use trent_crypto::MaterialId;
use trent_crypto::import::{WrappingAlgorithm, WrappingKeySpec};
use trent_crypto::spec::WireEnum;

use crate::backend;
use crate::rows::{SELECT_ALIAS, alias_row, corrupt};

pub fn write(c: &Connection, k: &KeyRecord) -> StoreResult<()> {
    let l = &k.lifecycle;
    c.execute(
        "UPDATE keys SET rotation_period_days = ?2, next_rotation_ms = ?3, deletion_ms = ?4, pending_window_days = ?5, expiration_model = ?6, valid_to_ms = ?7, primary_region = ?8, transition_ms = ?9, imported_materials = ?10 WHERE key_id = ?1",
        params![
            k.key_id,
            l.rotation_period_days,
            l.next_rotation_ms,
            l.deletion_ms,
            l.pending_window_days,
            l.expiration_model.map(WireEnum::as_str),
            l.valid_to_ms,
            l.primary_region,
            l.transition_ms,
            trent_core::lifecycle::encode_imported_materials(&l.imported_materials)
        ],
    )
    .map_err(backend)?;
    Ok(())
}

pub fn read(c: &Connection, key_id: &str) -> StoreResult<KeyLifecycle> {
    let (
        (rotation_period_days, next_rotation_ms, deletion_ms, pending_window_days, model, valid_to_ms),
        (family_id, primary_region, transition_ms, imported),
    ) = c
        .query_row(
            "SELECT rotation_period_days, next_rotation_ms, deletion_ms, pending_window_days, expiration_model, valid_to_ms, family_id, primary_region, transition_ms, imported_materials FROM keys WHERE key_id = ?1",
            [key_id],
            |r| {
                Ok((
                    (
                        r.get::<_, Option<i64>>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                    ),
                    (
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Option<String>>(7)?,
                        r.get::<_, Option<i64>>(8)?,
                        r.get::<_, Option<String>>(9)?,
                    ),
                ))
            },
        )
        .map_err(backend)?;
    let replica_regions = match &family_id {
        Some(family) => replica_regions(c, family, primary_region.as_deref())?,
        None => Vec::new(),
    };
    let expiration_model = model
        .map(|m| ExpirationModel::parse(&m).ok_or_else(|| corrupt("expiration model")))
        .transpose()?;
    let imported_materials = trent_core::lifecycle::decode_imported_materials(imported.as_deref())
        .ok_or_else(|| corrupt("imported materials"))?;
    Ok(KeyLifecycle {
        imported_materials,
        rotation_period_days,
        next_rotation_ms,
        deletion_ms,
        pending_window_days,
        expiration_model,
        valid_to_ms,
        primary_region,
        replica_regions,
        transition_ms,
    })
}

/// The Regions of `family`'s keys other than `primary`, sorted.
fn replica_regions(
    c: &Connection,
    family: &str,
    primary: Option<&str>,
) -> StoreResult<Vec<String>> {
    let mut st = c
        .prepare("SELECT region FROM keys WHERE family_id = ?1 ORDER BY region")
        .map_err(backend)?;
    let rows = st
        .query_map([family], |r| r.get::<_, String>(0))
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let region = row.map_err(backend)?;
        if Some(region.as_str()) != primary {
            out.push(region);
        }
    }
    Ok(out)
}

/// `Store::write_keys`: one transaction, statements in the documented order.
pub fn write_keys(c: &mut Connection, w: &trent_core::store::KeysWrite<'_>) -> StoreResult<()> {
    let tx = c.transaction().map_err(backend)?;
    if let Some(k) = w.insert {
        crate::rows::insert_key(&tx, k)?;
    }
    for k in w.update {
        crate::rows::update_key(&tx, k)?;
    }
    for m in w.materials {
        tx.execute(
            "INSERT OR IGNORE INTO key_materials (key_id, material_id, wrapped, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![m.key_id, m.material_id.to_hex(), m.wrapped, m.created_ms],
        )
        .map_err(backend)?;
    }
    for r in w.rotations {
        tx.execute(
            "INSERT INTO key_rotations (key_id, material_id, rotation_type, rotation_ms) VALUES (?1, ?2, ?3, ?4)",
            params![r.key_id, r.material_id.to_hex(), r.rotation_type.as_str(), r.rotation_ms],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}

pub fn add_material(
    c: &mut Connection,
    key: &KeyRecord,
    m: &StoredMaterial,
    rotation: Option<&RotationRecord>,
) -> StoreResult<()> {
    let tx = c.transaction().map_err(backend)?;
    tx.execute(
        "INSERT OR IGNORE INTO key_materials (key_id, material_id, wrapped, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![m.key_id, m.material_id.to_hex(), m.wrapped, m.created_ms],
    )
    .map_err(backend)?;
    if let Some(r) = rotation {
        tx.execute(
            "INSERT INTO key_rotations (key_id, material_id, rotation_type, rotation_ms) VALUES (?1, ?2, ?3, ?4)",
            params![r.key_id, r.material_id.to_hex(), r.rotation_type.as_str(), r.rotation_ms],
        )
        .map_err(backend)?;
    }
    crate::rows::update_key(&tx, key)?;
    tx.commit().map_err(backend)
}

pub fn rotations(c: &Connection, key_id: &str) -> StoreResult<Vec<RotationRecord>> {
    let mut st = c
        .prepare("SELECT key_id, material_id, rotation_type, rotation_ms FROM key_rotations WHERE key_id = ?1 ORDER BY rotation_ms, material_id")
        .map_err(backend)?;
    let rows = st
        .query_map([key_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (key_id, material, kind, rotation_ms) = row.map_err(backend)?;
        out.push(RotationRecord {
            key_id,
            material_id: MaterialId::from_hex(&material).ok_or_else(|| corrupt("material id"))?,
            rotation_type: RotationType::parse(&kind).ok_or_else(|| corrupt("rotation type"))?,
            rotation_ms,
        });
    }
    Ok(out)
}

pub fn delete_materials(c: &mut Connection, key: &KeyRecord) -> StoreResult<()> {
    let tx = c.transaction().map_err(backend)?;
    tx.execute("DELETE FROM key_materials WHERE key_id = ?1", [&key.key_id])
        .map_err(backend)?;
    crate::rows::update_key(&tx, key)?;
    tx.commit().map_err(backend)
}

pub fn delete_material(
    c: &mut Connection,
    key: &KeyRecord,
    material_id: &MaterialId,
) -> StoreResult<()> {
    let tx = c.transaction().map_err(backend)?;
    tx.execute(
        "DELETE FROM key_materials WHERE key_id = ?1 AND material_id = ?2",
        params![key.key_id, material_id.to_hex()],
    )
    .map_err(backend)?;
    crate::rows::update_key(&tx, key)?;
    tx.commit().map_err(backend)
}

pub fn delete_key(c: &mut Connection, key_id: &str) -> StoreResult<Vec<AliasRecord>> {
    let tx = c.transaction().map_err(backend)?;
    let aliases = {
        let mut st = tx
            .prepare(&format!("{SELECT_ALIAS} WHERE target_key_id = ?1"))
            .map_err(backend)?;
        let rows = st.query_map([key_id], alias_row).map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
    };
    // Grants (tombstones included) go with the key.
    for table in [
        "aliases",
        "grants",
        "import_params",
        "key_rotations",
        "key_materials",
    ] {
        let column = if table == "aliases" {
            "target_key_id"
        } else {
            "key_id"
        };
        tx.execute(
            &format!("DELETE FROM {table} WHERE {column} = ?1"),
            [key_id],
        )
        .map_err(backend)?;
    }
    let n = tx
        .execute("DELETE FROM keys WHERE key_id = ?1", [key_id])
        .map_err(backend)?;
    if n == 0 {
        return Err(trent_core::StoreError::NotFound);
    }
    tx.commit().map_err(backend)?;
    Ok(aliases)
}

pub fn keys_due(c: &Connection, now_ms: i64) -> StoreResult<Vec<String>> {
    let mut st = c
        .prepare(
            "SELECT key_id FROM keys WHERE deletion_ms <= ?1 OR valid_to_ms <= ?1 \
             OR transition_ms <= ?1 \
             OR (next_rotation_ms <= ?1 AND key_state = 'Enabled') ORDER BY key_id",
        )
        .map_err(backend)?;
    let rows = st.query_map([now_ms], |r| r.get(0)).map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

pub fn insert_import_params(c: &Connection, p: &ImportParams) -> StoreResult<()> {
    c.execute(
        "INSERT INTO import_params (token, key_id, wrapping_algorithm, wrapping_key_spec, wrapped_private_key, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            p.token,
            p.key_id,
            p.wrapping_algorithm.as_str(),
            p.wrapping_key_spec.as_str(),
            p.wrapped_private_key,
            p.created_ms,
            p.expires_ms
        ],
    )
    .map_err(backend)?;
    Ok(())
}

pub fn import_params(c: &Connection, token: &str) -> StoreResult<Option<ImportParams>> {
    let raw = c
        .query_row(
            "SELECT token, key_id, wrapping_algorithm, wrapping_key_spec, wrapped_private_key, created_ms, expires_ms FROM import_params WHERE token = ?1",
            [token],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            },
        )
        .optional()
        .map_err(backend)?;
    let Some((token, key_id, algorithm, spec, wrapped_private_key, created_ms, expires_ms)) = raw
    else {
        return Ok(None);
    };
    Ok(Some(ImportParams {
        token,
        key_id,
        wrapping_algorithm: WrappingAlgorithm::parse(&algorithm)
            .ok_or_else(|| corrupt("wrapping algorithm"))?,
        wrapping_key_spec: WrappingKeySpec::parse(&spec)
            .ok_or_else(|| corrupt("wrapping key spec"))?,
        wrapped_private_key,
        created_ms,
        expires_ms,
    }))
}

pub fn delete_expired_import_params(c: &Connection, now_ms: i64) -> StoreResult<u64> {
    let n = c
        .execute("DELETE FROM import_params WHERE expires_ms <= ?1", [now_ms])
        .map_err(backend)?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}

pub fn clock_offset_ms(c: &Connection) -> StoreResult<i64> {
    Ok(c.query_row(
        "SELECT value FROM service_settings WHERE name = 'clock_offset_ms'",
        [],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)?
    .unwrap_or(0))
}

pub fn set_clock_offset_ms(c: &Connection, offset_ms: i64) -> StoreResult<()> {
    c.execute(
        "INSERT INTO service_settings (name, value) VALUES ('clock_offset_ms', ?1) ON CONFLICT (name) DO UPDATE SET value = ?1",
        [offset_ms],
    )
    .map_err(backend)?;
    Ok(())
}

/// The `service_settings` row recording that start-up pass `name` finished.
fn pass_setting(name: &str) -> String {
    format!("pass_done:{name}")
}

pub fn pass_done(c: &Connection, name: &str) -> StoreResult<bool> {
    Ok(c.query_row(
        "SELECT value FROM service_settings WHERE name = ?1",
        [pass_setting(name)],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map_err(backend)?
    .is_some())
}

pub fn set_pass_done(c: &Connection, name: &str, done: bool) -> StoreResult<()> {
    let sql = if done {
        "INSERT INTO service_settings (name, value) VALUES (?1, 1) ON CONFLICT (name) DO NOTHING"
    } else {
        "DELETE FROM service_settings WHERE name = ?1"
    };
    c.execute(sql, [pass_setting(name)]).map_err(backend)?;
    Ok(())
}
