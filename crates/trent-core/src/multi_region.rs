//! Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, the family writes that keep shared
//! properties the same on every related key, and the transitions the background task finishes
//! (a replica leaving `Creating`, keys leaving `Updating`, a primary pending replica deletion
//! whose last replica is gone).
//!
//! A family is one public id (`mrk-…`) with one record per Region, each named by its regional
//! id (`ids.rs`). Shared properties (material and its history, spec, usage, origin, rotation
//! setting) are written to every member in one store transaction ([`crate::Store::write_keys`]);
//! independent ones (policy, grants, aliases, tags, description, enabled state, deletion) are
//! per record. Which Regions hold replicas is never written: the store derives it from the
//! family's rows on every read, so it cannot disagree with them. Design and the choices where
//! AWS is silent: `docs/multi-region.md`.

use std::sync::Arc;

use trent_crypto::MaterialId;
use trent_crypto::spec::{KeySpec, KeyState, Origin, WireEnum};

use crate::authz::{Access, Resource};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::import::{holds_imported, sync_import_lifecycle};
use crate::key_state::{Op, check};
use crate::lifecycle::{DAY_MS, ImportedMaterial, MaterialState, NO_MATERIAL, imported_materials};
use crate::model::{KeyRecord, RotationRecord, StoredMaterial, Tag};
use crate::policies::{check_key_policy, default_key_policy};
use crate::service::Kms;
use crate::store::KeysWrite;
use crate::tags::validate_tags;
use crate::validate;

/// How long a new replica stays `Creating`, and keys `Updating` after UpdatePrimaryRegion (AWS:
/// "a few seconds"). The background task finishes the transition once it is due.
pub const TRANSITION_MS: i64 = 2_000;
/// How often a primary pending replica deletion is checked for remaining replicas, in case the
/// immediate check after a replica's deletion did not happen (the process stopped in between).
pub const REPLICA_DELETION_POLL_MS: i64 = 60_000;

/// ReplicateKey input (members as in the AWS API).
#[derive(Debug, Default, Clone)]
pub struct ReplicateKeyInput {
    pub key_id: Option<String>,
    pub replica_region: Option<String>,
    pub policy: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

/// ReplicateKey output: the new replica (still `Creating`), its policy and tags.
#[derive(Debug, Clone)]
pub struct ReplicateKeyOutput {
    pub replica: KeyRecord,
    pub policy: String,
    pub tags: Vec<Tag>,
}

/// `^([a-z]+-){2,3}\d+$`, 1-32 characters: the shape of a Region name in the API model.
fn check_region_name(member: &str, region: &str) -> KmsResult<()> {
    validate::length(member, region, 1, 32)?;
    let parts: Vec<&str> = region.split('-').collect();
    let (Some((last, words)), true) = (parts.split_last(), (3..=4).contains(&parts.len())) else {
        return Err(region_pattern(member, region));
    };
    let words_ok = words
        .iter()
        .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()));
    let number_ok = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
    if words_ok && number_ok {
        Ok(())
    } else {
        Err(region_pattern(member, region))
    }
}

fn region_pattern(member: &str, region: &str) -> KmsError {
    KmsError::Validation(format!(
        "1 validation error detected: Value '{region}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-z]+-){{2,3}}\\d+$"
    ))
}

/// AWS's refusal of an operation only a multi-Region primary key supports.
pub(crate) fn not_primary(record: &KeyRecord) -> KmsError {
    KmsError::UnsupportedOperation(format!(
        "{} is not a multi-region primary key.",
        record.arn()
    ))
}

/// The same principal, calling in `region`: what ReplicateKey and UpdatePrimaryRegion check
/// in the other Region (IAM policies see that Region as `aws:RequestedRegion`).
fn caller_in(caller: &Caller, region: &str) -> Caller {
    let mut other = Caller::new(caller.principal().clone(), Arc::from(region));
    other.source_ip = caller.source_ip;
    other.secure_transport = caller.secure_transport;
    other
}

impl Kms {
    pub async fn replicate_key(
        &self,
        caller: &Caller,
        input: ReplicateKeyInput,
    ) -> KmsResult<ReplicateKeyOutput> {
        self.admit(caller, crate::quotas::RateQuota::ReplicateKey)?;
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let region = validate::required("replicaRegion", input.replica_region.as_deref())?;
        check_region_name("replicaRegion", region)?;
        let description = input.description.unwrap_or_default();
        validate::length("description", &description, 0, 8192)?;
        validate_tags(&input.tags)?;
        if let Some(p) = &input.policy {
            check_key_policy(p)?;
        }
        let primary = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize_with(
            caller,
            "kms:ReplicateKey",
            Resource::Key(&primary),
            crate::authz::condition_keys([("kms:ReplicaRegion", region.to_string())]),
        )?;
        if !primary.record.is_primary() {
            return Err(not_primary(&primary.record));
        }
        check(Op::ReplicateKey, &primary.record)?;
        if region == primary.record.region {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} cannot be replicated into its own Region {region}.",
                primary.arn()
            )));
        }
        let replica_id = primary.record.related_key_id(region);
        let replica_arn = crate::ids::key_arn(region, &primary.record.account_id, &replica_id);
        if primary.record.family_regions().iter().any(|r| r == region) {
            return Err(already_replicated(&replica_arn));
        }

        // The new key is created in the replica Region: IAM must allow kms:CreateKey there
        // (and kms:TagResource for its tags), as AWS requires.
        let there = caller_in(caller, region);
        let mut context = trent_policy::ConditionContext::new();
        let record = &primary.record;
        context.insert("kms:KeySpec", record.key_spec.as_str());
        context.insert("kms:CustomerMasterKeySpec", record.key_spec.as_str());
        context.insert("kms:KeyUsage", record.key_usage.as_str());
        context.insert("kms:CustomerMasterKeyUsage", record.key_usage.as_str());
        context.insert("kms:KeyOrigin", record.origin.as_str());
        context.insert("kms:MultiRegion", "true");
        context.insert("kms:MultiRegionKeyType", "REPLICA");
        context.insert("kms:CallerAccount", caller.account.clone());
        if let Some(bypass) = input.bypass_policy_lockout_safety_check {
            context.insert(
                "kms:BypassPolicyLockoutSafetyCheck",
                if bypass { "true" } else { "false" },
            );
        }
        crate::keys::add_request_tags(&mut context, &input.tags);
        self.authorize_with(&there, "kms:CreateKey", Resource::Any, context)?;
        if !input.tags.is_empty() {
            let mut context = trent_policy::ConditionContext::new();
            crate::keys::add_request_tags(&mut context, &input.tags);
            self.authorize_with(&there, "kms:TagResource", Resource::Any, context)?;
        }

        let custom_policy = input.policy.is_some();
        let policy = input
            .policy
            .unwrap_or_else(|| default_key_policy(&caller.account));
        let now = self.clock.now_ms();
        let mut tags = input.tags;
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        let mut replica = KeyRecord {
            key_id: replica_id.clone(),
            account_id: record.account_id.clone(),
            region: region.to_string(),
            created_ms: now,
            description,
            key_spec: record.key_spec,
            key_usage: record.key_usage,
            origin: record.origin,
            state: KeyState::Creating,
            policy: policy.clone(),
            policy_principals: self
                .bind_policy_principals(&policy, trent_policy::PolicyKind::KeyPolicy),
            tags: tags.clone(),
            current_material: NO_MATERIAL,
            multi_region: true,
            lifecycle: Default::default(),
            custody: Default::default(),
        };
        if custom_policy {
            let bypass = input.bypass_policy_lockout_safety_check.unwrap_or(false);
            self.check_policy_for_key(&there, &replica, bypass)?;
        }

        let _guard = self.writes.lock().await;
        self.check_key_quota(&replica.account_id, region).await?;
        // The primary as the store has it now (a request or another node may have changed it),
        // with the material history the replica gets.
        let (fresh, materials) = self
            .store
            .key(&primary.record.key_id)
            .await?
            .ok_or_else(|| KmsError::NotFound(format!("Key '{}' does not exist", primary.arn())))?;
        if !fresh.is_primary() {
            return Err(not_primary(&fresh));
        }
        check(Op::ReplicateKey, &fresh)?;
        if fresh.family_regions().iter().any(|r| r == region) {
            return Err(already_replicated(&replica_arn));
        }
        replica.current_material = fresh.current_material;
        if fresh.origin == Origin::External && fresh.key_spec == KeySpec::SymmetricDefault {
            // The replica knows every material of the family (current, non-current and pending
            // rotation), none imported yet: each is imported into it as EXISTING_KEY_MATERIAL.
            replica.lifecycle.imported_materials = imported_materials(&fresh)
                .into_iter()
                .map(|m| ImportedMaterial {
                    imported: false,
                    expiration_model: None,
                    valid_to_ms: None,
                    ..m
                })
                .collect();
        }
        replica.lifecycle.primary_region = Some(fresh.region.clone());
        replica.lifecycle.rotation_period_days = fresh.lifecycle.rotation_period_days;
        replica.lifecycle.transition_ms = Some(now.saturating_add(TRANSITION_MS));
        // Imported material is never copied: the same material must be imported into each
        // related key (its id, bound to the family's public id, proves it is the same).
        let materials: Vec<StoredMaterial> = if fresh.origin == Origin::External {
            Vec::new()
        } else {
            materials
                .into_iter()
                .map(|m| StoredMaterial {
                    key_id: replica_id.clone(),
                    ..m
                })
                .collect()
        };
        let rotations: Vec<RotationRecord> = self
            .store
            .rotations(&fresh.key_id)
            .await?
            .into_iter()
            .map(|r| RotationRecord {
                key_id: replica_id.clone(),
                ..r
            })
            .collect();
        self.store
            .write_keys(&KeysWrite {
                insert: Some(&replica),
                update: &[],
                materials: &materials,
                rotations: &rotations,
            })
            .await
            .map_err(|e| match e {
                crate::store::StoreError::AlreadyExists => already_replicated(&replica_arn),
                e => e.into(),
            })?;
        self.forget_family(&fresh);
        let replica = self
            .load_key(&replica_id)
            .await?
            .ok_or_else(|| KmsError::Internal("new replica vanished".into()))?;
        Ok(ReplicateKeyOutput {
            replica: replica.record.clone(),
            policy,
            tags,
        })
    }

    pub async fn update_primary_region(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        primary_region: Option<&str>,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::UpdatePrimaryRegion)?;
        let key_id = validate::required("keyId", key_id)?;
        let region = validate::required("primaryRegion", primary_region)?;
        check_region_name("primaryRegion", region)?;
        let primary = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        let context = || crate::authz::condition_keys([("kms:PrimaryRegion", region.to_string())]);
        self.authorize_with(
            caller,
            "kms:UpdatePrimaryRegion",
            Resource::Key(&primary),
            context(),
        )?;
        if !primary.record.is_primary() {
            return Err(not_primary(&primary.record));
        }
        if region == primary.record.region {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} is already the primary key in {region}.",
                primary.arn()
            )));
        }
        check(Op::UpdatePrimaryRegion, &primary.record)?;
        let target_id = primary.record.related_key_id(region);
        let target_arn = crate::ids::key_arn(region, &primary.record.account_id, &target_id);
        let target = self
            .load_key(&target_id)
            .await?
            .filter(|k| k.record.account_id == primary.record.account_id)
            .ok_or_else(|| KmsError::NotFound(format!("Key '{target_arn}' does not exist")))?;
        // Permission on the replica too, in its own Region.
        let there = caller_in(caller, region);
        self.check(
            &there,
            Access::new("kms:UpdatePrimaryRegion", Resource::Key(&target)).conditions(context()),
        )?;
        check(Op::UpdatePrimaryRegion, &target.record)?;

        let _guard = self.writes.lock().await;
        let members = self.family_locked(&primary.record.key_id).await?;
        let now = self.clock.now_ms();
        let old_region = primary.record.region.clone();
        let Some(fresh) = members.iter().find(|m| m.record.region == old_region) else {
            return Err(KmsError::Internal("primary vanished".into()));
        };
        if !fresh.record.is_primary() {
            return Err(not_primary(&fresh.record));
        }
        check(Op::UpdatePrimaryRegion, &fresh.record)?;
        let schedule = fresh.record.lifecycle.next_rotation_ms;
        let mut updated = Vec::with_capacity(members.len());
        for m in &members {
            let mut r = m.record.clone();
            if r.region == region {
                check(Op::UpdatePrimaryRegion, &r)?;
            }
            r.lifecycle.primary_region = Some(region.to_string());
            // The rotation schedule belongs to the primary: the background task rotates the
            // family from there.
            r.lifecycle.next_rotation_ms = if r.region == region { schedule } else { None };
            if r.region == region || r.region == old_region {
                r.state = KeyState::Updating;
                r.lifecycle.transition_ms = Some(now.saturating_add(TRANSITION_MS));
            }
            updated.push(r);
        }
        if !updated.iter().any(|r| r.region == region) {
            return Err(KmsError::NotFound(format!(
                "Key '{target_arn}' does not exist"
            )));
        }
        self.store
            .write_keys(&KeysWrite {
                update: &updated,
                ..KeysWrite::default()
            })
            .await?;
        self.forget_family(&fresh.record);
        Ok(())
    }

    /// Every key of `key_id`'s family (itself included), as the store has them now. The caller
    /// holds the write lock.
    pub(crate) async fn family_locked(&self, key_id: &str) -> KmsResult<Vec<Arc<LoadedKey>>> {
        self.cache.remove_key(key_id);
        let Some(key) = self.load_key(key_id).await? else {
            return Ok(Vec::new());
        };
        if !key.record.multi_region {
            return Ok(vec![key]);
        }
        let mut out = Vec::new();
        for region in key.record.family_regions() {
            let id = key.record.related_key_id(&region);
            if id == key.record.key_id {
                out.push(key.clone());
                continue;
            }
            self.cache.remove_key(&id);
            if let Some(k) = self.load_key(&id).await? {
                out.push(k);
            }
        }
        Ok(out)
    }

    /// Drops every cached member of `record`'s family: each lists the family's Regions, which a
    /// family write changes (the next use reads the store).
    pub(crate) fn forget_family(&self, record: &KeyRecord) {
        self.cache.remove_key(&record.key_id);
        if record.multi_region {
            self.cache.remove_family(record.public_id());
        }
    }

    /// Applies `change` to every member of `primary_id`'s family in one store transaction (the
    /// shared properties: rotation setting). `change` gets each record and whether it is the
    /// primary. The caller holds the write lock.
    pub(crate) async fn update_family_locked(
        &self,
        primary_id: &str,
        change: impl Fn(&mut KeyRecord, bool) -> KmsResult<()>,
    ) -> KmsResult<KeyRecord> {
        let members = self.family_locked(primary_id).await?;
        let mut updated = Vec::with_capacity(members.len());
        let mut primary = None;
        for m in &members {
            let mut r = m.record.clone();
            let is_primary = r.key_id == primary_id;
            change(&mut r, is_primary)?;
            if is_primary {
                primary = Some(r.clone());
            }
            updated.push(r);
        }
        let primary = primary.ok_or_else(|| KmsError::Internal("primary vanished".into()))?;
        self.store
            .write_keys(&KeysWrite {
                update: &updated,
                ..KeysWrite::default()
            })
            .await?;
        for (m, r) in members.iter().zip(updated) {
            self.cache.put_key(Arc::new(m.with_record(r)));
        }
        Ok(primary)
    }

    /// Finishes the multi-Region transition of `key_id` that is due: a replica leaves
    /// `Creating` (for `Enabled`, or `PendingImport` if it awaits imported material), a key
    /// leaves `Updating`, a primary pending replica deletion whose replicas are all gone starts
    /// its own waiting period. The caller holds the write lock.
    pub(crate) async fn finish_transition_locked(&self, key_id: &str, now: i64) -> KmsResult<()> {
        // Read fresh: the replica list comes from the family's rows.
        self.cache.remove_key(key_id);
        let Some(key) = self.load_key(key_id).await? else {
            return Ok(());
        };
        if key.record.state == KeyState::Creating && key.record.origin != Origin::External {
            return self.finish_creating_locked(&key.record).await;
        }
        if key.record.state == KeyState::Updating && key.record.is_primary() {
            return self.finish_updating_primary_locked(&key.record).await;
        }
        let has_material = key.material_count() > 0;
        self.update_key_record_locked(key_id, |r| {
            let l = &mut r.lifecycle;
            match r.state {
                KeyState::Creating => {
                    r.state = if r.origin == Origin::External && !has_material {
                        KeyState::PendingImport
                    } else {
                        KeyState::Enabled
                    };
                    l.transition_ms = None;
                }
                KeyState::Updating => {
                    r.state = KeyState::Enabled;
                    l.transition_ms = None;
                }
                KeyState::PendingReplicaDeletion if l.replica_regions.is_empty() => {
                    let days = l
                        .pending_window_days
                        .unwrap_or(crate::deletion::DEFAULT_PENDING_WINDOW_DAYS);
                    r.state = KeyState::PendingDeletion;
                    l.deletion_ms = Some(now.saturating_add(days.saturating_mul(DAY_MS)));
                    l.transition_ms = None;
                }
                KeyState::PendingReplicaDeletion => {
                    l.transition_ms = Some(now.saturating_add(REPLICA_DELETION_POLL_MS));
                }
                _ => l.transition_ms = None,
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// The family's primary as the store has it now, with its materials, starting from the key
    /// `replica` records as its primary. A ReplicateKey racing an UpdatePrimaryRegion on another
    /// node can insert a replica naming the old primary, which by then records the new one: so
    /// a key that no longer records itself as primary is followed to the Region it names (at
    /// most once per member: a cycle or a missing key ends the walk with `None`).
    async fn current_primary(
        &self,
        replica: &KeyRecord,
    ) -> KmsResult<Option<(KeyRecord, Vec<StoredMaterial>)>> {
        let mut region = replica.lifecycle.primary_region.clone();
        let mut seen: Vec<String> = Vec::new();
        while let Some(r) = region {
            if r == replica.region || seen.contains(&r) {
                return Ok(None);
            }
            let Some((key, materials)) = self.store.key(&replica.related_key_id(&r)).await? else {
                return Ok(None);
            };
            if key.is_primary() {
                return Ok(Some((key, materials)));
            }
            region = key.lifecycle.primary_region.clone();
            seen.push(r);
        }
        Ok(None)
    }

    /// A replica leaves `Creating`, first catching up with its family as the store has it now:
    /// its primary is re-derived ([`Self::current_primary`]: an UpdatePrimaryRegion another
    /// node committed around the replica's insert moved it), and a rotation another node made
    /// while the replica was being inserted (it read the family before the replica existed) is
    /// copied, before the replica can be used. In one transaction with the state change. The
    /// caller holds the write lock.
    async fn finish_creating_locked(&self, replica: &KeyRecord) -> KmsResult<()> {
        if replica.lifecycle.primary_region.is_none() {
            return Err(KmsError::Internal("replica without a primary".into()));
        }
        let mut record = replica.clone();
        record.state = KeyState::Enabled;
        record.lifecycle.transition_ms = None;
        let mut materials = Vec::new();
        let mut rotations = Vec::new();
        if let Some((primary, primary_materials)) = self.current_primary(replica).await? {
            let primary_id = primary.key_id.clone();
            let (_, have) = self
                .store
                .key(&replica.key_id)
                .await?
                .ok_or_else(|| KmsError::Internal("replica vanished".into()))?;
            let had_rotations = self.store.rotations(&replica.key_id).await?;
            materials = primary_materials
                .into_iter()
                .filter(|m| !have.iter().any(|h| h.material_id == m.material_id))
                .map(|m| StoredMaterial {
                    key_id: replica.key_id.clone(),
                    ..m
                })
                .collect();
            rotations = self
                .store
                .rotations(&primary_id)
                .await?
                .into_iter()
                .filter(|r| !had_rotations.iter().any(|h| h.material_id == r.material_id))
                .map(|r| RotationRecord {
                    key_id: replica.key_id.clone(),
                    ..r
                })
                .collect();
            record.current_material = primary.current_material;
            record.lifecycle.rotation_period_days = primary.lifecycle.rotation_period_days;
            record.lifecycle.primary_region = Some(primary.region.clone());
            // The rotation schedule belongs to the primary only.
            record.lifecycle.next_rotation_ms = None;
        }
        self.store
            .write_keys(&KeysWrite {
                update: std::slice::from_ref(&record),
                materials: &materials,
                rotations: &rotations,
                ..KeysWrite::default()
            })
            .await?;
        // Reloaded on next use, with any material just added; the family too, since each
        // member's replica list is derived from the members' primary Regions.
        self.forget_family(&record);
        Ok(())
    }

    /// The new primary leaves `Updating`, bringing along any member that is past `Creating`
    /// and still names another Region as primary: one a ReplicateKey on another node inserted
    /// after the UpdatePrimaryRegion read the family, and that left `Creating` before the
    /// update was written (its own re-derivation, [`Self::current_primary`], ran too early). A
    /// member still `Creating` re-derives its primary itself when it leaves. In one
    /// transaction with the state change. The caller holds the write lock.
    async fn finish_updating_primary_locked(&self, primary: &KeyRecord) -> KmsResult<()> {
        let mut record = primary.clone();
        record.state = KeyState::Enabled;
        record.lifecycle.transition_ms = None;
        let mut updated = vec![record];
        for region in primary.family_regions() {
            if region == primary.region {
                continue;
            }
            // From the store, not the cache: a member another node inserted may not be cached
            // here, or cached as it was.
            let Some((mut member, _)) = self.store.key(&primary.related_key_id(&region)).await?
            else {
                continue;
            };
            if member.state == KeyState::Creating
                || member.lifecycle.primary_region.as_deref() == Some(&*primary.region)
            {
                continue;
            }
            member.lifecycle.primary_region = Some(primary.region.clone());
            // The rotation schedule belongs to the primary only.
            member.lifecycle.next_rotation_ms = None;
            updated.push(member);
        }
        self.store
            .write_keys(&KeysWrite {
                update: &updated,
                ..KeysWrite::default()
            })
            .await?;
        self.forget_family(primary);
        Ok(())
    }

    /// After a replica of `record`'s family was deleted: the other members' Region lists
    /// changed, and a primary waiting for its replicas' deletion may now start its own. The
    /// caller holds the write lock.
    pub(crate) async fn after_replica_deleted_locked(&self, record: &KeyRecord) -> KmsResult<()> {
        self.forget_family(record);
        let Some(primary_region) = record.lifecycle.primary_region.as_deref() else {
            return Ok(());
        };
        let primary_id = record.related_key_id(primary_region);
        if let Some(primary) = self.load_key(&primary_id).await?
            && primary.record.state == KeyState::PendingReplicaDeletion
        {
            self.finish_transition_locked(&primary_id, self.clock.now_ms())
                .await?;
        }
        Ok(())
    }

    /// New material imported into the multi-Region primary `primary` (its record as updated by
    /// the import, `material` its wrapped material): the primary and every replica, which gets
    /// the material's entry pending rotation and not imported, in one transaction. The caller
    /// holds the write lock.
    pub(crate) async fn share_pending_material_locked(
        &self,
        primary: &KeyRecord,
        material: &StoredMaterial,
    ) -> KmsResult<()> {
        let entry = imported_materials(primary)
            .into_iter()
            .find(|m| m.material_id == material.material_id)
            .ok_or_else(|| KmsError::Internal("imported material not listed".into()))?;
        let members = self.family_locked(&primary.key_id).await?;
        let mut updated = vec![primary.clone()];
        for m in members.iter().filter(|m| m.record.key_id != primary.key_id) {
            let mut r = m.record.clone();
            let mut list = imported_materials(&r);
            if !list.iter().any(|e| e.material_id == entry.material_id) {
                list.push(ImportedMaterial {
                    state: MaterialState::PendingRotation,
                    imported: false,
                    expiration_model: None,
                    valid_to_ms: None,
                    ..entry.clone()
                });
            }
            r.lifecycle.imported_materials = list;
            sync_import_lifecycle(&mut r);
            updated.push(r);
        }
        self.store
            .write_keys(&KeysWrite {
                update: &updated,
                materials: std::slice::from_ref(material),
                ..KeysWrite::default()
            })
            .await?;
        self.forget_family(primary);
        Ok(())
    }

    /// The primary `primary`'s material pending rotation `material_id` is deleted (or expired):
    /// every replica forgets it too, as AWS documents. Replica by replica, each one
    /// transaction, before the primary's own (the caller's): a crash in between leaves the
    /// primary still listing it, and deleting it again finishes. The caller holds the write
    /// lock.
    pub(crate) async fn forget_pending_material_locked(
        &self,
        primary: &KeyRecord,
        material_id: MaterialId,
    ) -> KmsResult<()> {
        let members = self.family_locked(&primary.key_id).await?;
        for m in members.iter().filter(|m| m.record.key_id != primary.key_id) {
            let mut r = m.record.clone();
            let mut list = imported_materials(&r);
            let before = list.len();
            list.retain(|e| {
                e.material_id != material_id || e.state != MaterialState::PendingRotation
            });
            if list.len() == before {
                continue;
            }
            r.lifecycle.imported_materials = list;
            sync_import_lifecycle(&mut r);
            self.store.delete_material(&r, &material_id).await?;
            self.cache
                .put_key(Arc::new(m.without_material(r, &material_id)));
        }
        Ok(())
    }

    /// Whether every key of `record`'s family holds `material_id` imported (read through the
    /// cache): until then a multi-Region key's material pending rotation is listed as
    /// PENDING_MULTI_REGION_IMPORT_AND_ROTATION. A single-Region key is its own family.
    pub(crate) async fn family_holds(
        &self,
        record: &KeyRecord,
        material_id: MaterialId,
    ) -> KmsResult<bool> {
        if !holds_imported(record, material_id) {
            return Ok(false);
        }
        if !record.multi_region {
            return Ok(true);
        }
        for region in record.family_regions() {
            let id = record.related_key_id(&region);
            if id == record.key_id {
                continue;
            }
            if let Some(k) = self.load_key(&id).await?
                && !holds_imported(&k.record, material_id)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// An imported material must be the family's: if a related key already has material, the
    /// new material must be that one (AWS checks it is the same material). HMAC and asymmetric
    /// keys only: a symmetric key's list of materials decides for it.
    pub(crate) async fn family_material(
        &self,
        record: &KeyRecord,
    ) -> KmsResult<Option<trent_crypto::MaterialId>> {
        if !record.multi_region {
            return Ok(None);
        }
        for region in record.family_regions() {
            let id = record.related_key_id(&region);
            if let Some(k) = self.load_key(&id).await?
                && k.record.current_material != NO_MATERIAL
            {
                return Ok(Some(k.record.current_material));
            }
        }
        Ok(None)
    }
}

fn already_replicated(replica_arn: &str) -> KmsError {
    KmsError::AlreadyExists(format!("{replica_arn} already exists"))
}
