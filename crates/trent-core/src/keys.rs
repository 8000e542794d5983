//! Key operations: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey, UpdateKeyDescription,
//! and key resolution shared by every operation that names a key.

use std::collections::HashMap;
use std::sync::Arc;

use trent_crypto::MaterialId;
use trent_crypto::spec::{KeySpec, KeyState, KeyUsage, Origin, WireEnum};
use uuid::Uuid;

use crate::authz::Resource;
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::{KeyIdForms, KeyRef, alias_arn, key_arn, parse_key_ref};
use crate::model::{KeyRecord, StoredMaterial, Tag, material_aad};
use crate::policies::{check_key_policy, default_key_policy};
use crate::service::Kms;
use crate::store::Page;
use crate::tags::validate_tags;
use crate::validate;

/// CreateKey input (members as in the AWS API).
#[derive(Debug, Default, Clone)]
pub struct CreateKeyInput {
    pub policy: Option<String>,
    pub description: Option<String>,
    pub key_usage: Option<String>,
    pub customer_master_key_spec: Option<String>,
    pub key_spec: Option<String>,
    pub origin: Option<String>,
    pub custom_key_store_id: Option<String>,
    /// `None` when the request did not send it: `kms:BypassPolicyLockoutSafetyCheck` is then
    /// absent from the request context, as for every request-parameter condition key.
    pub bypass_policy_lockout_safety_check: Option<bool>,
    pub tags: Vec<Tag>,
    pub multi_region: bool,
    pub xks_key_id: Option<String>,
}

/// A page of ListKeys.
#[derive(Debug, Clone)]
pub struct KeyList {
    pub keys: Vec<(String, String)>,
    pub next_marker: Option<String>,
}

/// Tries of a key update on a shared store before giving up (each lost to another node's
/// change to the same key in the moment between reading and writing it).
const UPDATE_ATTEMPTS: usize = 8;

impl Kms {
    /// Finds the key `input` names, as seen by `caller` (bare ids and alias names resolve in the
    /// caller's account; every form resolves in the request's region).
    pub(crate) async fn resolve(
        &self,
        caller: &Caller,
        input: &str,
        forms: KeyIdForms,
    ) -> KmsResult<Arc<LoadedKey>> {
        let key = self.resolve_named(caller, input, forms).await?;
        if key.phantom_not_found().is_none() {
            caller.note_key(key.shared_arn());
        }
        Ok(key)
    }

    async fn resolve_named(
        &self,
        caller: &Caller,
        input: &str,
        forms: KeyIdForms,
    ) -> KmsResult<Arc<LoadedKey>> {
        validate::length("keyId", input, 1, 2048)?;
        match parse_key_ref(input, forms, &caller.account, &caller.region)? {
            KeyRef::Key {
                account,
                region,
                key_id,
                multi_region,
            } => {
                let mut id_buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
                let regional;
                // A multi-Region key is looked up by its regional id: the related key of the
                // Region the request names.
                let id: &str = if multi_region {
                    regional = crate::ids::regional_key_id(
                        &crate::ids::multi_region_key_id(key_id.as_bytes()),
                        region,
                    );
                    &regional
                } else {
                    key_id.hyphenated().encode_lower(&mut id_buffer)
                };
                let not_found = || {
                    KmsError::NotFound(format!(
                        "Key '{}' does not exist",
                        key_arn(region, account, id)
                    ))
                };
                // Only an ARN can name another Region; AWS's answer names the ARN's Region.
                if *region != *caller.region {
                    return Err(KmsError::NotFound(format!("Invalid arn {region}")));
                }
                let key = self
                    .load_key(id)
                    .await?
                    .filter(|k| k.record.account_id == account && k.record.region == region);
                match key {
                    Some(key) => Ok(key),
                    // Another account's key: whether it exists is not the caller's to learn
                    // unless it may use it (authorization decides the stand-in).
                    None if account != caller.account => Ok(self.phantom_key(
                        account,
                        region,
                        id.to_string(),
                        *key_id.as_bytes(),
                        not_found(),
                    )),
                    None => Err(not_found()),
                }
            }
            KeyRef::Alias {
                account,
                region,
                name,
            } => {
                let not_found = || {
                    KmsError::NotFound(format!(
                        "Alias '{}' is not found.",
                        alias_arn(region, account, name)
                    ))
                };
                if *region != *caller.region {
                    return Err(not_found());
                }
                let target = match self.cache.alias_target(account, region, name) {
                    Some(t) => Some(t),
                    None => match self.store.alias(account, region, name).await? {
                        Some(alias) => {
                            self.cache
                                .put_alias(account, region, name, &alias.target_key_id);
                            Some(alias.target_key_id)
                        }
                        None => None,
                    },
                };
                let key = match target {
                    Some(target) => self.load_key(&target).await?,
                    None => None,
                };
                let Some(key) = key else {
                    if account == caller.account {
                        return Err(not_found());
                    }
                    // Another account's alias: a stand-in key (with an id that names nothing),
                    // denied like the key of an alias that exists.
                    let uuid = Uuid::from_bytes(trent_crypto::random::array::<16>()?);
                    return Ok(self.phantom_key(
                        account,
                        region,
                        uuid.hyphenated().to_string(),
                        *uuid.as_bytes(),
                        not_found(),
                    ));
                };
                if key.record.account_id != account || key.record.region != region {
                    return Err(KmsError::Internal(
                        "alias points at a key of another account or region".into(),
                    ));
                }
                Ok(key)
            }
        }
    }

    /// A stand-in for a key of `account` that the caller cannot see ([`LoadedKey::phantom`]):
    /// as a key newly created there would be, with the default key policy.
    fn phantom_key(
        &self,
        account: &str,
        region: &str,
        key_id: String,
        uuid: [u8; 16],
        not_found: KmsError,
    ) -> Arc<LoadedKey> {
        let record = KeyRecord {
            key_id,
            account_id: account.to_string(),
            region: region.to_string(),
            created_ms: self.clock.now_ms(),
            description: String::new(),
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            origin: Origin::AwsKms,
            state: KeyState::Enabled,
            policy: default_key_policy(account),
            policy_principals: Default::default(),
            tags: Vec::new(),
            current_material: MaterialId([0; 32]),
            multi_region: false,
            lifecycle: Default::default(),
            custody: Default::default(),
        };
        Arc::new(LoadedKey::phantom(record, uuid, not_found.to_string()))
    }

    /// Applies `change` to the key's record under the write lock, persists it and refreshes the
    /// cache. Returns the new record.
    pub(crate) async fn update_key_record(
        &self,
        key_id: &str,
        change: impl FnMut(&mut KeyRecord) -> KmsResult<()>,
    ) -> KmsResult<KeyRecord> {
        let _guard = self.writes.lock().await;
        self.update_key_record_locked(key_id, change).await
    }

    /// [`Kms::update_key_record`] for a caller that holds the write lock.
    pub(crate) async fn update_key_record_locked(
        &self,
        key_id: &str,
        mut change: impl FnMut(&mut KeyRecord) -> KmsResult<()>,
    ) -> KmsResult<KeyRecord> {
        if self.store.shared() {
            return self.update_key_record_shared(key_id, change).await;
        }
        let current = self
            .load_key(key_id)
            .await?
            .ok_or_else(|| KmsError::Internal("key vanished during update".into()))?;
        let mut record = current.record.clone();
        change(&mut record)?;
        if record != current.record {
            self.store.update_key(&record).await?;
            self.cache
                .put_key(Arc::new(current.with_record(record.clone())));
        }
        Ok(record)
    }

    /// [`Kms::update_key_record_locked`] on a store other nodes write: the change is applied to
    /// the record as stored (this node's cached copy may not have another node's change yet)
    /// and written only if the record is still that (`Store::update_key_if`); otherwise read
    /// and applied again, so two nodes changing one key never lose either change.
    async fn update_key_record_shared(
        &self,
        key_id: &str,
        mut change: impl FnMut(&mut KeyRecord) -> KmsResult<()>,
    ) -> KmsResult<KeyRecord> {
        for _ in 0..UPDATE_ATTEMPTS {
            let Some((stored, _)) = self.store.key(key_id).await? else {
                return Err(KmsError::Internal("key vanished during update".into()));
            };
            let mut record = stored.clone();
            change(&mut record)?;
            if record == stored {
                return Ok(record);
            }
            if self.store.update_key_if(&stored, &record).await? {
                // The cached copy, if it was the stored record, gets the change; one that was
                // stale is dropped (the next use reads the key with its materials again).
                match self.cache.key(key_id) {
                    Some(cached) if cached.record == stored => self
                        .cache
                        .put_key(Arc::new(cached.with_record(record.clone()))),
                    _ => self.cache.remove_key(key_id),
                }
                return Ok(record);
            }
        }
        Err(KmsError::DependencyTimeout(format!(
            "key {key_id} kept changing under {UPDATE_ATTEMPTS} attempts to update it"
        )))
    }

    pub async fn create_key(&self, caller: &Caller, input: CreateKeyInput) -> KmsResult<KeyRecord> {
        self.admit(caller, crate::quotas::RateQuota::CreateKey)?;
        let description = input.description.unwrap_or_default();
        // AWS's model validation reports every failing member at once, in the model's order;
        // the checks below then find these members valid.
        let mut v = validate::Violations::default();
        v.take(validate::length("description", &description, 0, 8192));
        for (field, value) in [
            ("keyUsage", &input.key_usage),
            ("customerMasterKeySpec", &input.customer_master_key_spec),
            ("keySpec", &input.key_spec),
            ("origin", &input.origin),
        ] {
            if let Some(value) = value {
                v.take(match field {
                    "keyUsage" => validate::enum_value::<KeyUsage>(field, value).map(drop),
                    "origin" => validate::enum_value::<Origin>(field, value).map(drop),
                    _ => validate::enum_value::<KeySpec>(field, value).map(drop),
                });
            }
        }
        v.finish()?;
        let key_spec = match (&input.key_spec, &input.customer_master_key_spec) {
            (Some(_), Some(_)) => {
                return Err(KmsError::Validation(
                    "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.".into(),
                ));
            }
            (Some(s), None) => validate::enum_value::<KeySpec>("keySpec", s)?,
            (None, Some(s)) => validate::enum_value::<KeySpec>("customerMasterKeySpec", s)?,
            (None, None) => KeySpec::SymmetricDefault,
        };
        let key_usage = match &input.key_usage {
            Some(u) => validate::enum_value::<KeyUsage>("keyUsage", u)?,
            // AWS's message, for every spec but SYMMETRIC_DEFAULT (RSA included, though
            // ENCRYPT_DECRYPT would fit it).
            None if key_spec != KeySpec::SymmetricDefault => {
                return Err(KmsError::Validation(
                    "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.".into(),
                ));
            }
            None => KeyUsage::EncryptDecrypt,
        };
        if !key_spec.allowed_usages().contains(&key_usage) {
            return Err(KmsError::Validation(format!(
                "KeyUsage {} is not compatible with KeySpec {}",
                key_usage.as_str(),
                key_spec.as_str()
            )));
        }
        let origin = match &input.origin {
            Some(o) => validate::enum_value::<Origin>("origin", o)?,
            None => Origin::AwsKms,
        };
        // Who will hold the material: the origin says which kind of custom key store, if
        // any; the store itself is resolved after authorization.
        let held_in = match (&input.custom_key_store_id, origin) {
            (Some(id), Origin::AwsCloudHsm) => {
                validate::length("customKeyStoreId", id, 1, 64)?;
                Some(id.clone())
            }
            (None, Origin::AwsCloudHsm) => {
                return Err(KmsError::Validation(
                    "You must specify a CustomKeyStoreId when the Origin is AWS_CLOUDHSM".into(),
                ));
            }
            (Some(id), Origin::ExternalKeyStore) => {
                validate::length("customKeyStoreId", id, 1, 64)?;
                Some(id.clone())
            }
            (None, Origin::ExternalKeyStore) => {
                return Err(KmsError::Validation(
                    "You must specify a CustomKeyStoreId when the Origin is EXTERNAL_KEY_STORE"
                        .into(),
                ));
            }
            (Some(_), _) => {
                return Err(KmsError::Validation(format!(
                    "CustomKeyStoreId requires Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE, not {}",
                    origin.as_str()
                )));
            }
            (None, _) => None,
        };
        // XksKeyId goes with Origin EXTERNAL_KEY_STORE, and only with it.
        let xks_key_id = match (&input.xks_key_id, origin) {
            (Some(id), Origin::ExternalKeyStore) => {
                validate::length("xksKeyId", id, 1, 128)?;
                if !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                {
                    return Err(KmsError::Validation(
                        "1 validation error detected: Value at 'xksKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9-_.]+$".into(),
                    ));
                }
                Some(id.clone())
            }
            (None, Origin::ExternalKeyStore) => {
                return Err(KmsError::Validation(
                    "You must specify an XksKeyId when the Origin is EXTERNAL_KEY_STORE".into(),
                ));
            }
            (Some(_), _) => {
                return Err(KmsError::Validation(
                    "XksKeyId is valid only when the Origin is EXTERNAL_KEY_STORE".into(),
                ));
            }
            (None, _) => None,
        };
        if held_in.is_some() {
            // AWS: only symmetric encryption keys, never multi-Region, in a custom key store.
            if key_spec != KeySpec::SymmetricDefault || key_usage != KeyUsage::EncryptDecrypt {
                return Err(KmsError::UnsupportedOperation(format!(
                    "KeySpec {} with KeyUsage {} is not supported in a custom key store: only SYMMETRIC_DEFAULT with ENCRYPT_DECRYPT",
                    key_spec.as_str(),
                    key_usage.as_str()
                )));
            }
            if input.multi_region {
                return Err(KmsError::UnsupportedOperation(
                    "Multi-Region keys cannot be created in a custom key store".into(),
                ));
            }
        }
        // AWS lists the key types whose material can be imported (symmetric encryption, HMAC,
        // asymmetric encryption, key agreement and signing keys); ML-KEM keys are not among
        // them (docs/decisions.md, "ML-KEM keys").
        if origin == Origin::External && !crate::import::importable_spec(key_spec) {
            return Err(KmsError::UnsupportedOperation(format!(
                "Origin EXTERNAL is not supported for KMS keys with key spec {}: their key material cannot be imported.",
                key_spec.as_str()
            )));
        }
        validate_tags(&input.tags)?;
        if let Some(p) = &input.policy {
            check_key_policy(p)?;
        }
        let mut context = trent_policy::ConditionContext::new();
        context.insert("kms:KeySpec", key_spec.as_str());
        context.insert("kms:CustomerMasterKeySpec", key_spec.as_str());
        context.insert("kms:KeyUsage", key_usage.as_str());
        context.insert("kms:CustomerMasterKeyUsage", key_usage.as_str());
        context.insert("kms:KeyOrigin", origin.as_str());
        context.insert(
            "kms:MultiRegion",
            if input.multi_region { "true" } else { "false" },
        );
        if input.multi_region {
            context.insert("kms:MultiRegionKeyType", "PRIMARY");
        }
        context.insert("kms:CallerAccount", caller.account.clone());
        if let Some(bypass) = input.bypass_policy_lockout_safety_check {
            context.insert(
                "kms:BypassPolicyLockoutSafetyCheck",
                if bypass { "true" } else { "false" },
            );
        }
        let bypass = input.bypass_policy_lockout_safety_check.unwrap_or(false);
        add_request_tags(&mut context, &input.tags);
        self.authorize_with(caller, "kms:CreateKey", Resource::Any, context)?;
        let custom_policy = input.policy.is_some();
        let policy = input
            .policy
            .unwrap_or_else(|| default_key_policy(&caller.account));
        // Its users and roles bound to their unique ids now (`authz/bindings.rs`).
        let policy_principals =
            self.bind_policy_principals(&policy, trent_policy::PolicyKind::KeyPolicy);
        // A multi-Region primary: its public id is `mrk-` and 32 random hex digits, the same in
        // every Region it is replicated to; the record is named by its regional id.
        let multi_region_id = if input.multi_region {
            let raw = trent_crypto::random::array::<16>()?;
            Some((
                raw,
                crate::ids::regional_key_id(&crate::ids::multi_region_key_id(&raw), &caller.region),
            ))
        } else {
            None
        };
        if origin == Origin::External {
            let mut record = crate::import::external_key_record(
                caller,
                self.clock.now_ms(),
                description,
                key_spec,
                key_usage,
                policy,
                input.tags,
            );
            record.policy_principals = policy_principals;
            if let Some((_, id)) = &multi_region_id {
                record.key_id.clone_from(id);
                record.multi_region = true;
                record.lifecycle.primary_region = Some(caller.region.to_string());
            }
            if custom_policy {
                self.check_policy_for_key(caller, &record, bypass)?;
            }
            if input.multi_region {
                self.ensure_multi_region_role(caller).await?;
            }
            let _guard = self.writes.lock().await;
            self.check_key_quota(&record.account_id, &record.region)
                .await?;
            return self.insert_external_key(record).await;
        }

        let key_id = Uuid::new_v4();
        let (uuid_bytes, key_id_str) = match &multi_region_id {
            Some((raw, id)) => (*raw, id.clone()),
            None => (*key_id.as_bytes(), key_id.hyphenated().to_string()),
        };
        let material_id = MaterialId::random()?;
        // Built-in material now; a store-held key's is made in its store, under the lock.
        let built_in = match held_in {
            Some(_) => None,
            None => {
                // RSA-4096 generation takes up to a second: keep it off the async workers.
                let (raw, material) = tokio::task::spawn_blocking(move || {
                    crate::material::generate_material(key_spec, key_usage)
                })
                .await
                .map_err(|e| KmsError::Internal(e.to_string()))??;
                let wrapped = self
                    .root
                    .wrap(&raw, &material_aad(&key_id_str, &material_id))?;
                Some((wrapped, material))
            }
        };
        let now = self.clock.now_ms();
        let mut tags = input.tags;
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        let record = KeyRecord {
            key_id: key_id_str.clone(),
            account_id: caller.account.clone(),
            region: caller.region.to_string(),
            created_ms: now,
            description,
            key_spec,
            key_usage,
            origin,
            state: KeyState::Enabled,
            policy,
            policy_principals,
            tags,
            current_material: material_id,
            multi_region: input.multi_region,
            lifecycle: crate::model::KeyLifecycle {
                primary_region: input.multi_region.then(|| caller.region.to_string()),
                ..Default::default()
            },
            // A store-held key's custody is set when its store makes it, under the lock.
            custody: crate::model::KeyCustody::BuiltIn,
        };
        if custom_policy {
            self.check_policy_for_key(caller, &record, bypass)?;
        }
        if input.multi_region {
            self.ensure_multi_region_role(caller).await?;
        }
        let mut record = record;
        // A CloudHSM store's key is generated in its token before the write lock (a token
        // call; other writes must not wait for an HSM), then checked again under the lock;
        // if the key is not created after all, the token key is destroyed again.
        let mut held = None;
        if let (Some(store_id), Origin::AwsCloudHsm) = (&held_in, origin) {
            self.check_key_quota(&record.account_id, &record.region)
                .await?;
            held = Some(
                self.create_held_key(caller, store_id, &key_id_str, &material_id)
                    .await?,
            );
        }
        let _guard = self.writes.lock().await;
        let mut checked = self
            .check_key_quota(&record.account_id, &record.region)
            .await;
        if let (Ok(()), Some(h)) = (&checked, &held) {
            checked = self.check_held_key_locked(caller, h).await;
        }
        if let Err(e) = checked {
            drop(_guard);
            if let Some(h) = held {
                self.discard_held_key(h).await;
            }
            return Err(e);
        }
        let (wrapped, material, token) = match (built_in, &held_in) {
            (Some((wrapped, material)), _) => (wrapped, material, None),
            (None, Some(store_id)) if origin == Origin::ExternalKeyStore => {
                let xks_key_id = xks_key_id
                    .as_deref()
                    .ok_or_else(|| KmsError::Internal("XksKeyId checked above".into()))?;
                let (custody, wrapped, material) = self
                    .create_external_key(
                        caller,
                        store_id,
                        xks_key_id,
                        &record.arn(),
                        &material_aad(&key_id_str, &material_id),
                    )
                    .await?;
                record.custody = custody;
                (wrapped, material, None)
            }
            (None, Some(_)) => {
                let Some(held) = held else {
                    return Err(KmsError::Internal("no store-held key made".into()));
                };
                record.custody = held.custody;
                (held.wrapped, held.material, Some(held.connection))
            }
            (None, None) => return Err(KmsError::Internal("no key material made".into())),
        };
        let inserted = self
            .store
            .insert_key(
                &record,
                &StoredMaterial {
                    key_id: key_id_str.clone(),
                    material_id,
                    wrapped,
                    created_ms: now,
                },
            )
            .await;
        if let Err(e) = inserted {
            drop(_guard);
            // No key row names the token key: remove it rather than leave an orphan. Not when
            // the store did not answer in time: the insert may still commit (bounded calls).
            if let (Some(conn), Some(store_id)) = (token, &held_in) {
                drop(material);
                if matches!(e, crate::store::StoreError::Unavailable(_)) {
                    // Left for the store's next connect, which destroys it only if no key
                    // row names it by then (and not while the insert may still commit).
                    crate::custom_key_stores::note_unanswered_insert(store_id, &key_id_str);
                    if let Err(e) = self
                        .store
                        .add_pending_token_destruction(store_id, &key_id_str, now)
                        .await
                    {
                        tracing::warn!(custom_key_store = %store_id, label = %key_id_str, error = %e, "cannot record a failed CreateKey's token key for destruction: it stays in the token");
                    }
                } else {
                    self.discard_token_key(store_id, conn, &key_id_str).await;
                }
            }
            return Err(e.into());
        }
        self.grants.init_new_key(&record.key_id);
        self.cache.set_key_aliases(&record.key_id, Vec::new());
        let materials = HashMap::from([(material_id, Arc::new(material))]);
        let loaded = Arc::new(LoadedKey::new(record.clone(), uuid_bytes, materials));
        // The new key is what the request was about (the audit record's resource).
        caller.note_key(loaded.shared_arn());
        self.cache.put_key(loaded);
        Ok(record)
    }

    pub async fn describe_key(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        grant_tokens: &[String],
    ) -> KmsResult<KeyRecord> {
        self.admit(caller, crate::quotas::RateQuota::DescribeKey)?;
        let key_id = validate::required("keyId", key_id)?;
        let tokens = self.open_grant_tokens(grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            crate::authz::Access::new("kms:DescribeKey", Resource::Key(&key))
                .named_as(key_id)
                .grant_tokens(&tokens),
        )?;
        Ok(key.record.clone())
    }

    pub async fn list_keys(
        &self,
        caller: &Caller,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> KmsResult<KeyList> {
        self.admit(caller, crate::quotas::RateQuota::ListKeys)?;
        let limit = validate::limit(limit, 1000, 100)?;
        if let Some(m) = marker {
            validate::length("marker", m, 1, 1024)?;
            if Uuid::parse_str(m).is_err() && !crate::ids::is_multi_region_key_id(m) {
                return Err(KmsError::InvalidMarker("Invalid marker".into()));
            }
        }
        // Markers are public ids; the store orders this Region's regional ids, in which a
        // multi-Region key's id carries the Region.
        let marker = marker.map(|m| {
            if crate::ids::is_multi_region_key_id(m) {
                crate::ids::regional_key_id(m, &caller.region)
            } else {
                m.to_string()
            }
        });
        let marker = marker.as_deref();
        self.authorize(caller, "kms:ListKeys", Resource::Any)?;
        let mut ids = self
            .store
            .list_keys(
                &caller.account,
                &caller.region,
                Page {
                    after: marker,
                    limit: limit + 1,
                },
            )
            .await?;
        let next_marker = if ids.len() > limit {
            ids.truncate(limit);
            ids.last()
                .map(|id| crate::ids::public_key_id(id).to_string())
        } else {
            None
        };
        let keys = ids
            .into_iter()
            .map(|id| {
                let arn = key_arn(&caller.region, &caller.account, &id);
                (crate::ids::public_key_id(&id).to_string(), arn)
            })
            .collect();
        Ok(KeyList { keys, next_marker })
    }

    pub async fn enable_key(&self, caller: &Caller, key_id: Option<&str>) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::EnableKey)?;
        self.set_enabled(caller, key_id, true).await
    }

    pub async fn disable_key(&self, caller: &Caller, key_id: Option<&str>) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::DisableKey)?;
        self.set_enabled(caller, key_id, false).await
    }

    async fn set_enabled(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        enabled: bool,
    ) -> KmsResult<()> {
        let key_id = validate::required("keyId", key_id)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        let action = if enabled {
            "kms:EnableKey"
        } else {
            "kms:DisableKey"
        };
        self.authorize(caller, action, Resource::Key(&key))?;
        self.update_key_record(&key.record.key_id, |r| {
            crate::key_state::check(crate::key_state::Op::EnableDisable, r)?;
            r.state = if enabled {
                KeyState::Enabled
            } else {
                KeyState::Disabled
            };
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn update_key_description(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        description: Option<&str>,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::UpdateKeyDescription)?;
        let key_id = validate::required("keyId", key_id)?;
        let description = validate::required("description", description)?;
        validate::length("description", description, 0, 8192)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:UpdateKeyDescription", Resource::Key(&key))?;
        self.update_key_record(&key.record.key_id, |r| {
            crate::key_state::check(crate::key_state::Op::Manage, r)?;
            r.description = description.to_string();
            Ok(())
        })
        .await
        .map(|_| ())
    }
}

/// `KMSInvalidStateException` for `record` in its current state, in AWS's wording (see
/// `key_state.rs`, which operations should use instead).
#[allow(
    dead_code,
    reason = "kept for operations written before the key-state table existed"
)]
pub(crate) fn invalid_state(record: &KeyRecord, _state: KeyState) -> KmsError {
    crate::key_state::invalid_state(record)
}

/// Refuses cryptographic use of a key that is not Enabled, as AWS does (see `key_state.rs`).
pub(crate) fn require_usable(record: &KeyRecord) -> KmsResult<()> {
    crate::key_state::check(crate::key_state::Op::Cryptographic, record)
}

/// `aws:RequestTag/*` and `aws:TagKeys` of a request that sets tags.
pub(crate) fn add_request_tags(context: &mut trent_policy::ConditionContext, tags: &[Tag]) {
    for t in tags {
        context.insert(&format!("aws:RequestTag/{}", t.key), t.value.clone());
    }
    if !tags.is_empty() {
        context.insert_multi("aws:TagKeys", tags.iter().map(|t| t.key.clone()));
    }
}
