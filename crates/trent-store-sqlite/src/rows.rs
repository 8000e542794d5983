//! Mapping between domain records and SQLite rows. Enums are stored by their AWS wire names,
//! tags as a JSON array of `[key, value]` pairs, material ids as 64 hex digits.

use rusqlite::{Connection, OptionalExtension, Row, params};
use trent_core::model::{AliasRecord, KeyCustody, KeyRecord, StoredMaterial, Tag};
use trent_core::store::{StoreError, StoreResult};
use trent_crypto::MaterialId;
use trent_crypto::spec::{KeySpec, KeyState, KeyUsage, Origin, WireEnum};

use crate::backend;

const KEY_COLUMNS: &str = "key_id, account_id, region, created_ms, description, key_spec, key_usage, origin, key_state, policy, tags, current_material_id, multi_region, custom_key_store_id, policy_principals";

pub const SELECT_ALIAS: &str =
    "SELECT account_id, region, alias_name, target_key_id, created_ms, updated_ms FROM aliases";

pub fn insert_key(c: &Connection, k: &KeyRecord) -> StoreResult<()> {
    c.execute(
        &format!("INSERT INTO keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
        params![
            k.key_id,
            k.account_id,
            k.region,
            k.created_ms,
            k.description,
            k.key_spec.as_str(),
            k.key_usage.as_str(),
            k.origin.as_str(),
            k.state.as_str(),
            k.policy,
            tags_to_json(&k.tags),
            k.current_material.to_hex(),
            k.multi_region,
            k.custody.custom_key_store_id(),
            trent_core::model::encode_principal_bindings(&k.policy_principals)
        ],
    )
    .map_err(backend)?;
    // The family of a multi-Region key is fixed at creation, like the flag itself.
    if k.multi_region {
        c.execute(
            "UPDATE keys SET family_id = ?2 WHERE key_id = ?1",
            params![k.key_id, k.public_id()],
        )
        .map_err(backend)?;
    }
    crate::lifecycle_rows::write(c, k)
}

pub fn update_key(c: &Connection, k: &KeyRecord) -> StoreResult<()> {
    let n = c
        .execute(
            "UPDATE keys SET description = ?2, key_state = ?3, policy = ?4, tags = ?5, current_material_id = ?6, policy_principals = ?7 WHERE key_id = ?1",
            params![k.key_id, k.description, k.state.as_str(), k.policy, tags_to_json(&k.tags), k.current_material.to_hex(), trent_core::model::encode_principal_bindings(&k.policy_principals)],
        )
        .map_err(backend)?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        crate::lifecycle_rows::write(c, k)
    }
}

pub fn select_key(c: &Connection, key_id: &str) -> StoreResult<Option<KeyRecord>> {
    let raw = c
        .query_row(
            &format!("SELECT {KEY_COLUMNS} FROM keys WHERE key_id = ?1"),
            [key_id],
            RawKeyRow::read,
        )
        .optional()
        .map_err(backend)?;
    let Some(mut record) = raw.map(RawKeyRow::into_record).transpose()? else {
        return Ok(None);
    };
    record.lifecycle = crate::lifecycle_rows::read(c, key_id)?;
    Ok(Some(record))
}

pub fn select_materials(c: &Connection, key_id: &str) -> StoreResult<Vec<StoredMaterial>> {
    let mut st = c
        .prepare("SELECT key_id, material_id, wrapped, created_ms FROM key_materials WHERE key_id = ?1 ORDER BY created_ms")
        .map_err(backend)?;
    let rows = st
        .query_map([key_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (key_id, material_hex, wrapped, created_ms) = row.map_err(backend)?;
        let material_id =
            MaterialId::from_hex(&material_hex).ok_or_else(|| corrupt("material id"))?;
        out.push(StoredMaterial {
            key_id,
            material_id,
            wrapped,
            created_ms,
        });
    }
    Ok(out)
}

pub fn alias_row(r: &Row<'_>) -> rusqlite::Result<AliasRecord> {
    Ok(AliasRecord {
        account_id: r.get(0)?,
        region: r.get(1)?,
        alias_name: r.get(2)?,
        target_key_id: r.get(3)?,
        created_ms: r.get(4)?,
        updated_ms: r.get(5)?,
    })
}

/// A `keys` row as SQLite gives it, before enum and JSON decoding.
struct RawKeyRow {
    key_id: String,
    account_id: String,
    region: String,
    created_ms: i64,
    description: String,
    key_spec: String,
    key_usage: String,
    origin: String,
    state: String,
    policy: String,
    tags: String,
    current_material: String,
    multi_region: bool,
    custom_key_store_id: Option<String>,
    policy_principals: Option<String>,
}

impl RawKeyRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            key_id: r.get(0)?,
            account_id: r.get(1)?,
            region: r.get(2)?,
            created_ms: r.get(3)?,
            description: r.get(4)?,
            key_spec: r.get(5)?,
            key_usage: r.get(6)?,
            origin: r.get(7)?,
            state: r.get(8)?,
            policy: r.get(9)?,
            tags: r.get(10)?,
            current_material: r.get(11)?,
            multi_region: r.get(12)?,
            custom_key_store_id: r.get(13)?,
            policy_principals: r.get(14)?,
        })
    }

    fn into_record(self) -> StoreResult<KeyRecord> {
        let origin = Origin::parse(&self.origin).ok_or_else(|| corrupt("origin"))?;
        Ok(KeyRecord {
            key_id: self.key_id,
            account_id: self.account_id,
            region: self.region,
            created_ms: self.created_ms,
            description: self.description,
            key_spec: KeySpec::parse(&self.key_spec).ok_or_else(|| corrupt("key spec"))?,
            key_usage: KeyUsage::parse(&self.key_usage).ok_or_else(|| corrupt("key usage"))?,
            origin,
            state: KeyState::parse(&self.state).ok_or_else(|| corrupt("key state"))?,
            policy: self.policy,
            policy_principals: trent_core::model::decode_principal_bindings(
                self.policy_principals.as_deref(),
            )
            .ok_or_else(|| corrupt("key policy principals"))?,
            tags: tags_from_json(&self.tags)?,
            current_material: MaterialId::from_hex(&self.current_material)
                .ok_or_else(|| corrupt("material id"))?,
            multi_region: self.multi_region,
            lifecycle: Default::default(),
            custody: KeyCustody::from_stored(origin, self.custom_key_store_id)
                .ok_or_else(|| corrupt("custom key store of a key"))?,
        })
    }
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} is not valid"))
}

fn tags_to_json(tags: &[Tag]) -> String {
    let pairs: Vec<[&str; 2]> = tags
        .iter()
        .map(|t| [t.key.as_str(), t.value.as_str()])
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

fn tags_from_json(s: &str) -> StoreResult<Vec<Tag>> {
    let pairs: Vec<(String, String)> = serde_json::from_str(s).map_err(|_| corrupt("tags"))?;
    Ok(pairs
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect())
}
