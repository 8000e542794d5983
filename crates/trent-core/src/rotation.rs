//! Key rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
//! ListKeyRotations, and the rotation step the background task runs when a key is due.
//!
//! Rotating adds a material version and makes it current; older versions stay, so every
//! ciphertext made before still decrypts (blobs name their material id). Each rotation is one
//! store transaction that adds the material, records the rotation and moves the schedule, so a
//! crash either rotated or did not, and a restart never rotates twice for one due date.

use std::sync::Arc;

use trent_crypto::spec::{KeySpec, Origin, WireEnum};
use trent_crypto::{MaterialId, SymmetricKey};

use crate::authz::Resource;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::key_state::{Op, check};
use crate::lifecycle::{DAY_MS, MaterialState};
use crate::model::{
    ExpirationModel, KeyRecord, RotationRecord, RotationType, StoredMaterial, material_aad,
};
use crate::service::Kms;
use crate::validate;

/// RotationPeriodInDays when EnableKeyRotation does not give one.
pub const DEFAULT_ROTATION_PERIOD_DAYS: i64 = 365;
/// On-demand rotations allowed per key (AWS's documented limit).
pub const MAX_ON_DEMAND_ROTATIONS: usize = 25;

/// GetKeyRotationStatus output.
#[derive(Debug, Clone)]
pub struct RotationStatus {
    pub key_arn: String,
    pub enabled: bool,
    pub period_days: Option<i64>,
    pub next_rotation_ms: Option<i64>,
}

/// One ListKeyRotations entry.
#[derive(Debug, Clone)]
pub struct RotationEntry {
    pub key_id: String,
    pub material_id: MaterialId,
    pub state: MaterialState,
    /// How and when this material became current; `None` for the key's first material.
    pub rotation: Option<(RotationType, i64)>,
    /// For imported material: whether it is present (IMPORTED) or awaits re-import
    /// (PENDING_IMPORT), and how it expires.
    pub import: Option<ImportInfo>,
}

/// The import state of one imported material (ListKeyRotations).
#[derive(Debug, Clone)]
pub struct ImportInfo {
    pub imported: bool,
    pub expiration_model: Option<ExpirationModel>,
    pub valid_to_ms: Option<i64>,
    pub description: Option<String>,
}

/// A page of ListKeyRotations.
#[derive(Debug, Clone)]
pub struct RotationList {
    pub entries: Vec<RotationEntry>,
    pub next_marker: Option<String>,
}

impl Kms {
    pub async fn enable_key_rotation(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        period_days: Option<i64>,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::EnableKeyRotation)?;
        let key_id = validate::required("keyId", key_id)?;
        if let Some(p) = period_days {
            validate::range("rotationPeriodInDays", p, 90, 2560)?;
        }
        let period = period_days.unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        let context =
            crate::authz::condition_keys([("kms:RotationPeriodInDays", period.to_string())]);
        self.authorize_with(
            caller,
            "kms:EnableKeyRotation",
            Resource::Key(&key),
            context,
        )?;
        require_rotatable(&key.record)?;
        let now = self.clock.now_ms();
        let schedule = |r: &mut KeyRecord| {
            check(Op::Rotation, r)?;
            let l = &mut r.lifecycle;
            // Changing the period of an enabled schedule keeps its anchor (the last rotation),
            // as AWS does; enabling a disabled schedule starts it now.
            let anchor = match (l.rotation_period_days, l.next_rotation_ms) {
                (Some(old), Some(next)) => next.saturating_sub(old.saturating_mul(DAY_MS)),
                _ => now,
            };
            let next = anchor
                .saturating_add(period.saturating_mul(DAY_MS))
                .max(now);
            l.rotation_period_days = Some(period);
            l.next_rotation_ms = Some(next);
            Ok(())
        };
        if key.record.multi_region {
            // A shared property: set on the primary, copied to every replica (whose schedule
            // is the primary's: the family rotates from there).
            let _guard = self.writes.lock().await;
            return self
                .update_family_locked(&key.record.key_id, |r, is_primary| {
                    if is_primary {
                        schedule(r)
                    } else {
                        r.lifecycle.rotation_period_days = Some(period);
                        r.lifecycle.next_rotation_ms = None;
                        Ok(())
                    }
                })
                .await
                .map(|_| ());
        }
        self.update_key_record(&key.record.key_id, schedule)
            .await
            .map(|_| ())
    }

    pub async fn disable_key_rotation(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::DisableKeyRotation)?;
        let key_id = validate::required("keyId", key_id)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:DisableKeyRotation", Resource::Key(&key))?;
        require_rotatable(&key.record)?;
        if key.record.multi_region {
            let _guard = self.writes.lock().await;
            return self
                .update_family_locked(&key.record.key_id, |r, is_primary| {
                    if is_primary {
                        check(Op::Rotation, r)?;
                    }
                    r.lifecycle.rotation_period_days = None;
                    r.lifecycle.next_rotation_ms = None;
                    Ok(())
                })
                .await
                .map(|_| ());
        }
        self.update_key_record(&key.record.key_id, |r| {
            check(Op::Rotation, r)?;
            r.lifecycle.rotation_period_days = None;
            r.lifecycle.next_rotation_ms = None;
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn get_key_rotation_status(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
    ) -> KmsResult<RotationStatus> {
        self.admit(caller, crate::quotas::RateQuota::GetKeyRotationStatus)?;
        let key_id = validate::required("keyId", key_id)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:GetKeyRotationStatus", Resource::Key(&key))?;
        // Keys in a custom key store never rotate (AWS: UnsupportedOperation naming the origin).
        if key.record.key_spec != KeySpec::SymmetricDefault || key.record.custody.held().is_some() {
            return Err(unsupported(&key.record));
        }
        check(Op::Read, &key.record)?;
        let l = &key.record.lifecycle;
        // A replica's schedule is its primary's (the family rotates from there).
        let mut next_rotation_ms = l.next_rotation_ms;
        if key.record.is_replica()
            && let Some(primary) = l.primary_region.as_deref()
            && let Some(primary) = self.load_key(&key.record.related_key_id(primary)).await?
        {
            next_rotation_ms = primary.record.lifecycle.next_rotation_ms;
        }
        Ok(RotationStatus {
            key_arn: key.arn().to_string(),
            enabled: l.rotation_period_days.is_some(),
            period_days: l.rotation_period_days,
            next_rotation_ms,
        })
    }

    /// RotateKeyOnDemand. Rotation completes before the call returns, so
    /// `OnDemandRotationStartDate` is never seen in progress.
    pub async fn rotate_key_on_demand(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
    ) -> KmsResult<String> {
        self.admit(caller, crate::quotas::RateQuota::RotateKeyOnDemand)?;
        let key_id = validate::required("keyId", key_id)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:RotateKeyOnDemand", Resource::Key(&key))?;
        // AWS checks the key's state before its type: a disabled RSA key is DisabledException,
        // an EXTERNAL key waiting for material KMSInvalidStateException (pending import).
        check(Op::Rotation, &key.record)?;
        if key.record.origin == Origin::AwsKms && key.record.key_spec != KeySpec::SymmetricDefault {
            // AWS's UnsupportedOperationException here carries no message.
            return Err(KmsError::UnsupportedOperation(String::new()));
        }
        let imported = key.record.origin == Origin::External
            && key.record.key_spec == KeySpec::SymmetricDefault;
        if !imported {
            require_rotatable(&key.record)?;
        } else if key.record.is_replica() {
            // AWS: a multi-Region family rotates on demand from its primary.
            return Err(crate::multi_region::not_primary(&key.record));
        }
        let _guard = self.writes.lock().await;
        // Re-checked under the lock: the key may have changed since it was resolved.
        if let Some(current) = self.load_key(&key.record.key_id).await? {
            check(Op::Rotation, &current.record)?;
        }
        let done = self.store.rotations(&key.record.key_id).await?;
        let on_demand = done
            .iter()
            .filter(|r| r.rotation_type == RotationType::OnDemand)
            .count();
        if on_demand >= MAX_ON_DEMAND_ROTATIONS {
            return Err(KmsError::LimitExceeded(format!(
                "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {}",
                key.arn()
            )));
        }
        let now = self.clock.now_ms();
        if imported {
            return self
                .rotate_to_pending_locked(&key.record.key_id, now)
                .await
                .map(|r| r.arn());
        }
        let record = self
            .rotate_locked(&key.record.key_id, RotationType::OnDemand, now)
            .await?;
        Ok(record.arn())
    }

    /// RotateKeyOnDemand of a symmetric key with imported material (the caller holds the
    /// write lock): the material imported PENDING_ROTATION becomes current, the current one
    /// non-current. Its wrapped material is already stored (ImportKeyMaterial put it there).
    async fn rotate_to_pending_locked(&self, key_id: &str, now: i64) -> KmsResult<KeyRecord> {
        let current = self
            .load_key(key_id)
            .await?
            .ok_or_else(|| KmsError::Internal("key vanished during rotation".into()))?;
        if current.record.multi_region {
            return self.rotate_family_to_pending_locked(key_id, now).await;
        }
        let mut record = current.record.clone();
        let pending = pending_material(&record)?;
        make_current(&mut record, pending);
        let rotation = RotationRecord {
            key_id: key_id.to_string(),
            material_id: pending,
            rotation_type: RotationType::OnDemand,
            rotation_ms: now,
        };
        self.store
            .write_keys(&crate::store::KeysWrite {
                update: std::slice::from_ref(&record),
                rotations: std::slice::from_ref(&rotation),
                ..crate::store::KeysWrite::default()
            })
            .await?;
        self.cache
            .put_key(Arc::new(current.with_record(record.clone())));
        Ok(record)
    }

    /// RotateKeyOnDemand of a multi-Region primary with imported material (the caller holds
    /// the write lock): once every related key holds the material pending rotation (AWS:
    /// imported into every replica first), it becomes current on all of them, with a rotation
    /// record each, in one transaction. Before that the material is
    /// PENDING_MULTI_REGION_IMPORT_AND_ROTATION, not PENDING_ROTATION, so the refusal is the
    /// one for no material pending rotation.
    async fn rotate_family_to_pending_locked(
        &self,
        key_id: &str,
        now: i64,
    ) -> KmsResult<KeyRecord> {
        let members = self.family_locked(key_id).await?;
        let primary = members
            .iter()
            .find(|m| m.record.key_id == key_id)
            .ok_or_else(|| KmsError::Internal("key vanished during rotation".into()))?;
        if !primary.record.is_primary() {
            return Err(crate::multi_region::not_primary(&primary.record));
        }
        let pending = pending_material(&primary.record)?;
        if !members
            .iter()
            .all(|m| crate::import::holds_imported(&m.record, pending))
        {
            return Err(no_pending(&primary.record));
        }
        let mut updated = Vec::with_capacity(members.len());
        let mut rotations = Vec::with_capacity(members.len());
        for m in &members {
            let mut r = m.record.clone();
            make_current(&mut r, pending);
            rotations.push(RotationRecord {
                key_id: r.key_id.clone(),
                material_id: pending,
                rotation_type: RotationType::OnDemand,
                rotation_ms: now,
            });
            updated.push(r);
        }
        self.store
            .write_keys(&crate::store::KeysWrite {
                update: &updated,
                rotations: &rotations,
                ..crate::store::KeysWrite::default()
            })
            .await?;
        self.forget_family(&primary.record);
        updated
            .into_iter()
            .find(|r| r.key_id == key_id)
            .ok_or_else(|| KmsError::Internal("key vanished during rotation".into()))
    }

    pub async fn list_key_rotations(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        include_key_material: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> KmsResult<RotationList> {
        self.admit(caller, crate::quotas::RateQuota::ListKeyRotations)?;
        let key_id = validate::required("keyId", key_id)?;
        let limit = validate::limit(limit, 1000, 100)?;
        let all = match include_key_material {
            None | Some("ROTATIONS_ONLY") => false,
            Some("ALL_KEY_MATERIAL") => true,
            Some(other) => {
                return Err(KmsError::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'includeKeyMaterial' failed to satisfy constraint: Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]"
                )));
            }
        };
        if let Some(m) = marker {
            validate::length("marker", m, 1, 1024)?;
        }
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:ListKeyRotations", Resource::Key(&key))?;
        if key.record.key_spec != KeySpec::SymmetricDefault {
            return Err(unsupported(&key.record));
        }
        let record = &key.record;
        let rotations = self.store.rotations(&record.key_id).await?;
        let mut entries: Vec<RotationEntry> = Vec::new();
        if record.origin == Origin::External {
            // Imported materials are listed even while they await re-import: the first
            // material(s) (ALL_KEY_MATERIAL), the rotations, then material pending rotation
            // (ALL_KEY_MATERIAL).
            let list = crate::lifecycle::imported_materials(record);
            // A multi-Region key's material pending rotation is PENDING_ROTATION only once
            // every related key has imported it (derived from the family, never stored).
            let mut everywhere = true;
            if let Some(p) = list
                .iter()
                .find(|m| m.state == MaterialState::PendingRotation)
            {
                everywhere = self.family_holds(record, p.material_id).await?;
            }
            let info = |id: MaterialId| {
                list.iter().find(|m| m.material_id == id).map(|m| {
                    let mut e = entry(record, id, None);
                    e.state = match m.state {
                        MaterialState::PendingRotation if record.multi_region && !everywhere => {
                            MaterialState::PendingMultiRegionImportAndRotation
                        }
                        s => s,
                    };
                    e.import = Some(ImportInfo {
                        imported: m.imported,
                        expiration_model: m.expiration_model,
                        valid_to_ms: m.valid_to_ms,
                        description: m.description.clone(),
                    });
                    e
                })
            };
            let rotated = |id: &MaterialId| rotations.iter().any(|r| r.material_id == *id);
            if all {
                for m in &list {
                    if m.state != MaterialState::PendingRotation && !rotated(&m.material_id) {
                        entries.extend(info(m.material_id));
                    }
                }
            }
            for r in &rotations {
                let mut e =
                    info(r.material_id).unwrap_or_else(|| entry(record, r.material_id, None));
                e.rotation = Some((r.rotation_type, r.rotation_ms));
                entries.push(e);
            }
            if all {
                for m in &list {
                    if m.state == MaterialState::PendingRotation {
                        entries.extend(info(m.material_id));
                    }
                }
            }
        } else if all {
            let stored = self
                .store
                .key(&record.key_id)
                .await?
                .map(|(_, m)| m)
                .unwrap_or_default();
            for m in stored {
                if !rotations.iter().any(|r| r.material_id == m.material_id) {
                    entries.push(entry(record, m.material_id, None));
                }
            }
        }
        if record.origin != Origin::External {
            for r in &rotations {
                entries.push(entry(
                    record,
                    r.material_id,
                    Some((r.rotation_type, r.rotation_ms)),
                ));
            }
        }
        let start = match marker {
            None => 0,
            Some(m) => {
                let position = entries
                    .iter()
                    .position(|e| e.material_id.to_hex() == m)
                    .ok_or_else(|| KmsError::InvalidMarker("Invalid marker".into()))?;
                position.saturating_add(1)
            }
        };
        let mut page: Vec<RotationEntry> = entries.into_iter().skip(start).collect();
        let next_marker = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|e| e.material_id.to_hex())
        } else {
            None
        };
        Ok(RotationList {
            entries: page,
            next_marker,
        })
    }

    /// Adds a new current material to the key. The caller holds the write lock. An automatic
    /// rotation also moves the schedule one period on (or, after downtime longer than a period,
    /// one period from now: missed rotations are not replayed one by one).
    pub(crate) async fn rotate_locked(
        &self,
        key_id: &str,
        rotation_type: RotationType,
        now: i64,
    ) -> KmsResult<KeyRecord> {
        let current = self
            .load_key(key_id)
            .await?
            .ok_or_else(|| KmsError::Internal("key vanished during rotation".into()))?;
        let material_id = MaterialId::random()?;
        let material = SymmetricKey::generate()?;
        let wrapped = self
            .root
            .wrap(material.expose_bytes(), &material_aad(key_id, &material_id))?;
        let mut record = current.record.clone();
        record.current_material = material_id;
        if rotation_type == RotationType::Automatic {
            let l = &mut record.lifecycle;
            if let (Some(period), Some(due)) = (l.rotation_period_days, l.next_rotation_ms) {
                let step = period.saturating_mul(DAY_MS);
                let next = due.saturating_add(step);
                l.next_rotation_ms = Some(if next <= now {
                    now.saturating_add(step)
                } else {
                    next
                });
            }
        }
        if record.multi_region {
            // One material history per family: the new material goes to every related key
            // in the same transaction (the wrap is bound to the family's public id).
            self.cache.remove_key(key_id);
            let members = self.family_locked(key_id).await?;
            let mut updated = Vec::with_capacity(members.len());
            let mut materials = Vec::with_capacity(members.len());
            let mut rotations = Vec::with_capacity(members.len());
            for m in &members {
                let mut r = if m.record.key_id == key_id {
                    record.clone()
                } else {
                    m.record.clone()
                };
                r.current_material = material_id;
                materials.push(StoredMaterial {
                    key_id: r.key_id.clone(),
                    material_id,
                    wrapped: wrapped.clone(),
                    created_ms: now,
                });
                rotations.push(RotationRecord {
                    key_id: r.key_id.clone(),
                    material_id,
                    rotation_type,
                    rotation_ms: now,
                });
                updated.push(r);
            }
            self.store
                .write_keys(&crate::store::KeysWrite {
                    insert: None,
                    update: &updated,
                    materials: &materials,
                    rotations: &rotations,
                })
                .await?;
            self.forget_family(&record);
            let fresh = self
                .load_key(key_id)
                .await?
                .ok_or_else(|| KmsError::Internal("key vanished during rotation".into()))?;
            return Ok(fresh.record.clone());
        }
        self.store
            .add_material(
                &record,
                &StoredMaterial {
                    key_id: key_id.to_string(),
                    material_id,
                    wrapped,
                    created_ms: now,
                },
                Some(&RotationRecord {
                    key_id: key_id.to_string(),
                    material_id,
                    rotation_type,
                    rotation_ms: now,
                }),
            )
            .await?;
        self.cache.put_key(Arc::new(current.with_material(
            record.clone(),
            material_id,
            crate::material::Material::Symmetric(material),
        )));
        Ok(record)
    }
}

/// The imported material pending rotation of `record`, held (imported) by it.
fn pending_material(record: &KeyRecord) -> KmsResult<MaterialId> {
    crate::lifecycle::imported_materials(record)
        .iter()
        .find(|m| m.state == MaterialState::PendingRotation && m.imported)
        .map(|m| m.material_id)
        .ok_or_else(|| no_pending(record))
}

/// AWS's recorded refusal of RotateKeyOnDemand without imported material pending rotation.
fn no_pending(record: &KeyRecord) -> KmsError {
    KmsError::InvalidState(format!(
        "No available key material pending rotation for the key: {}.",
        record.arn()
    ))
}

/// `pending` becomes `record`'s current material, every other imported material non-current.
fn make_current(record: &mut KeyRecord, pending: MaterialId) {
    let mut list = crate::lifecycle::imported_materials(record);
    for m in &mut list {
        m.state = if m.material_id == pending {
            MaterialState::Current
        } else {
            MaterialState::NonCurrent
        };
    }
    record.current_material = pending;
    record.lifecycle.imported_materials = list;
    crate::import::sync_import_lifecycle(record);
}

fn entry(
    record: &KeyRecord,
    material_id: MaterialId,
    rotation: Option<(RotationType, i64)>,
) -> RotationEntry {
    RotationEntry {
        key_id: record.public_id().to_string(),
        material_id,
        state: if record.current_material == material_id {
            MaterialState::Current
        } else {
            MaterialState::NonCurrent
        },
        rotation,
        import: None,
    }
}

/// Only symmetric encryption keys whose material KMS generated rotate (imported material and
/// asymmetric/HMAC keys do not, as in AWS).
fn require_rotatable(record: &KeyRecord) -> KmsResult<()> {
    if record.key_spec != KeySpec::SymmetricDefault || record.origin != Origin::AwsKms {
        return Err(unsupported(record));
    }
    // Rotation is a shared property of a multi-Region family: only its primary sets it.
    if record.is_replica() {
        return Err(crate::multi_region::not_primary(record));
    }
    Ok(())
}

fn unsupported(record: &KeyRecord) -> KmsError {
    if record.origin != Origin::AwsKms {
        KmsError::UnsupportedOperation(format!(
            "{} origin is {} which is not valid for this operation.",
            record.arn(),
            record.origin.as_str()
        ))
    } else {
        KmsError::UnsupportedOperation(format!(
            "{} key spec is {} which is not valid for this operation.",
            record.arn(),
            record.key_spec.as_str()
        ))
    }
}
