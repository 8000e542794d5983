//! Authorization: the one place a decision is made. Every KMS, IAM and STS permission check in
//! Trent comes here and gets a typed [`Decision`].
//!
//! KMS's decision order (policy-semantics §1.5), evaluated with `trent-policy`: explicit deny
//! anywhere → cross-account operation gate → key policy allows the principal → key policy
//! delegates to the account and an IAM policy allows → a grant allows → implicit deny.
//! Key-less actions (CreateKey, ListKeys, …) and the alias half of alias operations are
//! decided by IAM policies alone.
//!
//! Nothing here parses a policy or reads storage on the request path: key policies are parsed
//! when a key is loaded or its policy changes (`cache.rs`), identity policies when IAM changes
//! (`iam/directory.rs`), and condition values are looked up lazily from facts already held by
//! the caller and the key ([`facts`]).
//!
//! - [`access`]: who can use a key (operator analysis, by asking the evaluator).
//! - [`bindings`]: user and role principals bound to unique ids when a policy is set.
//! - [`explain`]: the decision that answered a request, rendered for the request log.
//! - [`facts`]: the condition keys of a request.
//! - [`grants`]: grants as a source of permission, grant delegation (CreateGrant through a
//!   grant) and who may retire a grant.
//! - [`key_policy`]: checks on a key policy about to be set (principals exist, no lockout).
//! - [`trust`]: `sts:AssumeRole` by a role's trust policy and the caller's identity policies.
//! - [`simulate`]: IAM's policy simulator over hypothetical policies, same evaluator and order.

pub mod access;
pub(crate) mod bindings;
pub mod explain;
pub mod facts;
mod grants;
mod key_policy;
pub mod simulate;
mod trust;

use std::collections::BTreeMap;
use std::sync::Arc;

use trent_policy::{ConditionContext, DenyCause, PolicyType, Reasons};

pub use facts::{OperationFacts, RequestFacts};

use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::grants::{Grant, GrantTokens, NO_GRANT_TOKENS};
use crate::service::Kms;

/// The resource a permission is checked against.
#[derive(Clone, Copy)]
pub enum Resource<'a> {
    /// A key (key-policy-controlled actions).
    Key(&'a LoadedKey),
    /// An alias, by ARN (the IAM-only half of alias operations).
    Alias(&'a str),
    /// No specific resource (`*`: CreateKey, ListKeys, ListAliases, GenerateRandom, ...).
    Any,
}

/// One permission check: the action, the resource, and what the request brings.
pub struct Access<'a> {
    action: &'a str,
    resource: Resource<'a>,
    facts: OperationFacts<'a>,
    grant_tokens: &'a GrantTokens,
}

impl<'a> Access<'a> {
    /// `action` (e.g. `kms:Encrypt`) on `resource`.
    pub fn new(action: &'a str, resource: Resource<'a>) -> Self {
        Self {
            action,
            resource,
            facts: OperationFacts::default(),
            grant_tokens: &NO_GRANT_TOKENS,
        }
    }

    /// The request's encryption context: condition keys, and what grant constraints check.
    pub fn encryption_context(mut self, context: &'a BTreeMap<String, String>) -> Self {
        self.facts.encryption_context = Some(context);
        self
    }

    /// `kms:EncryptionAlgorithm`.
    pub fn algorithm(mut self, algorithm: &'static str) -> Self {
        self.facts.algorithm = Some(algorithm);
        self
    }

    /// The key as the caller named it (`kms:RequestAlias`).
    pub fn named_as(mut self, key_id_input: &'a str) -> Self {
        self.facts.key_id_input = Some(key_id_input);
        self
    }

    /// One more operation-specific condition key.
    pub fn condition(mut self, key: &str, value: impl Into<String>) -> Self {
        self.facts.other.insert(key, value);
        self
    }

    /// Operation-specific condition keys.
    pub fn conditions(mut self, context: ConditionContext) -> Self {
        for (k, v) in context.iter() {
            match v {
                trent_policy::ContextValue::Single(s) => self.facts.other.insert(k, s.clone()),
                trent_policy::ContextValue::Multi(m) => {
                    self.facts.other.insert_multi(k, m.iter().cloned());
                }
            }
        }
        self
    }

    /// The request's verified Nitro Enclaves attestation document, if it had a `Recipient`
    /// (`kms:RecipientAttestation:ImageSha384` and `:PCR<n>`, absent without one).
    pub fn recipient(mut self, attestation: Option<&'a trent_crypto::nitro::Attestation>) -> Self {
        self.facts.recipient = attestation;
        self
    }

    /// The grants the request's grant tokens carry.
    pub fn grant_tokens(mut self, tokens: &'a GrantTokens) -> Self {
        self.grant_tokens = tokens;
        self
    }

    fn resource_arn(&self) -> &'a str {
        match self.resource {
            Resource::Key(key) => key.arn(),
            Resource::Alias(arn) => arn,
            Resource::Any => "*",
        }
    }

    /// The resource an `AccessDeniedException` names: the resource, except that a key of
    /// another account reached through its alias ARN is named by that alias ARN — the caller
    /// may not learn which key an alias it cannot use points to.
    fn denied_resource(&self, caller: &Caller) -> &'a str {
        if let Resource::Key(key) = self.resource
            && key.record.account_id != caller.account
            && let Some(named) = self.facts.key_id_input
            && named.starts_with("arn:")
            && named.contains(":alias/")
        {
            return named;
        }
        self.resource_arn()
    }
}

/// The answer to one permission check, with what decided it.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Allowed by these policy statements.
    AllowedByPolicy(Reasons),
    /// Allowed by this grant (for CreateGrant: delegated from it).
    AllowedByGrant(Arc<Grant>),
    /// Denied by these applicable Deny statements, in this kind of policy: final, overrides
    /// every allow and grant.
    ExplicitDeny(Reasons, PolicyType),
    /// Nothing allowed it; the cause says which side (key policy or IAM) was missing.
    ImplicitDeny(DenyCause),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::AllowedByPolicy(_) | Self::AllowedByGrant(_))
    }

    pub fn is_explicit_deny(&self) -> bool {
        matches!(self, Self::ExplicitDeny(..))
    }

    fn from_policies(a: trent_policy::Authorization) -> Self {
        match (a.decision, a.deny_cause) {
            (trent_policy::Decision::Allow, _) => Self::AllowedByPolicy(a.reasons),
            (trent_policy::Decision::ExplicitDeny, Some(DenyCause::ExplicitDeny(t))) => {
                Self::ExplicitDeny(a.reasons, t)
            }
            (trent_policy::Decision::ExplicitDeny, _) => {
                Self::ExplicitDeny(a.reasons, PolicyType::IdentityBased)
            }
            (trent_policy::Decision::ImplicitDeny, cause) => {
                Self::ImplicitDeny(cause.unwrap_or(DenyCause::NoIdentityPolicyAllows))
            }
        }
    }

    /// `AccessDeniedException`'s message for this denial, in AWS's words.
    pub fn denial_message(&self, principal_arn: &str, action: &str, resource: &str) -> String {
        let cause = match self {
            Self::ExplicitDeny(_, t) => DenyCause::ExplicitDeny(*t),
            Self::ImplicitDeny(cause) => *cause,
            Self::AllowedByPolicy(_) | Self::AllowedByGrant(_) => {
                return format!(
                    "User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
                );
            }
        };
        cause.message(principal_arn, action, resource)
    }

    /// `Ok` if allowed, else the `AccessDeniedException` for `caller`. A stand-in for a key
    /// of another account that does not exist ([`LoadedKey::phantom`]) is never `Ok`: denied
    /// as an existing key would be, or, were it allowed, `NotFoundException`.
    pub(crate) fn into_result(self, caller: &Caller, access: &Access<'_>) -> KmsResult<()> {
        if self.is_allowed() {
            if let Resource::Key(key) = access.resource
                && let Some(not_found) = key.phantom_not_found()
            {
                return Err(KmsError::NotFound(not_found.to_string()));
            }
            caller.note_decision(self, access.action, None);
            return Ok(());
        }
        let message = self.denial_message(
            &caller.principal_arn,
            access.action,
            access.denied_resource(caller),
        );
        let key_account = match access.resource {
            Resource::Key(key) => Some(key.record.account_id.as_str()),
            Resource::Alias(_) | Resource::Any => None,
        };
        caller.note_decision(self, access.action, key_account);
        Err(KmsError::AccessDenied(message))
    }
}

impl Kms {
    /// Decides whether `caller` may perform `access`.
    pub fn decide(&self, caller: &Caller, access: &Access<'_>) -> KmsResult<Decision> {
        let facts = RequestFacts::new(caller, self.clock.as_ref()).with_operation(&access.facts);
        let principal = caller.policy_principal();
        let iam = caller.identity_policies.as_slice();
        let Resource::Key(key) = access.resource else {
            // Alias halves and key-less actions: identity policies alone decide.
            let facts = match access.resource {
                Resource::Alias(_) => facts.with_caller_account(),
                _ => facts,
            };
            return Ok(Decision::from_policies(
                trent_policy::kms::authorize_without_key(
                    iam,
                    principal,
                    access.action,
                    access.resource_arn(),
                    &facts,
                ),
            ));
        };
        let facts = facts.with_key(key, &self.cache);
        let key_policy = key.key_policy()?;
        let request = trent_policy::kms::KmsRequest {
            principal,
            action: access.action,
            key_arn: key.arn(),
            key_account: &key.record.account_id,
            context: &facts,
        };
        let decision = Decision::from_policies(trent_policy::kms::authorize(
            key_policy, iam, false, &request,
        ));
        // Grants only allow, so they are looked at only when the policies alone deny without
        // an explicit deny: policy-allowed calls pay nothing for them. The cross-account gate
        // still applies to them. CreateGrant through a grant is delegation, with its own subset
        // rules (`grants.rs`), so not decided here.
        let cross_account = caller.account != key.record.account_id;
        if let Decision::ImplicitDeny(_) = decision
            && access.action != "kms:CreateGrant"
            && (!cross_account || trent_policy::kms::cross_account_permitted(access.action))
            && let Some(grant) = self.grant_allowing(caller, key, access, &facts)
        {
            return Ok(Decision::AllowedByGrant(grant));
        }
        Ok(decision)
    }

    /// Checks `access` for `caller`: `Ok` if allowed, else `AccessDeniedException`.
    pub fn check(&self, caller: &Caller, access: Access<'_>) -> KmsResult<()> {
        self.decide(caller, &access)?.into_result(caller, &access)
    }

    /// Decides whether `caller` may perform `action` (e.g. `kms:Encrypt`) on `resource`.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
    ) -> KmsResult<()> {
        self.check(caller, Access::new(action, resource))
    }

    /// [`Kms::authorize`] with operation-specific condition keys.
    pub fn authorize_with(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
        context: ConditionContext,
    ) -> KmsResult<()> {
        self.check(caller, Access::new(action, resource).conditions(context))
    }

    /// An IAM or STS permission on `resource`, by the caller's identity policies alone (the
    /// account root may do everything in its account).
    pub fn decide_identity(&self, caller: &Caller, action: &str, resource: &str) -> Decision {
        let facts = RequestFacts::new(caller, self.clock.as_ref());
        Decision::from_policies(trent_policy::kms::authorize_without_key(
            caller.identity_policies.as_slice(),
            caller.policy_principal(),
            action,
            resource,
            &facts,
        ))
    }
}

/// Operation condition keys from (key, value) pairs (single-valued keys).
pub fn condition_keys<const N: usize>(pairs: [(&str, String); N]) -> ConditionContext {
    let mut c = ConditionContext::new();
    for (k, v) in pairs {
        c.insert(k, v);
    }
    c
}
