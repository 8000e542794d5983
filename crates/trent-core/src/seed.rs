//! The development seed: accounts, keys (optionally with fixed backing key material), aliases
//! and IAM users with fixed access keys and inline policies, applied by `trent serve` at start.
//!
//! **Idempotent.** Applying a seed creates what is missing and never changes or deletes what
//! exists: an existing account keeps its root key, an existing key its description, policy,
//! tags and state, an existing alias its target, an existing user its path, policies and keys.
//! Each named thing (account, key, alias, user, inline policy, access key) is one unit: missing
//! → created, present → kept. A seed key that exists with *other identity* — another account or
//! region, key spec or key usage, or without the backing material the seed names — cannot be
//! what the seed means, and the seed is refused (nothing is applied) naming the entry and field.
//!
//! **Validate everything, then apply.** [`Kms::apply_seed`] first checks every entry against
//! the seed itself and the current state (names, specs, material, policies, references,
//! quotas, conflicts), and only then writes; a seed with any error changes nothing. A failure
//! of the store while applying leaves what was written; the next start completes it.
//!
//! Like the other operator actions (`operator.rs`) the seed bypasses IAM and key policies: it
//! is the operator's file. Key policies are checked for syntax only (no principal-existence or
//! lockout check), since the principals they name may be created by the same seed.
//!
//! Backing key material makes ciphertexts portable across fresh data directories seeded the
//! same way: a material's id is derived from the key id and the material (as for imported
//! material), and the ciphertext blob names the key id and material id.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use trent_crypto::MaterialId;
use trent_crypto::import::imported_material_id;
use trent_crypto::spec::{KeySpec, KeyState, KeyUsage, Origin, WireEnum};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::KmsError;
use crate::iam::{Entity, entity_arn};
use crate::material::Material;
use crate::model::{KeyRecord, StoredMaterial, Tag, material_aad};
use crate::service::Kms;

/// A seed, already read from its file (the format is the binary's business).
#[derive(Default)]
pub struct Seed {
    /// The account of entries that name none. Without it, such entries go to the only account
    /// Trent serves (with the seed's accounts), and are an error when there are several.
    pub default_account: Option<String>,
    pub accounts: Vec<SeedAccount>,
    pub keys: Vec<SeedKey>,
    pub aliases: Vec<SeedAlias>,
    pub users: Vec<SeedUser>,
}

/// A fixed access key.
pub struct SeedAccessKey {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

pub struct SeedAccount {
    /// How messages name the entry, e.g. `account[0]`.
    pub entry: String,
    pub id: String,
    /// Random (and never shown) when absent: use seeded users to reach such an account.
    pub root_access_key: Option<SeedAccessKey>,
}

pub struct SeedKey {
    pub entry: String,
    pub account: Option<String>,
    pub region: String,
    pub key_id: String,
    /// `SYMMETRIC_DEFAULT` when absent.
    pub key_spec: Option<String>,
    /// `GENERATE_VERIFY_MAC` for HMAC specs, else `ENCRYPT_DECRYPT`, when absent.
    pub key_usage: Option<String>,
    pub description: Option<String>,
    pub policy: Option<String>,
    pub tags: Vec<Tag>,
    /// Material versions, oldest first; the last is current. Raw bytes for symmetric and HMAC
    /// keys, a PKCS#8 DER private key for asymmetric ones. Empty: generated.
    pub backing_keys: Vec<Zeroizing<Vec<u8>>>,
}

pub struct SeedAlias {
    pub entry: String,
    pub account: Option<String>,
    pub region: String,
    pub name: String,
    /// A key id (of a seed key or an existing key of the same account and region).
    pub target_key_id: String,
}

pub struct SeedUser {
    pub entry: String,
    pub account: Option<String>,
    pub name: String,
    pub path: Option<String>,
    /// Inline policies: (name, JSON document).
    pub policies: Vec<(String, String)>,
    pub access_keys: Vec<SeedAccessKey>,
}

/// Why a seed was refused: which entry, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry}: {field}: {message}")]
pub struct SeedError {
    pub entry: String,
    pub field: String,
    pub message: String,
}

fn err(entry: &str, field: impl Into<String>, message: impl Into<String>) -> SeedError {
    SeedError {
        entry: entry.to_string(),
        field: field.into(),
        message: message.into(),
    }
}

/// What applying a seed did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// What was created, one description each (`key 1234… (111122223333, us-east-1)`).
    pub created: Vec<String>,
    /// How many named things existed already and were kept as they are.
    pub kept: usize,
}

/// One write the validated seed will make.
enum Step {
    Account {
        id: String,
        root: Option<(String, Zeroizing<String>)>,
    },
    User {
        entry: String,
        account: String,
        name: String,
        path: String,
    },
    UserPolicy {
        entry: String,
        account: String,
        user: String,
        name: String,
        document: String,
    },
    AccessKey {
        entry: String,
        account: String,
        user_arn: String,
        access_key_id: String,
        secret: Zeroizing<String>,
    },
    Key(Box<PlannedKey>),
    Alias {
        entry: String,
        account: String,
        region: String,
        name: String,
        target: String,
    },
}

struct PlannedKey {
    entry: String,
    record: KeyRecord,
    uuid: Uuid,
    /// (id, raw bytes to wrap, parsed), oldest first. Empty: generate.
    materials: Vec<(MaterialId, Zeroizing<Vec<u8>>, Material)>,
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::Account { id, .. } => format!("account {id}"),
            Step::User { account, name, .. } => format!("user {name} ({account})"),
            Step::UserPolicy {
                account,
                user,
                name,
                ..
            } => format!("policy {name} of user {user} ({account})"),
            Step::AccessKey {
                account,
                access_key_id,
                ..
            } => format!("access key {access_key_id} ({account})"),
            Step::Key(k) => format!(
                "key {} ({}, {})",
                k.record.key_id, k.record.account_id, k.record.region
            ),
            Step::Alias {
                account,
                region,
                name,
                ..
            } => format!("alias {name} ({account}, {region})"),
        }
    }
}

/// Records `key` as `arn`'s in `access_keys` (id → principal ARN): `Ok(true)` when it is new,
/// `Ok(false)` when `arn` has it already, an error when another principal (or another seed
/// entry) has it.
fn claim_key(
    access_keys: &mut HashMap<String, String>,
    entry: &str,
    field: &str,
    key: &SeedAccessKey,
    arn: &str,
) -> Result<bool, SeedError> {
    match access_keys.get(&key.access_key_id) {
        Some(owner) if owner == arn => Ok(false),
        Some(_) => Err(err(
            entry,
            format!("{field}access_key_id"),
            format!(
                "access key {} exists already for another principal (or twice in the seed)",
                key.access_key_id
            ),
        )),
        None => {
            access_keys.insert(key.access_key_id.clone(), arn.to_string());
            Ok(true)
        }
    }
}

/// Access key ids as AWS makes them: 16 to 128 word characters.
fn check_access_key(entry: &str, field: &str, key: &SeedAccessKey) -> Result<(), SeedError> {
    let id = &key.access_key_id;
    if !(16..=128).contains(&id.len()) || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(err(
            entry,
            format!("{field}access_key_id"),
            format!("`{id}` must be 16 to 128 letters and digits (e.g. AKIA + 16 characters)"),
        ));
    }
    if key.secret_access_key.is_empty() || key.secret_access_key.len() > 128 {
        return Err(err(
            entry,
            format!("{field}secret_access_key"),
            "must be 1 to 128 characters",
        ));
    }
    Ok(())
}

impl Kms {
    /// Validates `seed` against itself and the current state, then applies what is missing.
    /// An invalid seed changes nothing.
    pub async fn apply_seed(&self, seed: &Seed) -> Result<SeedReport, SeedError> {
        let (steps, kept) = self.plan_seed(seed).await?;
        let mut report = SeedReport {
            created: Vec::new(),
            kept,
        };
        for step in steps {
            let what = step.describe();
            self.apply_step(step).await?;
            report.created.push(what);
        }
        Ok(report)
    }

    /// Everything the seed would create, or the first error; no writes.
    async fn plan_seed(&self, seed: &Seed) -> Result<(Vec<Step>, usize), SeedError> {
        let internal = |e: crate::store::StoreError| err("seed", "-", e.to_string());
        let mut steps = Vec::new();
        let mut kept = 0;
        let existing_accounts: HashSet<String> = self
            .store
            .accounts()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|a| a.account_id)
            .collect();
        // Access key id → principal ARN, existing and planned.
        let mut access_keys: HashMap<String, String> = self
            .store
            .access_keys()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|k| (k.access_key_id, k.principal_arn))
            .collect();
        // Accounts.
        let mut all_accounts = existing_accounts.clone();
        for a in &seed.accounts {
            crate::operator::check_account_id(&a.id).map_err(|e| err(&a.entry, "id", msg(e)))?;
            if seed.accounts.iter().filter(|b| b.id == a.id).count() > 1 {
                return Err(err(
                    &a.entry,
                    "id",
                    format!("account {} is listed twice", a.id),
                ));
            }
            all_accounts.insert(a.id.clone());
            if existing_accounts.contains(&a.id) {
                kept += 1;
                continue;
            }
            let root = match &a.root_access_key {
                Some(k) => {
                    check_access_key(&a.entry, "root_", k)?;
                    claim_key(
                        &mut access_keys,
                        &a.entry,
                        "root_",
                        k,
                        &format!("arn:aws:iam::{}:root", a.id),
                    )?;
                    Some((k.access_key_id.clone(), k.secret_access_key.clone()))
                }
                None => None,
            };
            steps.push(Step::Account {
                id: a.id.clone(),
                root,
            });
        }
        let resolve_account = |entry: &str, given: &Option<String>| -> Result<String, SeedError> {
            let account = match given.as_ref().or(seed.default_account.as_ref()) {
                Some(a) => a.clone(),
                None if all_accounts.len() == 1 => {
                    all_accounts.iter().next().cloned().unwrap_or_default()
                }
                None => {
                    return Err(err(
                        entry,
                        "account",
                        format!(
                            "Trent serves {} accounts: name the account (here or as the seed's `account`)",
                            all_accounts.len()
                        ),
                    ));
                }
            };
            if !all_accounts.contains(&account) {
                return Err(err(
                    entry,
                    "account",
                    format!(
                        "account `{account}` does not exist (declare it in the seed's or the config's [[account]])"
                    ),
                ));
            }
            Ok(account)
        };
        if let Some(a) = &seed.default_account {
            crate::operator::check_account_id(a).map_err(|e| err("seed", "account", msg(e)))?;
        }

        // Users, their policies and access keys.
        let mut seen_users = HashSet::new();
        for u in &seed.users {
            let account = resolve_account(&u.entry, &u.account)?;
            crate::iam::check_name("userName", &u.name, 64)
                .map_err(|e| err(&u.entry, "name", e.to_string()))?;
            if !seen_users.insert((account.clone(), u.name.to_ascii_lowercase())) {
                return Err(err(
                    &u.entry,
                    "name",
                    format!("user {} is listed twice", u.name),
                ));
            }
            let iam = self.iam.account(&account);
            let existing = iam.users.get(&u.name);
            if existing.is_none() && iam.users.keys().any(|k| k.eq_ignore_ascii_case(&u.name)) {
                return Err(err(
                    &u.entry,
                    "name",
                    format!(
                        "a user whose name differs from {} only in case exists",
                        u.name
                    ),
                ));
            }
            let path = match existing {
                Some(user) => {
                    kept += 1;
                    user.path.clone()
                }
                None => {
                    let path = u.path.clone().unwrap_or_else(|| "/".into());
                    crate::iam::check_path(&path)
                        .map_err(|e| err(&u.entry, "path", e.to_string()))?;
                    steps.push(Step::User {
                        entry: u.entry.clone(),
                        account: account.clone(),
                        name: u.name.clone(),
                        path: path.clone(),
                    });
                    path
                }
            };
            let mut inline_size: usize = existing
                .map(|user| {
                    user.inline
                        .values()
                        .map(|d| trent_policy::identity_policy_size(d))
                        .sum()
                })
                .unwrap_or(0);
            let mut seen_policies = HashSet::new();
            for (i, (name, document)) in u.policies.iter().enumerate() {
                let field = format!("policies[{i}]");
                crate::iam::check_name("policyName", name, 128)
                    .map_err(|e| err(&u.entry, format!("{field}.name"), e.to_string()))?;
                if !seen_policies.insert(name) {
                    return Err(err(
                        &u.entry,
                        format!("{field}.name"),
                        format!("policy {name} is listed twice"),
                    ));
                }
                if existing.is_some_and(|user| user.inline.contains_key(name)) {
                    kept += 1;
                    continue;
                }
                crate::iam::check_identity_policy(
                    document,
                    trent_policy::IdentityPolicyType::UserInline,
                )
                .map_err(|e| err(&u.entry, format!("{field}.document"), e.to_string()))?;
                inline_size += trent_policy::identity_policy_size(document);
                let max = trent_policy::IdentityPolicyType::UserInline.max_chars();
                if inline_size > max {
                    return Err(err(
                        &u.entry,
                        format!("{field}.document"),
                        format!("the user's inline policies would exceed {max} characters"),
                    ));
                }
                steps.push(Step::UserPolicy {
                    entry: u.entry.clone(),
                    account: account.clone(),
                    user: u.name.clone(),
                    name: name.clone(),
                    document: document.clone(),
                });
            }
            let user_arn = entity_arn(&account, "user", &path, &u.name);
            let mut key_count = access_keys.values().filter(|a| **a == user_arn).count();
            for (i, k) in u.access_keys.iter().enumerate() {
                let field = format!("access_keys[{i}].");
                check_access_key(&u.entry, &field, k)?;
                if !claim_key(&mut access_keys, &u.entry, &field, k, &user_arn)? {
                    kept += 1;
                    continue;
                }
                key_count += 1;
                if key_count > 2 {
                    return Err(err(
                        &u.entry,
                        format!("{field}access_key_id"),
                        "a user has at most 2 access keys (AccessKeysPerUser)",
                    ));
                }
                steps.push(Step::AccessKey {
                    entry: u.entry.clone(),
                    account: account.clone(),
                    user_arn: user_arn.clone(),
                    access_key_id: k.access_key_id.clone(),
                    secret: k.secret_access_key.clone(),
                });
            }
        }

        // Keys.
        // Key id → (account, region) of seed keys and existing keys, for alias targets.
        let mut key_homes: HashMap<String, (String, String, Option<KeyRecord>)> = HashMap::new();
        for k in &seed.keys {
            let account = resolve_account(&k.entry, &k.account)?;
            let uuid = Uuid::parse_str(&k.key_id).map_err(|_| {
                err(
                    &k.entry,
                    "key_id",
                    format!(
                        "`{}` is not a key id (a UUID like 1234abcd-12ab-34cd-56ef-1234567890ab)",
                        k.key_id
                    ),
                )
            })?;
            let key_id = uuid.hyphenated().to_string();
            if key_homes.contains_key(&key_id) {
                return Err(err(
                    &k.entry,
                    "key_id",
                    format!("key {key_id} is listed twice"),
                ));
            }
            let planned = self.plan_key(k, &account, uuid, &key_id)?;
            let stored = self
                .store
                .key(&key_id)
                .await
                .map_err(|e| err(&k.entry, "key_id", e.to_string()))?;
            match stored {
                Some((record, materials)) => {
                    check_existing_key(&k.entry, &planned, &record, &materials)?;
                    kept += 1;
                    key_homes.insert(key_id, (account, k.region.clone(), Some(record)));
                }
                None => {
                    key_homes.insert(key_id, (account, k.region.clone(), None));
                    steps.push(Step::Key(Box::new(planned)));
                }
            }
        }

        // Aliases.
        let mut seen_aliases = HashSet::new();
        for a in &seed.aliases {
            let account = resolve_account(&a.entry, &a.account)?;
            crate::aliases::validate_alias_name(&a.name)
                .map_err(|e| err(&a.entry, "name", msg(e)))?;
            if !seen_aliases.insert((account.clone(), a.region.clone(), a.name.clone())) {
                return Err(err(
                    &a.entry,
                    "name",
                    format!("alias {} is listed twice", a.name),
                ));
            }
            let target = Uuid::parse_str(&a.target_key_id)
                .map_err(|_| {
                    err(
                        &a.entry,
                        "target_key_id",
                        format!("`{}` is not a key id (a UUID)", a.target_key_id),
                    )
                })?
                .hyphenated()
                .to_string();
            if self
                .store
                .alias(&account, &a.region, &a.name)
                .await
                .map_err(|e| err(&a.entry, "name", e.to_string()))?
                .is_some()
            {
                kept += 1;
                continue;
            }
            let home = match key_homes.get(&target) {
                Some((acct, region, record)) => {
                    Some((acct.clone(), region.clone(), record.clone()))
                }
                None => self
                    .store
                    .key(&target)
                    .await
                    .map_err(|e| err(&a.entry, "target_key_id", e.to_string()))?
                    .map(|(r, _)| (r.account_id.clone(), r.region.clone(), Some(r))),
            };
            match home {
                Some((acct, region, record)) if acct == account && region == a.region => {
                    if let Some(record) = record {
                        crate::key_state::check(crate::key_state::Op::Manage, &record)
                            .map_err(|e| err(&a.entry, "target_key_id", msg(e)))?;
                    }
                }
                _ => {
                    return Err(err(
                        &a.entry,
                        "target_key_id",
                        format!(
                            "no key {target} in account {account}, region {} (neither in the seed nor in Trent)",
                            a.region
                        ),
                    ));
                }
            }
            steps.push(Step::Alias {
                entry: a.entry.clone(),
                account,
                region: a.region.clone(),
                name: a.name.clone(),
                target,
            });
        }
        Ok((steps, kept))
    }

    /// The key a seed entry describes, checked (no store access).
    fn plan_key(
        &self,
        k: &SeedKey,
        account: &str,
        uuid: Uuid,
        key_id: &str,
    ) -> Result<PlannedKey, SeedError> {
        let e = &k.entry;
        let key_spec = match &k.key_spec {
            Some(s) => KeySpec::parse(s).ok_or_else(|| {
                err(
                    e,
                    "key_spec",
                    format!("`{s}` is not one of {}", KeySpec::allowed()),
                )
            })?,
            None => KeySpec::SymmetricDefault,
        };
        let is_hmac = matches!(
            key_spec,
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512
        );
        let key_usage = match &k.key_usage {
            Some(u) => KeyUsage::parse(u).ok_or_else(|| {
                err(
                    e,
                    "key_usage",
                    format!("`{u}` is not one of {}", KeyUsage::allowed()),
                )
            })?,
            None if is_hmac => KeyUsage::GenerateVerifyMac,
            None => KeyUsage::EncryptDecrypt,
        };
        if !key_spec.allowed_usages().contains(&key_usage) {
            return Err(err(
                e,
                "key_usage",
                format!(
                    "{} is not a usage of {} keys",
                    key_usage.as_str(),
                    key_spec.as_str()
                ),
            ));
        }
        let description = k.description.clone().unwrap_or_default();
        if description.chars().count() > 8192 {
            return Err(err(e, "description", "at most 8192 characters"));
        }
        if let Some(p) = &k.policy {
            crate::policies::check_key_policy(p).map_err(|x| err(e, "policy", msg(x)))?;
        }
        crate::tags::validate_tags(&k.tags).map_err(|x| err(e, "tags", msg(x)))?;
        // Given material is imported material; a spec AWS imports none into (ML-KEM) is
        // generated only.
        if !k.backing_keys.is_empty() && !crate::import::importable_spec(key_spec) {
            return Err(err(
                e,
                "backing_keys[0]",
                format!(
                    "{} keys cannot be given material (it cannot be imported into them): leave out backing_keys and private_key_pem to have it generated",
                    key_spec.as_str()
                ),
            ));
        }
        let mut materials = Vec::new();
        for (i, raw) in k.backing_keys.iter().enumerate() {
            let (material, id_bytes) = crate::import::parse_imported(key_spec, key_usage, raw)
                .map_err(|x| err(e, format!("backing_keys[{i}]"), msg(x)))?;
            let id = imported_material_id(key_id, &id_bytes);
            if materials.iter().any(|(m, _, _)| *m == id) {
                return Err(err(
                    e,
                    format!("backing_keys[{i}]"),
                    "the same material is listed twice",
                ));
            }
            materials.push((id, raw.clone(), material));
        }
        let mut tags = k.tags.clone();
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        let record = KeyRecord {
            key_id: key_id.to_string(),
            account_id: account.to_string(),
            region: k.region.clone(),
            created_ms: self.clock.now_ms(),
            description,
            key_spec,
            key_usage,
            origin: Origin::AwsKms,
            state: KeyState::Enabled,
            policy: k
                .policy
                .clone()
                .unwrap_or_else(|| crate::policies::default_key_policy(account)),
            // Bound when inserted, once the seed's users and roles exist.
            policy_principals: Default::default(),
            tags,
            current_material: materials
                .last()
                .map(|(id, _, _)| *id)
                .unwrap_or(MaterialId([0; 32])),
            multi_region: false,
            lifecycle: Default::default(),
            custody: Default::default(),
        };
        Ok(PlannedKey {
            entry: k.entry.clone(),
            record,
            uuid,
            materials,
        })
    }

    async fn apply_step(&self, step: Step) -> Result<(), SeedError> {
        let failed = |entry: &str, e: &dyn std::fmt::Display| {
            err(entry, "-", format!("could not be applied: {e}"))
        };
        match step {
            Step::Account { id, root } => {
                let entry = format!("account {id}");
                match root {
                    Some((akid, secret)) => self
                        .ensure_account(&id, &akid, &secret)
                        .await
                        .map_err(|e| failed(&entry, &e)),
                    None => self
                        .operator_create_account(Some(&id))
                        .await
                        .map(|_| ())
                        .map_err(|e| failed(&entry, &e)),
                }
            }
            Step::User {
                entry,
                account,
                name,
                path,
            } => self
                .iam_create_user(&operator(&account), &name, Some(&path), Vec::new())
                .await
                .map(|_| ())
                .map_err(|e| failed(&entry, &e)),
            Step::UserPolicy {
                entry,
                account,
                user,
                name,
                document,
            } => self
                .iam_put_inline_policy(&operator(&account), Entity::User, &user, &name, &document)
                .await
                .map_err(|e| failed(&entry, &e)),
            Step::AccessKey {
                entry,
                account,
                user_arn,
                access_key_id,
                secret,
            } => {
                let _guard = self.writes.lock().await;
                self.put_long_term_key(&account, &user_arn, &access_key_id, &secret)
                    .await
                    .map_err(|e| failed(&entry, &e))
            }
            Step::Key(planned) => {
                let entry = planned.entry.clone();
                self.insert_seed_key(*planned)
                    .await
                    .map_err(|e| failed(&entry, &e))
            }
            Step::Alias {
                entry,
                account,
                region,
                name,
                target,
            } => self
                .insert_seed_alias(&account, &region, &name, &target)
                .await
                .map_err(|e| failed(&entry, &e)),
        }
    }

    /// Stores a seed key with its materials (generated when none are given) and caches it.
    async fn insert_seed_key(&self, planned: PlannedKey) -> Result<(), KmsError> {
        let PlannedKey {
            mut record,
            uuid,
            mut materials,
            ..
        } = planned;
        if materials.is_empty() {
            let (spec, usage) = (record.key_spec, record.key_usage);
            let (raw, material) = tokio::task::spawn_blocking(move || {
                crate::material::generate_material(spec, usage)
            })
            .await
            .map_err(|e| KmsError::Internal(e.to_string()))??;
            let id = MaterialId::random()?;
            record.current_material = id;
            materials.push((id, raw, material));
        }
        let now = self.clock.now_ms();
        let mut wrapped = Vec::new();
        for (id, raw, _) in &materials {
            wrapped.push(StoredMaterial {
                key_id: record.key_id.clone(),
                material_id: *id,
                wrapped: self.root.wrap(raw, &material_aad(&record.key_id, id))?,
                created_ms: now,
            });
        }
        record.policy_principals =
            self.bind_policy_principals(&record.policy, trent_policy::PolicyKind::KeyPolicy);
        let _guard = self.writes.lock().await;
        let (current, older) = wrapped
            .split_last()
            .ok_or_else(|| KmsError::Internal("seed key without material".into()))?;
        self.store.insert_key(&record, current).await?;
        for m in older {
            self.store.add_material(&record, m, None).await?;
        }
        self.grants.init_new_key(&record.key_id);
        self.cache.set_key_aliases(&record.key_id, Vec::new());
        let parsed = materials
            .into_iter()
            .map(|(id, _, m)| (id, Arc::new(m)))
            .collect();
        self.cache
            .put_key(Arc::new(LoadedKey::new(record, *uuid.as_bytes(), parsed)));
        Ok(())
    }
}

impl Kms {
    /// Stores a seed alias (already validated: the name, and a target of the same account and
    /// region in a state that allows it) and caches it. Not through CreateAlias: the seed is
    /// not subject to request-rate quotas, and a throttled alias would leave the seed half
    /// applied.
    async fn insert_seed_alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
        target: &str,
    ) -> Result<(), KmsError> {
        let now = self.clock.now_ms();
        let record = crate::model::AliasRecord {
            account_id: account.to_string(),
            region: region.to_string(),
            alias_name: name.to_string(),
            target_key_id: target.to_string(),
            created_ms: now,
            updated_ms: now,
        };
        let _guard = self.writes.lock().await;
        self.store.insert_alias(&record).await?;
        self.cache.put_alias(account, region, name, target);
        self.cache.change_key_alias(target, name, true);
        Ok(())
    }
}

/// The account root, as the operator acts for it (IAM's root is allowed everything).
fn operator(account: &str) -> Caller {
    Caller::root(account, "trent-seed", "us-east-1")
}

/// A domain error's message without its variant name.
fn msg(e: KmsError) -> String {
    e.to_string()
}

/// A seed key that exists must be the key the seed means: same account, region, spec and
/// usage, and holding every backing material the seed names.
fn check_existing_key(
    entry: &str,
    planned: &PlannedKey,
    record: &KeyRecord,
    materials: &[StoredMaterial],
) -> Result<(), SeedError> {
    let want = &planned.record;
    let differs = |field: &str, have: &str, seed: &str| {
        err(
            entry,
            field,
            format!(
                "key {} exists with {field} {have}, the seed says {seed}: the seed never changes an \
                 existing key (change the seed, or delete the key or the data directory)",
                record.key_id
            ),
        )
    };
    if record.account_id != want.account_id {
        return Err(differs("account", &record.account_id, &want.account_id));
    }
    if record.region != want.region {
        return Err(differs("region", &record.region, &want.region));
    }
    if record.key_spec != want.key_spec {
        return Err(differs(
            "key_spec",
            record.key_spec.as_str(),
            want.key_spec.as_str(),
        ));
    }
    if record.key_usage != want.key_usage {
        return Err(differs(
            "key_usage",
            record.key_usage.as_str(),
            want.key_usage.as_str(),
        ));
    }
    for (i, (id, _, _)) in planned.materials.iter().enumerate() {
        if !materials.iter().any(|m| m.material_id == *id) {
            return Err(err(
                entry,
                format!("backing_keys[{i}]"),
                format!(
                    "key {} exists without this material: the seed never changes an existing key's \
                     material (change the seed, or delete the key or the data directory)",
                    record.key_id
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::memory_store::MemoryStore;

    const KEY: &str = "bc436485-5092-42b8-92a3-0aa8b93536dc";
    const OTHER: &str = "11111111-2222-4333-8444-555555555555";

    async fn kms() -> Kms {
        let (root, _) = trent_crypto::RootKey::generate().unwrap();
        Kms::open(
            Arc::new(MemoryStore::default()),
            root,
            Arc::new(SystemClock::default()),
        )
        .await
        .unwrap()
    }

    fn key(entry: &str, id: &str, spec: Option<&str>) -> SeedKey {
        SeedKey {
            entry: entry.into(),
            account: None,
            region: "us-east-1".into(),
            key_id: id.into(),
            key_spec: spec.map(str::to_string),
            key_usage: None,
            description: None,
            policy: None,
            tags: Vec::new(),
            backing_keys: vec![Zeroizing::new(vec![7u8; 32])],
        }
    }

    fn seed(keys: Vec<SeedKey>) -> Seed {
        Seed {
            accounts: vec![SeedAccount {
                entry: "account[0]".into(),
                id: "111122223333".into(),
                root_access_key: None,
            }],
            keys,
            aliases: vec![SeedAlias {
                entry: "alias[0]".into(),
                account: None,
                region: "us-east-1".into(),
                name: "alias/dev".into(),
                target_key_id: KEY.into(),
            }],
            ..Seed::default()
        }
    }

    #[tokio::test]
    async fn applying_twice_creates_once_and_a_conflict_changes_nothing() {
        let kms = kms().await;
        let first = kms
            .apply_seed(&seed(vec![key("key[0]", KEY, None)]))
            .await
            .unwrap();
        assert_eq!(first.created.len(), 3, "{:?}", first.created);
        let again = kms
            .apply_seed(&seed(vec![key("key[0]", KEY, None)]))
            .await
            .unwrap();
        assert!(again.created.is_empty());
        assert_eq!(again.kept, 3);

        // Another spec for the existing key, and a new key: refused, the new key not made.
        let e = kms
            .apply_seed(&seed(vec![
                key("key[0]", OTHER, None),
                key("key[1]", KEY, Some("HMAC_256")),
            ]))
            .await
            .unwrap_err();
        assert_eq!((e.entry.as_str(), e.field.as_str()), ("key[1]", "key_spec"));
        assert!(kms.store.key(OTHER).await.unwrap().is_none());

        // Other material for the existing key is refused too.
        let mut changed = key("key[0]", KEY, None);
        changed.backing_keys = vec![Zeroizing::new(vec![8u8; 32])];
        let e = kms.apply_seed(&seed(vec![changed])).await.unwrap_err();
        assert_eq!(e.field, "backing_keys[0]");
    }

    #[tokio::test]
    async fn many_aliases_on_one_key_are_all_created() {
        let kms = kms().await;
        let mut s = seed(vec![key("key[0]", KEY, None)]);
        s.aliases = (0..12)
            .map(|i| SeedAlias {
                entry: format!("alias[{i}]"),
                account: None,
                region: "us-east-1".into(),
                name: format!("alias/a{i}"),
                target_key_id: KEY.into(),
            })
            .collect();
        let report = kms.apply_seed(&s).await.unwrap();
        assert_eq!(report.created.len(), 14, "{:?}", report.created);
        let caller = Caller::root("111122223333", "x", "us-east-1");
        let key = kms
            .describe_key(&caller, Some("alias/a11"), &[])
            .await
            .unwrap();
        assert_eq!(key.key_id, KEY);
    }

    #[tokio::test]
    async fn entries_must_resolve_to_one_account() {
        let kms = kms().await;
        kms.operator_create_account(Some("444455556666"))
            .await
            .unwrap();
        let e = kms
            .apply_seed(&seed(vec![key("key[0]", KEY, None)]))
            .await
            .unwrap_err();
        assert_eq!(e.field, "account");
        assert!(e.message.contains("2 accounts"), "{e}");
        let mut s = seed(vec![key("key[0]", KEY, None)]);
        s.default_account = Some("999999999999".into());
        let e = kms.apply_seed(&s).await.unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");
        assert!(kms.store.key(KEY).await.unwrap().is_none());
    }
}
