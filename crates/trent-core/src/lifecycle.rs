//! The lifecycle part of a key's record: automatic rotation schedule, pending deletion, and the
//! expiry of imported key material; plus the records lifecycle operations keep beside keys
//! (rotation history, import parameters).
//!
//! Every date here is a due date the background task ([`crate::background`]) acts on; the store
//! indexes them so that finding due work is one query.

use trent_crypto::MaterialId;
use trent_crypto::import::{WrappingAlgorithm, WrappingKeySpec};
use trent_crypto::spec::WireEnum;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Lifecycle fields of a [`crate::model::KeyRecord`]. All `None` for a fresh AWS_KMS key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLifecycle {
    /// `Some` while automatic rotation is enabled.
    pub rotation_period_days: Option<i64>,
    /// When automatic rotation next adds material (while rotation is enabled).
    pub next_rotation_ms: Option<i64>,
    /// When a key pending deletion is deleted.
    pub deletion_ms: Option<i64>,
    pub pending_window_days: Option<i64>,
    /// How imported material expires (EXTERNAL keys with material).
    pub expiration_model: Option<ExpirationModel>,
    /// When imported material expires and the key returns to PendingImport.
    pub valid_to_ms: Option<i64>,
    /// Multi-Region keys only: the Region of the family's primary key (this key's own Region
    /// when it is the primary). `None` for a single-Region key.
    pub primary_region: Option<String>,
    /// Multi-Region keys only: the Regions of the family's replica keys, sorted. Derived by the
    /// store when it reads the key (from the family's rows), never written, so it cannot go
    /// stale in the store; see `docs/multi-region.md`.
    pub replica_regions: Vec<String>,
    /// When a multi-Region transition finishes: a replica leaves `Creating`, a key leaves
    /// `Updating`, or a primary pending replica deletion is checked for remaining replicas.
    pub transition_ms: Option<i64>,
    /// Symmetric EXTERNAL keys only: every key material imported into the key, in the order
    /// it was first imported (empty for other keys, and for keys whose only material was
    /// imported before Trent kept this list: see [`imported_materials`]).
    pub imported_materials: Vec<ImportedMaterial>,
}

/// `KeyMaterialState`: the part one material of a key plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaterialState {
    /// Encrypts and decrypts.
    Current,
    /// Decrypts only (a rotation made another material current).
    NonCurrent,
    /// Imported for the next RotateKeyOnDemand; not yet permanently part of the key.
    PendingRotation,
    /// What ListKeyRotations shows of a multi-Region key's material pending rotation while a
    /// related key has not imported it yet. Derived from the family on every listing, never
    /// stored: each member stores `PendingRotation`.
    PendingMultiRegionImportAndRotation,
}

impl WireEnum for MaterialState {
    const ALL: &'static [Self] = &[
        Self::Current,
        Self::NonCurrent,
        Self::PendingRotation,
        Self::PendingMultiRegionImportAndRotation,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Self::Current => "CURRENT",
            Self::NonCurrent => "NON_CURRENT",
            Self::PendingRotation => "PENDING_ROTATION",
            Self::PendingMultiRegionImportAndRotation => "PENDING_MULTI_REGION_IMPORT_AND_ROTATION",
        }
    }
}

/// One material imported into a symmetric EXTERNAL key (what ListKeyRotations shows of it).
/// The material itself is a [`crate::model::StoredMaterial`] while `imported`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedMaterial {
    pub material_id: MaterialId,
    pub state: MaterialState,
    /// IMPORTED (held) or PENDING_IMPORT (deleted or expired; the same material may be
    /// imported again).
    pub imported: bool,
    /// How the material expires, while imported.
    pub expiration_model: Option<ExpirationModel>,
    pub valid_to_ms: Option<i64>,
    /// `KeyMaterialDescription` (kept across re-imports that give none).
    pub description: Option<String>,
}

/// The imported materials of `record`: its list, or for a key whose single material was
/// imported before the list existed, that material as the current one.
pub fn imported_materials(record: &crate::model::KeyRecord) -> Vec<ImportedMaterial> {
    let l = &record.lifecycle;
    if !l.imported_materials.is_empty() || record.current_material == NO_MATERIAL {
        return l.imported_materials.clone();
    }
    // Imported while it has an expiration model: import sets one, deletion and expiry clear it.
    let imported = l.expiration_model.is_some();
    vec![ImportedMaterial {
        material_id: record.current_material,
        state: MaterialState::Current,
        imported,
        expiration_model: l.expiration_model.filter(|_| imported),
        valid_to_ms: l.valid_to_ms.filter(|_| imported),
        description: None,
    }]
}

/// The stored form of [`KeyLifecycle::imported_materials`] (one text column): one line per
/// material, `v1 <id hex> <state> <I|P> <expiration model|-> <valid to ms|-> <description
/// hex|->`. `None` for no materials.
pub fn encode_imported_materials(materials: &[ImportedMaterial]) -> Option<String> {
    if materials.is_empty() {
        return None;
    }
    let lines: Vec<String> = materials
        .iter()
        .map(|m| {
            format!(
                "v1 {} {} {} {} {} {}",
                m.material_id.to_hex(),
                m.state.as_str(),
                if m.imported { "I" } else { "P" },
                m.expiration_model.map_or("-", WireEnum::as_str),
                m.valid_to_ms
                    .map_or_else(|| "-".to_string(), |t| t.to_string()),
                m.description
                    .as_deref()
                    .map_or_else(|| "-".to_string(), |d| hex::encode(d.as_bytes())),
            )
        })
        .collect();
    Some(lines.join("\n"))
}

/// Parses [`encode_imported_materials`]' form; `None` if it is not one.
pub fn decode_imported_materials(stored: Option<&str>) -> Option<Vec<ImportedMaterial>> {
    let Some(stored) = stored else {
        return Some(Vec::new());
    };
    stored
        .lines()
        .map(|line| {
            let mut f = line.split(' ');
            if f.next()? != "v1" {
                return None;
            }
            let material_id = MaterialId::from_hex(f.next()?)?;
            let state = MaterialState::parse(f.next()?)?;
            let imported = match f.next()? {
                "I" => true,
                "P" => false,
                _ => return None,
            };
            let expiration_model = match f.next()? {
                "-" => None,
                m => Some(ExpirationModel::parse(m)?),
            };
            let valid_to_ms = match f.next()? {
                "-" => None,
                t => Some(t.parse().ok()?),
            };
            let description = match f.next()? {
                "-" => None,
                d => Some(String::from_utf8(hex::decode(d).ok()?).ok()?),
            };
            if f.next().is_some() {
                return None;
            }
            Some(ImportedMaterial {
                material_id,
                state,
                imported,
                expiration_model,
                valid_to_ms,
                description,
            })
        })
        .collect()
}

/// `ExpirationModelType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpirationModel {
    KeyMaterialExpires,
    KeyMaterialDoesNotExpire,
}

impl WireEnum for ExpirationModel {
    const ALL: &'static [Self] = &[Self::KeyMaterialExpires, Self::KeyMaterialDoesNotExpire];
    fn as_str(self) -> &'static str {
        match self {
            Self::KeyMaterialExpires => "KEY_MATERIAL_EXPIRES",
            Self::KeyMaterialDoesNotExpire => "KEY_MATERIAL_DOES_NOT_EXPIRE",
        }
    }
}

/// `RotationType`: how a rotation was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RotationType {
    Automatic,
    OnDemand,
}

impl WireEnum for RotationType {
    const ALL: &'static [Self] = &[Self::Automatic, Self::OnDemand];
    fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "AUTOMATIC",
            Self::OnDemand => "ON_DEMAND",
        }
    }
}

/// One completed rotation: the material it made current, and when and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRecord {
    pub key_id: String,
    pub material_id: MaterialId,
    pub rotation_type: RotationType,
    pub rotation_ms: i64,
}

/// What GetParametersForImport handed out, kept until the token expires. The wrapping private
/// key is stored wrapped under the root key with AAD [`import_key_aad`].
#[derive(Clone, PartialEq, Eq)]
pub struct ImportParams {
    /// The import token, hex-encoded (the token itself is random bytes).
    pub token: String,
    pub key_id: String,
    pub wrapping_algorithm: WrappingAlgorithm,
    pub wrapping_key_spec: WrappingKeySpec,
    pub wrapped_private_key: Vec<u8>,
    pub created_ms: i64,
    pub expires_ms: i64,
}

impl std::fmt::Debug for ImportParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportParams")
            .field("key_id", &self.key_id)
            .field("wrapping_algorithm", &self.wrapping_algorithm)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// What the root-key wrap of an import wrapping key is bound to.
pub fn import_key_aad(key_id: &str, token: &str) -> Vec<u8> {
    format!("trent:import-wrapping-key:v1:{key_id}:{token}").into_bytes()
}

/// The placeholder material id of an EXTERNAL key that never had material imported. Imported
/// material ids are HMAC outputs, so this value never names real material.
pub const NO_MATERIAL: MaterialId = MaterialId([0; 32]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_materials_round_trip_and_garbage_is_refused() {
        let list = vec![
            ImportedMaterial {
                material_id: MaterialId([1; 32]),
                state: MaterialState::NonCurrent,
                imported: false,
                expiration_model: None,
                valid_to_ms: None,
                description: Some("first one: a/b_c.d-e".into()),
            },
            ImportedMaterial {
                material_id: MaterialId([2; 32]),
                state: MaterialState::Current,
                imported: true,
                expiration_model: Some(ExpirationModel::KeyMaterialExpires),
                valid_to_ms: Some(-5),
                description: None,
            },
        ];
        let stored = encode_imported_materials(&list);
        assert_eq!(decode_imported_materials(stored.as_deref()), Some(list));
        assert_eq!(encode_imported_materials(&[]), None);
        assert_eq!(decode_imported_materials(None), Some(Vec::new()));
        for garbage in [
            "v2 x",
            "v1 zz CURRENT I - - -",
            &format!("v1 {} CURRENT X - - -", "00".repeat(32)),
            &format!("v1 {} CURRENT I - - - extra", "00".repeat(32)),
            &format!("v1 {} CURRENT I - - zz", "00".repeat(32)),
        ] {
            assert_eq!(decode_imported_materials(Some(garbage)), None, "{garbage}");
        }
    }
}
