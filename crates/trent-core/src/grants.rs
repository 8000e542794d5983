//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, grant tokens,
//! and grants as a source of permission.
//!
//! A key's grants are cached beside the key (loaded with it, written through), so checking them
//! costs no database round trip; and they are consulted only when the policies alone would deny.
//! Retired and revoked grants stay in storage as tombstones.
//!
//! **Grant tokens** are self-contained: the grant's contents sealed with AES-256-GCM under a key
//! derived from the root key (`derive_subkey("grant-tokens")`). Any node sharing the root key can
//! open a token and use the grant at once, even before it has seen the grant in the database; a
//! grant the node knows as retired is refused. The token reveals nothing about the grant to
//! anyone without the root key, and cannot be forged.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use trent_crypto::spec::KeyUsage;
use trent_crypto::{SymmetricKey, random};

use crate::authz::Resource;
use crate::caller::{Caller, Identity};
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::model::{GrantRow, KeyRecord};
use crate::service::Kms;
use crate::validate;

/// Every grant operation AWS defines.
pub const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
];

/// Operations whose requests carry an encryption context (grant constraints apply to them).
const CONTEXT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "CreateGrant",
];

/// Grants per key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

/// Encryption-context constraints of a grant.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
}

impl GrantConstraints {
    /// Whether a request's encryption context satisfies the constraints.
    pub fn allows(&self, context: &BTreeMap<String, String>) -> bool {
        self.encryption_context_equals
            .as_ref()
            .is_none_or(|eq| eq == context)
            && self
                .encryption_context_subset
                .as_ref()
                .is_none_or(|sub| sub.iter().all(|(k, v)| context.get(k) == Some(v)))
    }

    /// Whether `self` (a child grant's constraints) is at least as strict as `parent`'s.
    fn at_least_as_strict_as(&self, parent: &GrantConstraints) -> bool {
        match (
            &parent.encryption_context_equals,
            &parent.encryption_context_subset,
        ) {
            (None, None) => true,
            (Some(eq), _) => self.encryption_context_equals.as_ref() == Some(eq),
            (None, Some(sub)) => {
                let covers =
                    |m: &BTreeMap<String, String>| sub.iter().all(|(k, v)| m.get(k) == Some(v));
                self.encryption_context_equals.as_ref().is_some_and(covers)
                    || self.encryption_context_subset.as_ref().is_some_and(covers)
            }
        }
    }

    fn kind(&self) -> Option<&'static str> {
        if self.encryption_context_equals.is_some() {
            Some("EncryptionContextEquals")
        } else if self.encryption_context_subset.is_some() {
            Some("EncryptionContextSubset")
        } else {
            None
        }
    }

    fn context(&self) -> Option<&BTreeMap<String, String>> {
        self.encryption_context_equals
            .as_ref()
            .or(self.encryption_context_subset.as_ref())
    }
}

/// A grant: its stored form (also the sealed payload of its token).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub v: u32,
    pub grant_id: String,
    pub key_id: String,
    pub key_account: String,
    pub key_region: String,
    #[serde(default)]
    pub name: Option<String>,
    pub grantee_principal: String,
    #[serde(default)]
    pub retiring_principal: Option<String>,
    pub operations: Vec<String>,
    #[serde(default)]
    pub constraints: Option<GrantConstraints>,
    pub issuing_account: String,
    pub created_ms: i64,
}

/// How a grant's grantee relates to a caller.
#[derive(PartialEq, Eq)]
enum GranteeMatch {
    /// The grantee names the caller (or the role of the caller's session).
    Direct,
    /// The grantee is the caller's account: its principals still need IAM permission.
    Account,
    No,
}

impl Grant {
    fn grantee_match(&self, caller: &Caller) -> GranteeMatch {
        let g = self.grantee_principal.as_str();
        if g == caller.principal_arn
            || (matches!(caller.identity, Identity::AssumedRole { .. })
                && g == caller.principal_role_arn())
        {
            return GranteeMatch::Direct;
        }
        if g == caller.account || g == format!("arn:aws:iam::{}:root", caller.account) {
            return if matches!(caller.identity, Identity::Root) {
                GranteeMatch::Direct
            } else {
                GranteeMatch::Account
            };
        }
        GranteeMatch::No
    }

    fn allows(&self, operation: &str, context: &BTreeMap<String, String>) -> bool {
        self.operations.iter().any(|o| o == operation)
            && (!CONTEXT_OPERATIONS.contains(&operation)
                || self.constraints.as_ref().is_none_or(|c| c.allows(context)))
    }
}

/// The state of one grant as this node knows it.
#[derive(Clone)]
enum Known {
    Active(Arc<Grant>),
    Retired,
}

/// One key's grants by grant id, and how many are active (the quota is checked against the
/// count, never by scanning).
#[derive(Default)]
struct KeyGrants {
    grants: HashMap<String, Known>,
    active: usize,
}

/// Grants by key id (loaded with the key). Each key's grants sit behind their own lock, so a
/// change touches one entry instead of copying the key's grant set.
#[derive(Default)]
pub struct GrantCache {
    by_key: RwLock<HashMap<String, Arc<RwLock<KeyGrants>>>>,
    /// Bumped by every grant change, so a load that raced with one can tell.
    epoch: std::sync::atomic::AtomicU64,
}

impl GrantCache {
    fn entry(&self, key_id: &str) -> Option<Arc<RwLock<KeyGrants>>> {
        self.by_key.read().ok()?.get(key_id).cloned()
    }

    /// Runs `f` over the key's grants (empty when none are loaded).
    fn read<T>(&self, key_id: &str, f: impl FnOnce(&HashMap<String, Known>) -> T) -> T {
        match self.entry(key_id) {
            Some(e) => match e.read() {
                Ok(g) => f(&g.grants),
                Err(_) => f(&HashMap::new()),
            },
            None => f(&HashMap::new()),
        }
    }

    fn known(&self, key_id: &str, grant_id: &str) -> Option<Known> {
        self.read(key_id, |g| g.get(grant_id).cloned())
    }

    fn active_count(&self, key_id: &str) -> usize {
        self.entry(key_id)
            .and_then(|e| e.read().ok().map(|g| g.active))
            .unwrap_or(0)
    }

    /// Drops a deleted key's grants.
    pub(crate) fn forget(&self, key_id: &str) {
        if let Ok(mut m) = self.by_key.write() {
            m.remove(key_id);
        }
    }

    pub(crate) fn is_loaded(&self, key_id: &str) -> bool {
        self.by_key.read().is_ok_and(|m| m.contains_key(key_id))
    }

    /// The update epoch; read it before reading grant rows from the store and pass it to
    /// [`GrantCache::load`].
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Installs a key's grants read from the store, unless another load got there first or a
    /// grant changed since `epoch` (the rows may then be stale). Returns whether the caller may
    /// stop: `false` means read the rows again.
    pub(crate) fn load(&self, key_id: &str, rows: Vec<GrantRow>, epoch: u64) -> bool {
        let mut grants = HashMap::new();
        for row in rows {
            let known = match (row.retired_ms, serde_json::from_str::<Grant>(&row.body)) {
                (None, Ok(g)) => Known::Active(Arc::new(g)),
                _ => Known::Retired,
            };
            grants.insert(row.grant_id, known);
        }
        let active = grants
            .values()
            .filter(|k| matches!(k, Known::Active(_)))
            .count();
        let Ok(mut m) = self.by_key.write() else {
            return true;
        };
        if m.contains_key(key_id) {
            return true;
        }
        if self.epoch() != epoch {
            return false;
        }
        m.insert(
            key_id.to_string(),
            Arc::new(RwLock::new(KeyGrants { grants, active })),
        );
        true
    }

    /// Marks a just-created key as having no grants (nothing can be stale for it).
    pub(crate) fn init_new_key(&self, key_id: &str) {
        if let Ok(mut m) = self.by_key.write() {
            m.entry(key_id.to_string()).or_default();
        }
    }

    /// Records a grant change. Keys whose grants are not loaded are left alone: their next
    /// load reads the store, which already has the change.
    fn update(&self, key_id: &str, grant_id: &str, known: Known) {
        // Under the map's write lock, so a concurrent load either sees the new epoch or is
        // already installed (and is then updated here).
        let Ok(m) = self.by_key.write() else { return };
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let Some(entry) = m.get(key_id).cloned() else {
            return;
        };
        drop(m);
        if let Ok(mut g) = entry.write() {
            let is_active = matches!(known, Known::Active(_));
            let was_active = matches!(
                g.grants.insert(grant_id.to_string(), known),
                Some(Known::Active(_))
            );
            g.active = g.active + usize::from(is_active) - usize::from(was_active);
        }
    }

    fn active(&self, key_id: &str) -> Vec<Arc<Grant>> {
        self.read(key_id, |g| {
            g.values()
                .filter_map(|k| match k {
                    Known::Active(g) => Some(g.clone()),
                    Known::Retired => None,
                })
                .collect()
        })
    }
}

/// CreateGrant input.
#[derive(Debug, Default, Clone)]
pub struct CreateGrantInput {
    pub key_id: Option<String>,
    pub grantee_principal: Option<String>,
    pub retiring_principal: Option<String>,
    pub operations: Option<Vec<String>>,
    pub constraints: Option<GrantConstraints>,
    pub grant_tokens: Vec<String>,
    pub name: Option<String>,
    pub dry_run: bool,
}

/// ListGrants input.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListGrantsInput<'a> {
    pub key_id: Option<&'a str>,
    pub limit: Option<i64>,
    pub marker: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub grantee_principal: Option<&'a str>,
    pub grant_tokens: &'a [String],
}

/// A page of grants.
pub struct GrantList {
    pub grants: Vec<Arc<Grant>>,
    pub next_marker: Option<String>,
}

impl Kms {
    fn token_key(&self) -> KmsResult<SymmetricKey> {
        Ok(self.root.derive_subkey("grant-tokens")?)
    }

    fn seal_token(&self, grant: &Grant) -> KmsResult<String> {
        let payload = serde_json::to_vec(grant).map_err(|e| KmsError::Internal(e.to_string()))?;
        let nonce = random::array::<12>()?;
        let sealed = self
            .token_key()?
            .seal(nonce, b"trent:grant-token:v1", &payload);
        let mut out = vec![1u8];
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    fn open_token(&self, token: &str) -> KmsResult<Grant> {
        let invalid = || KmsError::InvalidGrantToken("Invalid grant token".into());
        let bytes = STANDARD.decode(token.as_bytes()).map_err(|_| invalid())?;
        let (&version, rest) = bytes.split_first().ok_or_else(invalid)?;
        if version != 1 || rest.len() < 12 {
            return Err(invalid());
        }
        let (nonce, sealed) = rest.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| invalid())?;
        let payload = self
            .token_key()?
            .open(nonce, b"trent:grant-token:v1", sealed)
            .ok_or_else(invalid)?;
        serde_json::from_slice(&payload).map_err(|_| invalid())
    }

    /// Validates `GrantTokens` and returns the caller carrying the grants they name (borrowed
    /// unchanged when there are none, the common case on the hot path).
    pub(crate) fn with_grant_tokens<'a>(
        &self,
        caller: &'a Caller,
        tokens: &[String],
    ) -> KmsResult<std::borrow::Cow<'a, Caller>> {
        validate::grant_tokens(tokens)?;
        if tokens.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(caller));
        }
        let mut caller = caller.clone();
        for t in tokens {
            let grant = self.open_token(t)?;
            caller.token_grants.push(Arc::new(grant));
        }
        Ok(std::borrow::Cow::Owned(caller))
    }

    /// Whether a grant (cached, or carried by a grant token) lets `caller` perform `operation`
    /// on `key` with this encryption context. `iam_allows` answers for account-grantees.
    pub(crate) fn grants_allow(
        &self,
        caller: &Caller,
        key: &KeyRecord,
        operation: &str,
        context: &BTreeMap<String, String>,
        iam_allows: &dyn Fn() -> bool,
    ) -> bool {
        let usable = |g: &Grant| {
            g.allows(operation, context)
                && match g.grantee_match(caller) {
                    GranteeMatch::Direct => true,
                    GranteeMatch::Account => iam_allows(),
                    GranteeMatch::No => false,
                }
        };
        let cached = self.grants.read(&key.key_id, |known| {
            known
                .values()
                .any(|k| matches!(k, Known::Active(g) if usable(g)))
        });
        cached
            || self
                .usable_token_grants(caller, &key.key_id)
                .iter()
                .any(|g| usable(g))
    }

    /// The grants the caller's grant tokens carry for `key_id`, less any this node knows to be
    /// retired or revoked. Every use of token grants goes through here.
    fn usable_token_grants(&self, caller: &Caller, key_id: &str) -> Vec<Arc<Grant>> {
        caller
            .token_grants
            .iter()
            .filter(|g| {
                g.key_id == key_id
                    && !matches!(self.grants.known(key_id, &g.grant_id), Some(Known::Retired))
            })
            .cloned()
            .collect()
    }

    pub async fn create_grant(
        &self,
        caller: &Caller,
        input: CreateGrantInput,
    ) -> KmsResult<(String, String)> {
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let grantee = validate::required("granteePrincipal", input.grantee_principal.as_deref())?;
        let operations = validate::required("operations", input.operations.clone())?;
        validate::length("granteePrincipal", grantee, 1, 256)?;
        check_principal(grantee)?;
        if let Some(r) = &input.retiring_principal {
            validate::length("retiringPrincipal", r, 1, 256)?;
            check_principal(r)?;
        }
        if let Some(n) = &input.name {
            validate::length("name", n, 1, 256)?;
            validate::pattern("name", n, "^[a-zA-Z0-9:/_-]+$", |c| {
                c.is_ascii_alphanumeric() || ":/_-".contains(c)
            })?;
        }
        if operations.is_empty() {
            return Err(KmsError::Validation("1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1".into()));
        }
        for op in &operations {
            if !GRANT_OPERATIONS.contains(&op.as_str()) {
                return Err(KmsError::Validation(format!(
                    "1 validation error detected: Value '[{op}]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                    GRANT_OPERATIONS.join(", ")
                )));
            }
        }
        let caller = self.with_grant_tokens(caller, &input.grant_tokens)?;
        let key = self.resolve(&caller, key_id, KeyIdForms::KeyOnly).await?;
        check_operations_fit_key(&key.record, &operations, input.constraints.as_ref())?;

        let constraints = input.constraints.clone().filter(|c| c.kind().is_some());
        let mut context = trent_policy::ConditionContext::new();
        context.insert("kms:GranteePrincipal", grantee);
        if let Some(r) = &input.retiring_principal {
            context.insert("kms:RetiringPrincipal", r.clone());
        }
        context.insert_multi("kms:GrantOperations", operations.iter().cloned());
        context.insert("kms:GrantIsForAWSResource", "false");
        let constraint_context = constraints
            .as_ref()
            .and_then(|c| c.context().cloned())
            .unwrap_or_default();
        if let Some(c) = &constraints {
            if let Some(kind) = c.kind() {
                context.insert("kms:GrantConstraintType", kind);
            }
            for (k, v) in &constraint_context {
                context.insert(&format!("kms:EncryptionContext:{k}"), v.clone());
            }
            if !constraint_context.is_empty() {
                context.insert_multi(
                    "kms:EncryptionContextKeys",
                    constraint_context.keys().cloned(),
                );
            }
        }
        // Policy first; failing that, a grant holding CreateGrant may delegate a subset of itself.
        if let Err(denied) = self.authorize_with(
            &caller,
            "kms:CreateGrant",
            Resource::Key(&key.record),
            context,
        ) {
            let child = constraints.clone().unwrap_or_default();
            let parents = self
                .grants
                .active(&key.record.key_id)
                .into_iter()
                .chain(self.usable_token_grants(&caller, &key.record.key_id));
            let delegated = parents.into_iter().any(|p| {
                p.grantee_match(&caller) == GranteeMatch::Direct
                    && p.operations.iter().any(|o| o == "CreateGrant")
                    && operations.iter().all(|o| p.operations.contains(o))
                    && p.constraints
                        .as_ref()
                        .is_none_or(|pc| child.at_least_as_strict_as(pc))
            });
            if !delegated
                || matches!(&denied, KmsError::AccessDenied(m) if m.contains("explicit deny"))
            {
                return Err(denied);
            }
        }
        crate::keys::require_usable(&key.record)?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }

        let _guard = self.writes.lock().await;
        let now = self.clock.now_ms();
        let mut sorted_ops = operations.clone();
        sorted_ops.sort();
        sorted_ops.dedup();
        if let Some(name) = &input.name {
            let same = self
                .grants
                .active(&key.record.key_id)
                .into_iter()
                .find(|g| {
                    g.name.as_deref() == Some(name.as_str())
                        && g.grantee_principal == grantee
                        && g.retiring_principal == input.retiring_principal
                        && g.operations == sorted_ops
                        && g.constraints == constraints
                });
            if let Some(existing) = same {
                return Ok((existing.grant_id.clone(), self.seal_token(&existing)?));
            }
        }
        if self.grants.active_count(&key.record.key_id) >= MAX_GRANTS_PER_KEY {
            return Err(KmsError::LimitExceeded(format!(
                "The request was rejected because a quota was exceeded: grants per key ({MAX_GRANTS_PER_KEY})."
            )));
        }
        let grant = Grant {
            v: 1,
            grant_id: hex::encode(random::array::<32>()?),
            key_id: key.record.key_id.clone(),
            key_account: key.record.account_id.clone(),
            key_region: key.record.region.clone(),
            name: input.name.clone(),
            grantee_principal: grantee.to_string(),
            retiring_principal: input.retiring_principal.clone(),
            operations: sorted_ops,
            constraints,
            issuing_account: caller.account.clone(),
            created_ms: now,
        };
        let body = serde_json::to_string(&grant).map_err(|e| KmsError::Internal(e.to_string()))?;
        self.store
            .insert_grant(&GrantRow {
                grant_id: grant.grant_id.clone(),
                key_id: grant.key_id.clone(),
                retiring_principal: grant.retiring_principal.clone(),
                body,
                retired_ms: None,
            })
            .await?;
        let token = self.seal_token(&grant)?;
        let id = grant.grant_id.clone();
        let key_id = grant.key_id.clone();
        self.grants
            .update(&key_id, &id, Known::Active(Arc::new(grant)));
        Ok((id, token))
    }

    pub async fn list_grants(
        &self,
        caller: &Caller,
        input: ListGrantsInput<'_>,
    ) -> KmsResult<GrantList> {
        let ListGrantsInput {
            key_id,
            limit,
            marker,
            grant_id,
            grantee_principal,
            grant_tokens,
        } = input;
        let key_id = validate::required("keyId", key_id)?;
        let limit = validate::limit(limit, 1000, 50)?;
        let caller = self.with_grant_tokens(caller, grant_tokens)?;
        let key = self.resolve(&caller, key_id, KeyIdForms::KeyOnly).await?;
        let mut context = trent_policy::ConditionContext::new();
        context.insert("kms:GrantIsForAWSResource", "false");
        self.authorize_with(
            &caller,
            "kms:ListGrants",
            Resource::Key(&key.record),
            context,
        )?;
        let mut grants: Vec<Arc<Grant>> = self
            .grants
            .active(&key.record.key_id)
            .into_iter()
            .filter(|g| {
                grant_id.is_none_or(|id| g.grant_id == id)
                    && grantee_principal.is_none_or(|p| g.grantee_principal == p)
            })
            .collect();
        grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        page(grants, marker, limit)
    }

    pub async fn list_retirable_grants(
        &self,
        caller: &Caller,
        retiring_principal: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> KmsResult<GrantList> {
        let principal = validate::required("retiringPrincipal", retiring_principal)?;
        validate::length("retiringPrincipal", principal, 1, 256)?;
        let limit = validate::limit(limit, 1000, 50)?;
        self.authorize(caller, "kms:ListRetirableGrants", Resource::Any)?;
        let principal_account = if crate::ids::is_account_id(principal) {
            principal
        } else {
            principal.split(':').nth(4).unwrap_or_default()
        };
        if principal_account != caller.account {
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:ListRetirableGrants for a retiring principal of another account",
                caller.principal_arn
            )));
        }
        let rows = self.store.grants_by_retiring_principal(principal).await?;
        let grants: Vec<Arc<Grant>> = rows
            .iter()
            .filter_map(|r| serde_json::from_str(&r.body).ok().map(Arc::new))
            .collect();
        page(grants, marker, limit)
    }

    /// RetireGrant by token, or by key id and grant id. Not controlled by key policy: the
    /// grant says who may retire it.
    pub async fn retire_grant(
        &self,
        caller: &Caller,
        grant_token: Option<&str>,
        key_id: Option<&str>,
        grant_id: Option<&str>,
        dry_run: bool,
    ) -> KmsResult<()> {
        let grant: Arc<Grant> = match (grant_token, key_id, grant_id) {
            (Some(token), _, _) => {
                validate::length("grantToken", token, 1, 8192)?;
                let g = self.open_token(token)?;
                self.load_key(&g.key_id).await?;
                match self.grants.known(&g.key_id, &g.grant_id) {
                    Some(Known::Retired) => {
                        return Err(KmsError::NotFound(format!(
                            "Grant {} not found",
                            g.grant_id
                        )));
                    }
                    _ => Arc::new(g),
                }
            }
            (None, Some(k), Some(id)) => {
                let key = self.resolve(caller, k, KeyIdForms::KeyOnly).await?;
                self.active_grant(&key.record.key_id, id)?
            }
            _ => {
                return Err(KmsError::Validation(
                    "Either GrantToken, or both KeyId and GrantId, must be specified.".into(),
                ));
            }
        };
        let retiring = grant
            .retiring_principal
            .as_deref()
            .is_some_and(|r| r == caller.principal_arn || r == caller.principal_role_arn());
        let grantee = grant.grantee_match(caller) == GranteeMatch::Direct
            && grant.operations.iter().any(|o| o == "RetireGrant");
        let issuer = caller.account == grant.issuing_account
            && (matches!(caller.identity, Identity::Root)
                || self
                    .authorize(caller, "kms:RetireGrant", Resource::Any)
                    .is_ok());
        if !(retiring || grantee || issuer) {
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:RetireGrant on resource: {}",
                caller.principal_arn,
                crate::ids::key_arn(&grant.key_region, &grant.key_account, &grant.key_id)
            )));
        }
        if dry_run {
            return Err(KmsError::DryRunOperation);
        }
        self.end_grant(&grant).await
    }

    pub async fn revoke_grant(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        grant_id: Option<&str>,
        dry_run: bool,
    ) -> KmsResult<()> {
        let key_id = validate::required("keyId", key_id)?;
        let grant_id = validate::required("grantId", grant_id)?;
        validate::length("grantId", grant_id, 1, 128)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        let mut context = trent_policy::ConditionContext::new();
        context.insert("kms:GrantIsForAWSResource", "false");
        self.authorize_with(
            caller,
            "kms:RevokeGrant",
            Resource::Key(&key.record),
            context,
        )?;
        let grant = self.active_grant(&key.record.key_id, grant_id)?;
        if dry_run {
            return Err(KmsError::DryRunOperation);
        }
        self.end_grant(&grant).await
    }

    fn active_grant(&self, key_id: &str, grant_id: &str) -> KmsResult<Arc<Grant>> {
        match self.grants.known(key_id, grant_id) {
            Some(Known::Active(g)) => Ok(g.clone()),
            _ => Err(KmsError::NotFound(format!("Grant ID {grant_id} not found"))),
        }
    }

    async fn end_grant(&self, grant: &Grant) -> KmsResult<()> {
        let _guard = self.writes.lock().await;
        match self
            .store
            .retire_grant(&grant.grant_id, self.clock.now_ms())
            .await
        {
            Ok(()) | Err(crate::store::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        self.grants
            .update(&grant.key_id, &grant.grant_id, Known::Retired);
        Ok(())
    }
}

fn page(grants: Vec<Arc<Grant>>, marker: Option<&str>, limit: usize) -> KmsResult<GrantList> {
    let start = match marker {
        None => 0,
        Some(m) => {
            validate::length("marker", m, 1, 1024)?;
            grants
                .iter()
                .position(|g| g.grant_id.as_str() > m)
                .unwrap_or(grants.len())
        }
    };
    let rest = grants.get(start..).unwrap_or_default();
    let page: Vec<Arc<Grant>> = rest.iter().take(limit).cloned().collect();
    let next_marker = (rest.len() > limit)
        .then(|| page.last().map(|g| g.grant_id.clone()))
        .flatten();
    Ok(GrantList {
        grants: page,
        next_marker,
    })
}

/// Grantee and retiring principals: an account id or an IAM/STS ARN.
fn check_principal(p: &str) -> KmsResult<()> {
    let arn_ok = (p.starts_with("arn:aws:iam::") || p.starts_with("arn:aws:sts::"))
        && p.split(':').nth(4).is_some_and(crate::ids::is_account_id);
    if crate::ids::is_account_id(p) || arn_ok {
        Ok(())
    } else {
        Err(KmsError::InvalidArn(format!(
            "{p} is not a valid principal"
        )))
    }
}

/// Refuses operations the key cannot perform, and constraints where they mean nothing.
fn check_operations_fit_key(
    key: &KeyRecord,
    operations: &[String],
    constraints: Option<&GrantConstraints>,
) -> KmsResult<()> {
    use trent_crypto::spec::KeySpec;
    let allowed: &[&str] = match (key.key_usage, key.key_spec) {
        (KeyUsage::EncryptDecrypt, KeySpec::SymmetricDefault) => &[
            "Decrypt",
            "Encrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
            "CreateGrant",
            "RetireGrant",
            "DescribeKey",
        ],
        (KeyUsage::EncryptDecrypt, _) => &[
            "Decrypt",
            "Encrypt",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GetPublicKey",
            "CreateGrant",
            "RetireGrant",
            "DescribeKey",
        ],
        (KeyUsage::SignVerify, _) => &[
            "Sign",
            "Verify",
            "GetPublicKey",
            "CreateGrant",
            "RetireGrant",
            "DescribeKey",
        ],
        (KeyUsage::GenerateVerifyMac, _) => &[
            "GenerateMac",
            "VerifyMac",
            "CreateGrant",
            "RetireGrant",
            "DescribeKey",
        ],
        (KeyUsage::KeyAgreement, _) => &[
            "DeriveSharedSecret",
            "GetPublicKey",
            "CreateGrant",
            "RetireGrant",
            "DescribeKey",
        ],
        (KeyUsage::EncapsulateDecapsulate, _) => &[
            "Encapsulate",
            "Decapsulate",
            "GetPublicKey",
            "CreateGrant",
            "RetireGrant",
            "DescribeKey",
        ],
    };
    let bad: Vec<&str> = operations
        .iter()
        .map(String::as_str)
        .filter(|o| !allowed.contains(o))
        .collect();
    if !bad.is_empty() {
        return Err(KmsError::Validation(format!(
            "Grant operations {} are not valid for a KMS key with KeyUsage {} and KeySpec {}",
            bad.join(", "),
            trent_crypto::spec::WireEnum::as_str(key.key_usage),
            trent_crypto::spec::WireEnum::as_str(key.key_spec)
        )));
    }
    if constraints.is_some_and(|c| c.kind().is_some()) && key.key_spec != KeySpec::SymmetricDefault
    {
        return Err(KmsError::Validation(
            "Grant constraints are supported only for symmetric encryption KMS keys.".into(),
        ));
    }
    if constraints.is_some_and(|c| {
        c.encryption_context_equals.is_some() && c.encryption_context_subset.is_some()
    }) {
        return Err(KmsError::Validation(
            "A grant can have EncryptionContextEquals or EncryptionContextSubset, not both.".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn constraints_equals_and_subset() {
        let eq = GrantConstraints {
            encryption_context_equals: Some(map(&[("a", "1")])),
            encryption_context_subset: None,
        };
        assert!(eq.allows(&map(&[("a", "1")])));
        assert!(!eq.allows(&map(&[("a", "1"), ("b", "2")])));
        assert!(!eq.allows(&map(&[])));
        let sub = GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some(map(&[("a", "1")])),
        };
        assert!(sub.allows(&map(&[("a", "1"), ("b", "2")])));
        assert!(!sub.allows(&map(&[("a", "2")])));
        assert!(!sub.allows(&map(&[("A", "1")])), "keys are case-sensitive");
    }

    fn grant(id: &str) -> Known {
        Known::Active(Arc::new(Grant {
            v: 1,
            grant_id: id.into(),
            key_id: "k".into(),
            key_account: "111122223333".into(),
            key_region: "us-east-1".into(),
            name: None,
            grantee_principal: "111122223333".into(),
            retiring_principal: None,
            operations: vec!["Encrypt".into()],
            constraints: None,
            issuing_account: "111122223333".into(),
            created_ms: 0,
        }))
    }

    #[test]
    fn the_active_count_follows_creation_retirement_and_reloads() {
        let cache = GrantCache::default();
        assert!(cache.load("k", Vec::new(), cache.epoch()));
        cache.update("k", "g1", grant("g1"));
        cache.update("k", "g2", grant("g2"));
        cache.update("k", "g2", grant("g2"));
        assert_eq!(
            cache.active_count("k"),
            2,
            "re-adding an active grant does not double count"
        );
        cache.update("k", "g1", Known::Retired);
        cache.update("k", "g1", Known::Retired);
        assert_eq!(cache.active_count("k"), 1);
        assert!(matches!(cache.known("k", "g1"), Some(Known::Retired)));
        assert_eq!(cache.active("k").len(), 1);
        assert_eq!(cache.active_count("other"), 0);
    }

    #[test]
    fn a_load_that_raced_with_a_change_is_not_installed() {
        let cache = GrantCache::default();
        cache.init_new_key("other");
        let before = cache.epoch();
        cache.update("other", "g", Known::Retired); // any change bumps the epoch
        assert!(
            !cache.load("k", Vec::new(), before),
            "stale rows must be re-read"
        );
        assert!(!cache.is_loaded("k"));
        assert!(cache.load("k", Vec::new(), cache.epoch()));
        assert!(cache.is_loaded("k"));
        // Changes to keys that are not loaded are not recorded (the store has them).
        cache.update("unloaded", "g", grant("g"));
        assert!(!cache.is_loaded("unloaded"));
    }

    #[test]
    fn delegated_constraints_must_be_at_least_as_strict() {
        let none = GrantConstraints::default();
        let sub_a = GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some(map(&[("a", "1")])),
        };
        let sub_ab = GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some(map(&[("a", "1"), ("b", "2")])),
        };
        let eq_ab = GrantConstraints {
            encryption_context_equals: Some(map(&[("a", "1"), ("b", "2")])),
            encryption_context_subset: None,
        };
        assert!(sub_a.at_least_as_strict_as(&none));
        assert!(
            sub_ab.at_least_as_strict_as(&sub_a),
            "adding subset pairs narrows"
        );
        assert!(
            eq_ab.at_least_as_strict_as(&sub_a),
            "subset to equals narrows"
        );
        assert!(!none.at_least_as_strict_as(&sub_a));
        assert!(
            !sub_a.at_least_as_strict_as(&eq_ab),
            "equals to subset widens"
        );
    }
}
