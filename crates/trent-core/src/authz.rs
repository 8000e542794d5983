//! Authorization: the single gate every KMS operation passes before it acts.
//!
//! It implements AWS KMS's decision order (policy-semantics §1.5) with `trent-policy`:
//! explicit deny anywhere → cross-account operation gate → key policy allows the principal →
//! key policy delegates to the account and an IAM policy allows → (grants) → implicit deny.
//! Key-less actions (CreateKey, ListKeys, …) and the alias half of alias operations are decided
//! by IAM policies alone. Key policies are parsed once per policy text and cached; IAM policies
//! come pre-parsed from the IAM directory, so a decision costs microseconds and no I/O.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use trent_crypto::spec::WireEnum;
use trent_policy::{ConditionContext, Policy, PolicyKind};

use crate::caller::{Caller, Identity};
use crate::error::{KmsError, KmsResult};
use crate::model::KeyRecord;
use crate::service::Kms;

/// The resource a permission is checked against.
pub enum Resource<'a> {
    /// A key (key-policy-controlled actions).
    Key(&'a KeyRecord),
    /// An alias, by ARN (the IAM-only half of alias operations).
    Alias(&'a str),
    /// No specific resource (`*`: CreateKey, ListKeys, ListAliases, GenerateRandom, ...).
    Any,
}

/// A key policy's text and its parsed form.
type ParsedKeyPolicy = (Arc<str>, Arc<Policy>);

/// Parsed key policies by key id, reused while the policy text is unchanged.
#[derive(Default)]
pub struct KeyPolicyCache {
    by_key: RwLock<HashMap<String, ParsedKeyPolicy>>,
}

impl KeyPolicyCache {
    fn get(&self, key: &KeyRecord) -> KmsResult<Arc<Policy>> {
        if let Some((text, policy)) = self
            .by_key
            .read()
            .ok()
            .and_then(|m| m.get(&key.key_id).cloned())
            && *text == *key.policy
        {
            return Ok(policy);
        }
        let policy = Arc::new(
            Policy::parse(&key.policy, PolicyKind::KeyPolicy).map_err(|e| {
                KmsError::Internal(format!("stored key policy does not parse: {e}"))
            })?,
        );
        if let Ok(mut m) = self.by_key.write() {
            m.insert(
                key.key_id.clone(),
                (Arc::from(key.policy.as_str()), policy.clone()),
            );
        }
        Ok(policy)
    }
}

impl Kms {
    /// Decides whether `caller` may perform `action` (e.g. `kms:Encrypt`) on `resource`.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
    ) -> KmsResult<()> {
        self.authorize_with(caller, action, resource, ConditionContext::new())
    }

    /// [`Kms::authorize`] with request-specific condition keys (encryption context, algorithm, …).
    pub fn authorize_with(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
        request: ConditionContext,
    ) -> KmsResult<()> {
        self.authorize_full(
            caller,
            action,
            resource,
            request,
            &std::collections::BTreeMap::new(),
        )
    }

    /// [`Kms::authorize_with`] for requests that carry an encryption context, which grant
    /// constraints are checked against.
    pub fn authorize_full(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
        request: ConditionContext,
        encryption_context: &std::collections::BTreeMap<String, String>,
    ) -> KmsResult<()> {
        let mut context = self.global_context(caller);
        merge_context(&mut context, &request);
        let iam = self.iam.account(&caller.account).policies_for(caller);
        let iam_refs: Vec<&Policy> = iam.iter().map(|p| p.as_ref()).collect();
        let principal = caller.policy_principal();
        let (decision, resource_arn) = match resource {
            Resource::Key(key) => {
                add_key_context(&mut context, caller, key);
                if let Some(aliases) = self
                    .cache
                    .key_aliases(&key.key_id)
                    .filter(|a| !a.is_empty())
                {
                    // IAM-only key: the evaluator treats it as absent in key policies.
                    context.insert_multi("kms:ResourceAliases", aliases);
                }
                let key_policy = self.key_policies.get(key)?;
                let key_arn = key.arn();
                let request = trent_policy::kms::KmsRequest {
                    principal: &principal,
                    action,
                    key_arn: &key_arn,
                    key_account: &key.account_id,
                    context: &context,
                };
                let mut decision =
                    trent_policy::kms::authorize(&key_policy, &iam_refs, false, &request);
                // Grants only allow, so they are looked at only when the policies alone deny
                // without an explicit deny: policy-allowed calls pay nothing for them.
                // CreateGrant through a grant is delegation, with its own subset rules
                // (`grants.rs`), so it is never allowed here.
                if decision.decision == trent_policy::Decision::ImplicitDeny
                    && action != "kms:CreateGrant"
                {
                    let operation = action.strip_prefix("kms:").unwrap_or(action);
                    let iam_allows = || {
                        trent_policy::kms::authorize_without_key(
                            &iam_refs, &principal, action, &key_arn, &context,
                        )
                        .is_allowed()
                    };
                    if self.grants_allow(caller, key, operation, encryption_context, &iam_allows) {
                        decision =
                            trent_policy::kms::authorize(&key_policy, &iam_refs, true, &request);
                    }
                }
                (decision, key_arn)
            }
            Resource::Alias(arn) => (
                trent_policy::kms::authorize_without_key(
                    &iam_refs, &principal, action, arn, &context,
                ),
                arn.to_string(),
            ),
            Resource::Any => (
                trent_policy::kms::authorize_without_key(
                    &iam_refs, &principal, action, "*", &context,
                ),
                "*".to_string(),
            ),
        };
        if decision.is_allowed() {
            return Ok(());
        }
        Err(KmsError::AccessDenied(decision.access_denied_message(&caller.principal_arn, action, &resource_arn).unwrap_or_else(|| {
            format!("User: {} is not authorized to perform: {action} on resource: {resource_arn}", caller.principal_arn)
        })))
    }

    /// The global condition keys of a request (`aws:*`), from the caller and the clock.
    pub fn global_context(&self, caller: &Caller) -> ConditionContext {
        let mut c = ConditionContext::new();
        let now = self.clock.now_ms();
        c.insert("aws:PrincipalArn", caller.principal_role_arn());
        c.insert("aws:PrincipalAccount", caller.account.clone());
        c.insert("aws:PrincipalType", caller.principal_type());
        c.insert("aws:userid", caller.user_id());
        if let Identity::User { name, .. } = &caller.identity {
            c.insert("aws:username", name.clone());
        }
        for (k, v) in &caller.tags {
            c.insert(&format!("aws:PrincipalTag/{k}"), v.clone());
        }
        if let Some(ip) = caller.source_ip {
            c.insert("aws:SourceIp", ip.to_string());
        }
        c.insert(
            "aws:SecureTransport",
            if caller.secure_transport {
                "true"
            } else {
                "false"
            },
        );
        c.insert("aws:CurrentTime", crate::clock::iso8601(now));
        c.insert("aws:EpochTime", now.div_euclid(1000).to_string());
        c.insert("aws:RequestedRegion", caller.region.clone());
        c.insert("aws:PrincipalIsAWSService", "false");
        c.insert("aws:ViaAWSService", "false");
        c
    }

    /// The lockout safety check and principal validation for a key policy about to be set on
    /// `key` (a key being created is passed with its future id and the new policy).
    pub(crate) fn check_policy_for_key(
        &self,
        caller: &Caller,
        key: &KeyRecord,
        bypass: bool,
    ) -> KmsResult<()> {
        let policy = Policy::parse(&key.policy, PolicyKind::KeyPolicy)
            .map_err(|e| KmsError::MalformedPolicyDocument(e.aws_message()))?;
        for (_, entry) in policy.principal_entries() {
            if !self.principal_exists(entry.value()) {
                return Err(KmsError::MalformedPolicyDocument(
                    "Policy contains a statement with one or more invalid principals.".into(),
                ));
            }
        }
        if bypass {
            return Ok(());
        }
        let mut context = ConditionContext::new();
        context.insert("kms:BypassPolicyLockoutSafetyCheck", "false");
        // Evaluate the *new* policy: bypass the cache, which holds the old text under this id.
        let mut full = self.global_context(caller);
        add_key_context(&mut full, caller, key);
        merge_context(&mut full, &context);
        let iam = self.iam.account(&caller.account).policies_for(caller);
        let iam_refs: Vec<&Policy> = iam.iter().map(|p| p.as_ref()).collect();
        let principal = caller.policy_principal();
        let key_arn = key.arn();
        let request = trent_policy::kms::KmsRequest {
            principal: &principal,
            action: "kms:PutKeyPolicy",
            key_arn: &key_arn,
            key_account: &key.account_id,
            context: &full,
        };
        if trent_policy::kms::authorize(&policy, &iam_refs, false, &request).is_allowed() {
            Ok(())
        } else {
            Err(KmsError::MalformedPolicyDocument(
                "The new key policy will not allow you to update the key policy in the future."
                    .into(),
            ))
        }
    }

    /// Whether a principal named in a key policy exists (KMS refuses unknown principals).
    fn principal_exists(&self, value: &trent_policy::PrincipalValue) -> bool {
        use trent_policy::PrincipalValue as V;
        let account_of = |arn: &str| arn.split(':').nth(4).unwrap_or_default().to_string();
        match value {
            V::Everyone
            | V::Service(_)
            | V::Federated(_)
            | V::FederatedUser(_)
            | V::CanonicalUser(_) => true,
            V::Account(a) => self.known_account(a),
            V::User(arn) => {
                let acct = account_of(arn);
                self.iam
                    .account(&acct)
                    .users
                    .values()
                    .any(|u| crate::iam::entity_arn(&acct, "user", &u.path, &u.name) == *arn)
            }
            V::Role(arn) => {
                let acct = account_of(arn);
                self.iam
                    .account(&acct)
                    .roles
                    .values()
                    .any(|r| crate::iam::entity_arn(&acct, "role", &r.path, &r.name) == *arn)
            }
            V::AssumedRole(arn) => {
                // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION: the role must exist.
                let role = arn.split('/').nth(1).unwrap_or_default();
                self.iam.account(&account_of(arn)).roles.contains_key(role)
            }
        }
    }
}

/// Copies `extra`'s keys into `into`, keeping single- and multi-valued keys as they are (a
/// plain operator never matches a multi-valued key, so the distinction matters).
fn merge_context(into: &mut ConditionContext, extra: &ConditionContext) {
    for (k, v) in extra.iter() {
        match v {
            trent_policy::ContextValue::Single(s) => into.insert(k, s.clone()),
            trent_policy::ContextValue::Multi(m) => into.insert_multi(k, m.iter().cloned()),
        }
    }
}

fn add_key_context(c: &mut ConditionContext, caller: &Caller, key: &KeyRecord) {
    c.insert("kms:CallerAccount", caller.account.clone());
    c.insert("kms:KeySpec", key.key_spec.as_str());
    c.insert("kms:CustomerMasterKeySpec", key.key_spec.as_str());
    c.insert("kms:KeyUsage", key.key_usage.as_str());
    c.insert("kms:CustomerMasterKeyUsage", key.key_usage.as_str());
    c.insert("kms:KeyOrigin", key.origin.as_str());
    c.insert(
        "kms:MultiRegion",
        if key.multi_region { "true" } else { "false" },
    );
    c.insert("aws:ResourceAccount", key.account_id.clone());
    for t in &key.tags {
        c.insert(&format!("aws:ResourceTag/{}", t.key), t.value.clone());
    }
}

/// A request context from (key, value) pairs (single-valued keys).
pub fn condition_keys<const N: usize>(pairs: [(&str, String); N]) -> ConditionContext {
    let mut c = ConditionContext::new();
    for (k, v) in pairs {
        c.insert(k, v);
    }
    c
}

/// Condition keys of cryptographic requests: encryption context, algorithm, request alias.
pub fn crypto_context(
    encryption_context: &std::collections::BTreeMap<String, String>,
    algorithm: Option<&str>,
    key_id_input: Option<&str>,
) -> ConditionContext {
    let mut c = ConditionContext::new();
    for (k, v) in encryption_context {
        c.insert(&format!("kms:EncryptionContext:{k}"), v.clone());
    }
    if !encryption_context.is_empty() {
        c.insert_multi(
            "kms:EncryptionContextKeys",
            encryption_context.keys().cloned(),
        );
    }
    if let Some(a) = algorithm {
        c.insert("kms:EncryptionAlgorithm", a);
    }
    if let Some(alias) = key_id_input.and_then(request_alias) {
        c.insert("kms:RequestAlias", alias);
    }
    c
}

/// `kms:RequestAlias`: the alias name when the request named the key by alias.
pub fn request_alias(key_id_input: &str) -> Option<String> {
    if key_id_input.starts_with("alias/") {
        return Some(key_id_input.to_string());
    }
    key_id_input
        .strip_prefix("arn:")
        .and_then(|rest| rest.splitn(5, ':').nth(4))
        .filter(|r| r.starts_with("alias/"))
        .map(str::to_string)
}
