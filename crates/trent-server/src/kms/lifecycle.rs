//! Wire handlers for the key-lifecycle operations: rotation, scheduled deletion, imported key
//! material. `operations.rs` routes the rotation, deletion and import operations here.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use trent_core::import::ImportKeyMaterialInput;
use trent_core::lifecycle::{MaterialState, NO_MATERIAL};
use trent_core::model::KeyRecord;
use trent_core::{Caller, Kms};
use trent_crypto::spec::{KeySpec, Origin, WireEnum};

use super::error::ApiError;
use super::operation::Operation;
use super::operations::{b64, empty, paged, parse, to_json};
use super::shapes::{b64 as b64_shape, epoch_seconds};

type ApiResult = Result<Vec<u8>, ApiError>;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct LifecycleRequest {
    key_id: Option<String>,
    rotation_period_in_days: Option<i64>,
    pending_window_in_days: Option<i64>,
    include_key_material: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
    wrapping_algorithm: Option<String>,
    wrapping_key_spec: Option<String>,
    #[serde(deserialize_with = "b64_shape::deserialize_opt")]
    import_token: Option<Vec<u8>>,
    #[serde(deserialize_with = "b64_shape::deserialize_opt")]
    encrypted_key_material: Option<Vec<u8>>,
    valid_to: Option<f64>,
    expiration_model: Option<String>,
    import_type: Option<String>,
    key_material_id: Option<String>,
    key_material_description: Option<String>,
}

/// Runs one rotation, deletion or import operation.
pub async fn dispatch(kms: &Kms, caller: &Caller, operation: Operation, body: &[u8]) -> ApiResult {
    let r: LifecycleRequest = parse(body)?;
    let key_id = r.key_id.as_deref();
    match operation {
        Operation::EnableKeyRotation => {
            kms.enable_key_rotation(caller, key_id, r.rotation_period_in_days)
                .await?;
            empty()
        }
        Operation::DisableKeyRotation => {
            kms.disable_key_rotation(caller, key_id).await?;
            empty()
        }
        Operation::GetKeyRotationStatus => {
            let s = kms.get_key_rotation_status(caller, key_id).await?;
            let mut out = json!({ "KeyId": s.key_arn, "KeyRotationEnabled": s.enabled });
            if let Value::Object(m) = &mut out {
                if let Some(p) = s.period_days {
                    m.insert("RotationPeriodInDays".into(), json!(p));
                }
                if let Some(t) = s.next_rotation_ms {
                    m.insert("NextRotationDate".into(), json!(epoch_seconds(t)));
                }
            }
            to_json(&out)
        }
        Operation::RotateKeyOnDemand => {
            let arn = kms.rotate_key_on_demand(caller, key_id).await?;
            to_json(&json!({ "KeyId": arn }))
        }
        Operation::ListKeyRotations => {
            let page = kms
                .list_key_rotations(
                    caller,
                    key_id,
                    r.include_key_material.as_deref(),
                    r.limit,
                    r.marker.as_deref(),
                )
                .await?;
            let rotations: Vec<Value> = page
                .entries
                .iter()
                .map(|e| {
                    let mut m = Map::new();
                    m.insert("KeyId".into(), json!(e.key_id));
                    m.insert("KeyMaterialId".into(), json!(e.material_id.to_hex()));
                    m.insert("KeyMaterialState".into(), json!(e.state.as_str()));
                    if let Some((kind, at)) = e.rotation {
                        m.insert("RotationDate".into(), json!(epoch_seconds(at)));
                        m.insert("RotationType".into(), json!(kind.as_str()));
                    }
                    if let Some(i) = &e.import {
                        let state = if i.imported {
                            "IMPORTED"
                        } else {
                            "PENDING_IMPORT"
                        };
                        m.insert("ImportState".into(), json!(state));
                        if let Some(d) = &i.description {
                            m.insert("KeyMaterialDescription".into(), json!(d));
                        }
                        if let Some(model) = i.expiration_model {
                            m.insert("ExpirationModel".into(), json!(model.as_str()));
                        }
                        if let Some(t) = i.valid_to_ms {
                            m.insert("ValidTo".into(), json!(epoch_seconds(t)));
                        }
                    }
                    Value::Object(m)
                })
                .collect();
            paged(json!({ "Rotations": rotations }), page.next_marker)
        }
        Operation::ScheduleKeyDeletion => {
            let out = kms
                .schedule_key_deletion(caller, key_id, r.pending_window_in_days)
                .await?;
            let mut m = Map::new();
            m.insert("KeyId".into(), json!(out.key_arn));
            // A primary pending replica deletion has no deletion date yet.
            if let Some(t) = out.deletion_ms {
                m.insert("DeletionDate".into(), json!(epoch_seconds(t)));
            }
            m.insert("KeyState".into(), json!(out.key_state.as_str()));
            m.insert("PendingWindowInDays".into(), json!(out.pending_window_days));
            to_json(&Value::Object(m))
        }
        Operation::CancelKeyDeletion => {
            let arn = kms.cancel_key_deletion(caller, key_id).await?;
            to_json(&json!({ "KeyId": arn }))
        }
        Operation::GetParametersForImport => {
            let out = kms
                .get_parameters_for_import(
                    caller,
                    key_id,
                    r.wrapping_algorithm.as_deref(),
                    r.wrapping_key_spec.as_deref(),
                )
                .await?;
            to_json(&json!({
                "KeyId": out.key_arn,
                "ImportToken": b64(&out.import_token),
                "PublicKey": b64(&out.public_key),
                "ParametersValidTo": epoch_seconds(out.valid_to_ms),
            }))
        }
        Operation::ImportKeyMaterial => {
            let (arn, material_id) = kms
                .import_key_material(
                    caller,
                    ImportKeyMaterialInput {
                        key_id: r.key_id,
                        import_token: r.import_token,
                        encrypted_key_material: r.encrypted_key_material,
                        valid_to_ms: r.valid_to.map(seconds_to_ms),
                        expiration_model: r.expiration_model,
                        import_type: r.import_type,
                        key_material_id: r.key_material_id,
                        key_material_description: r.key_material_description,
                    },
                )
                .await?;
            to_json(&json!({ "KeyId": arn, "KeyMaterialId": material_id.to_hex() }))
        }
        Operation::DeleteImportedKeyMaterial => {
            let (arn, material_id) = kms
                .delete_imported_key_material(caller, key_id, r.key_material_id.as_deref())
                .await?;
            let mut out = json!({ "KeyId": arn });
            if let (Value::Object(m), Some(id)) = (&mut out, material_id) {
                m.insert("KeyMaterialId".into(), json!(id.to_hex()));
            }
            to_json(&out)
        }
        _ => Err(ApiError::UnknownOperation),
    }
}

/// awsJson timestamps are fractional epoch seconds.
fn seconds_to_ms(seconds: f64) -> i64 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "saturating float-to-int conversion of a timestamp is what is wanted"
    )]
    let ms = (seconds * 1000.0).round() as i64;
    ms
}

/// Adds the lifecycle members of `KeyMetadata` (DeletionDate, PendingDeletionWindowInDays,
/// ValidTo, ExpirationModel) and drops `CurrentKeyMaterialId` while an EXTERNAL key has never
/// had material.
pub fn add_key_metadata(m: &mut Map<String, Value>, r: &KeyRecord) {
    let l = &r.lifecycle;
    if let Some(t) = l.deletion_ms {
        m.insert("DeletionDate".into(), json!(epoch_seconds(t)));
    }
    if let Some(d) = l.pending_window_days {
        m.insert("PendingDeletionWindowInDays".into(), json!(d));
    }
    // The earliest expiry of the material permanently part of the key (not of material
    // pending rotation, whose expiry is in the due date `valid_to_ms` too).
    let valid_to = if l.imported_materials.is_empty() {
        l.valid_to_ms
    } else {
        l.imported_materials
            .iter()
            .filter(|m| m.imported && m.state != MaterialState::PendingRotation)
            .filter_map(|m| m.valid_to_ms)
            .min()
    };
    if let Some(t) = valid_to {
        m.insert("ValidTo".into(), json!(epoch_seconds(t)));
    }
    // While material is imported only: DeleteImportedKeyMaterial clears the model, and AWS
    // then leaves ExpirationModel out.
    if r.origin == Origin::External
        && r.current_material != NO_MATERIAL
        && let Some(model) = l.expiration_model
    {
        m.insert("ExpirationModel".into(), json!(model.as_str()));
    }
    // Only symmetric encryption keys have a CurrentKeyMaterialId in AWS (not HMAC or
    // asymmetric keys, imported or not); an EXTERNAL one only once it has had material.
    if r.current_material == NO_MATERIAL || r.key_spec != KeySpec::SymmetricDefault {
        m.remove("CurrentKeyMaterialId");
    }
}
