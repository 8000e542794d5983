//! Mapping between domain records and PostgreSQL rows, the same encoding as SQLite's: enums by
//! their AWS wire names, tags as a JSON array of `[key, value]` pairs, material ids as 64 hex
//! digits, times as milliseconds (`BIGINT`).

use tokio_postgres::Row;
use trent_core::model::{
    AccessKeyRecord, AliasRecord, ExpirationModel, GrantRow, ImportParams, KeyCustody,
    KeyLifecycle, KeyRecord, RotationRecord, RotationType, SessionRecord, StoredMaterial, Tag,
};
use trent_core::store::{StoreError, StoreResult};
use trent_crypto::MaterialId;
use trent_crypto::import::{WrappingAlgorithm, WrappingKeySpec};
use trent_crypto::spec::{KeySpec, KeyState, KeyUsage, Origin, WireEnum};

use crate::db;

/// The `keys` columns, lifecycle included, in the order [`key`] reads them.
pub const KEY_COLUMNS: &str = "key_id, account_id, region, created_ms, description, key_spec, \
     key_usage, origin, key_state, policy, tags, current_material_id, multi_region, \
     rotation_period_days, next_rotation_ms, deletion_ms, pending_window_days, expiration_model, \
     valid_to_ms, family_id, primary_region, transition_ms, imported_materials, \
     custom_key_store_id, policy_principals";

pub const ALIAS_COLUMNS: &str =
    "account_id, region, alias_name, target_key_id, created_ms, updated_ms";

pub const ACCESS_KEY_COLUMNS: &str =
    "access_key_id, account_id, principal_arn, wrapped_secret, active, created_ms, principal_id";

pub const SESSION_COLUMNS: &str = "access_key_id, account_id, identity, wrapped_secret, \
     token_sha256, expires_ms, created_ms";

pub const GRANT_COLUMNS: &str = "grant_id, key_id, retiring_principal, body, retired_ms";

pub const IMPORT_COLUMNS: &str = "token, key_id, wrapping_algorithm, wrapping_key_spec, \
     wrapped_private_key, created_ms, expires_ms";

pub fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} is not valid"))
}

fn wire<T: WireEnum>(s: &str, what: &str) -> StoreResult<T> {
    T::parse(s).ok_or_else(|| corrupt(what))
}

fn material_id(s: &str) -> StoreResult<MaterialId> {
    MaterialId::from_hex(s).ok_or_else(|| corrupt("material id"))
}

pub fn tags_to_json(tags: &[Tag]) -> String {
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

pub fn key(r: &Row) -> StoreResult<KeyRecord> {
    let model: Option<String> = r.try_get(17).map_err(db)?;
    let origin = wire::<Origin>(r.try_get(7).map_err(db)?, "origin")?;
    Ok(KeyRecord {
        key_id: r.try_get(0).map_err(db)?,
        account_id: r.try_get(1).map_err(db)?,
        region: r.try_get(2).map_err(db)?,
        created_ms: r.try_get(3).map_err(db)?,
        description: r.try_get(4).map_err(db)?,
        key_spec: wire::<KeySpec>(r.try_get(5).map_err(db)?, "key spec")?,
        key_usage: wire::<KeyUsage>(r.try_get(6).map_err(db)?, "key usage")?,
        origin,
        state: wire::<KeyState>(r.try_get(8).map_err(db)?, "key state")?,
        policy: r.try_get(9).map_err(db)?,
        policy_principals: trent_core::model::decode_principal_bindings(
            r.try_get::<_, Option<&str>>(24).map_err(db)?,
        )
        .ok_or_else(|| corrupt("key policy principals"))?,
        tags: tags_from_json(r.try_get(10).map_err(db)?)?,
        current_material: material_id(r.try_get(11).map_err(db)?)?,
        multi_region: r.try_get(12).map_err(db)?,
        lifecycle: KeyLifecycle {
            rotation_period_days: r.try_get(13).map_err(db)?,
            next_rotation_ms: r.try_get(14).map_err(db)?,
            deletion_ms: r.try_get(15).map_err(db)?,
            pending_window_days: r.try_get(16).map_err(db)?,
            expiration_model: model
                .map(|m| wire::<ExpirationModel>(&m, "expiration model"))
                .transpose()?,
            valid_to_ms: r.try_get(18).map_err(db)?,
            // Column 19 (family_id) is derived from the key id; the replica Regions are read
            // from the family's rows by the caller.
            primary_region: r.try_get(20).map_err(db)?,
            replica_regions: Vec::new(),
            transition_ms: r.try_get(21).map_err(db)?,
            imported_materials: trent_core::lifecycle::decode_imported_materials(
                r.try_get::<_, Option<&str>>(22).map_err(db)?,
            )
            .ok_or_else(|| corrupt("imported materials"))?,
        },
        custody: KeyCustody::from_stored(origin, r.try_get(23).map_err(db)?)
            .ok_or_else(|| corrupt("custom key store of a key"))?,
    })
}

pub fn material(r: &Row) -> StoreResult<StoredMaterial> {
    Ok(StoredMaterial {
        key_id: r.try_get(0).map_err(db)?,
        material_id: material_id(r.try_get(1).map_err(db)?)?,
        wrapped: r.try_get(2).map_err(db)?,
        created_ms: r.try_get(3).map_err(db)?,
    })
}

pub fn alias(r: &Row) -> StoreResult<AliasRecord> {
    Ok(AliasRecord {
        account_id: r.try_get(0).map_err(db)?,
        region: r.try_get(1).map_err(db)?,
        alias_name: r.try_get(2).map_err(db)?,
        target_key_id: r.try_get(3).map_err(db)?,
        created_ms: r.try_get(4).map_err(db)?,
        updated_ms: r.try_get(5).map_err(db)?,
    })
}

pub fn access_key(r: &Row) -> StoreResult<AccessKeyRecord> {
    Ok(AccessKeyRecord {
        access_key_id: r.try_get(0).map_err(db)?,
        account_id: r.try_get(1).map_err(db)?,
        principal_arn: r.try_get(2).map_err(db)?,
        wrapped_secret: r.try_get(3).map_err(db)?,
        active: r.try_get(4).map_err(db)?,
        created_ms: r.try_get(5).map_err(db)?,
        principal_id: r.try_get(6).map_err(db)?,
    })
}

pub fn session(r: &Row) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        access_key_id: r.try_get(0).map_err(db)?,
        account_id: r.try_get(1).map_err(db)?,
        identity: r.try_get(2).map_err(db)?,
        wrapped_secret: r.try_get(3).map_err(db)?,
        token_sha256: r.try_get(4).map_err(db)?,
        expires_ms: r.try_get(5).map_err(db)?,
        created_ms: r.try_get(6).map_err(db)?,
    })
}

pub fn grant(r: &Row) -> StoreResult<GrantRow> {
    Ok(GrantRow {
        grant_id: r.try_get(0).map_err(db)?,
        key_id: r.try_get(1).map_err(db)?,
        retiring_principal: r.try_get(2).map_err(db)?,
        body: r.try_get(3).map_err(db)?,
        retired_ms: r.try_get(4).map_err(db)?,
    })
}

pub fn rotation(r: &Row) -> StoreResult<RotationRecord> {
    Ok(RotationRecord {
        key_id: r.try_get(0).map_err(db)?,
        material_id: material_id(r.try_get(1).map_err(db)?)?,
        rotation_type: wire::<RotationType>(r.try_get(2).map_err(db)?, "rotation type")?,
        rotation_ms: r.try_get(3).map_err(db)?,
    })
}

pub fn import_params(r: &Row) -> StoreResult<ImportParams> {
    Ok(ImportParams {
        token: r.try_get(0).map_err(db)?,
        key_id: r.try_get(1).map_err(db)?,
        wrapping_algorithm: wire::<WrappingAlgorithm>(
            r.try_get(2).map_err(db)?,
            "wrapping algorithm",
        )?,
        wrapping_key_spec: wire::<WrappingKeySpec>(r.try_get(3).map_err(db)?, "wrapping key spec")?,
        wrapped_private_key: r.try_get(4).map_err(db)?,
        created_ms: r.try_get(5).map_err(db)?,
        expires_ms: r.try_get(6).map_err(db)?,
    })
}

/// Collects rows through `f`.
pub fn all<T>(rows: Vec<Row>, f: fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

/// A `custom_key_stores` row, columns in the order `custom_key_stores` selects them.
pub(crate) fn custom_key_store(r: &Row) -> StoreResult<trent_core::model::CustomKeyStoreRecord> {
    Ok(trent_core::model::CustomKeyStoreRecord {
        account_id: r.try_get(0).map_err(db)?,
        region: r.try_get(1).map_err(db)?,
        id: r.try_get(2).map_err(db)?,
        name: r.try_get(3).map_err(db)?,
        store_type: r.try_get(4).map_err(db)?,
        cluster_id: r.try_get(5).map_err(db)?,
        trust_anchor_certificate: r.try_get(6).map_err(db)?,
        wrapped_password: r.try_get(7).map_err(db)?,
        connection_state: r.try_get(8).map_err(db)?,
        connection_error_code: r.try_get(9).map_err(db)?,
        created_ms: r.try_get(10).map_err(db)?,
    })
}
