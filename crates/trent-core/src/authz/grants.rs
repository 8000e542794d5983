//! Grants in decisions: a grant allowing a call, CreateGrant by delegation from a grant, and
//! who may retire a grant.

use std::sync::Arc;

use super::{Access, Decision, RequestFacts};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::grants::{Grant, GrantConstraints, GrantOperation};
use crate::service::Kms;

/// How a grant's grantee relates to a caller.
#[derive(PartialEq, Eq)]
enum GranteeMatch {
    /// The grantee names the caller (or the role of the caller's session).
    Direct,
    /// The grantee is the caller's account: its principals still need IAM permission.
    Account,
    No,
}

/// The caller's role ARN when it is a role session (what a role grantee names).
fn role_arn_of(caller: &Caller) -> Option<&str> {
    caller
        .is_role_session()
        .then(|| caller.principal_role_arn())
}

fn grantee_match(grant: &Grant, caller: &Caller) -> GranteeMatch {
    let g = grant.grantee_principal.as_str();
    // A user or role grantee bound at CreateGrant names only the entity with that unique id.
    if Grant::names(
        g,
        grant.grantee_principal_id.as_deref(),
        &caller.principal_arn,
        role_arn_of(caller),
        caller.policy_principal().unique_id.as_deref(),
    ) {
        return GranteeMatch::Direct;
    }
    if g == caller.account || g == caller.root_arn {
        return if caller.is_root() {
            GranteeMatch::Direct
        } else {
            GranteeMatch::Account
        };
    }
    GranteeMatch::No
}

/// Runs `f` over the grantee principals that can name `caller`: its ARN, its account and
/// account root, and for a role session also the role's ARN (for anyone else that is the
/// principal ARN again, not worth a second lookup).
fn with_grantees_of<T>(caller: &Caller, f: impl FnOnce(&[&str]) -> T) -> T {
    let names = [
        caller.principal_arn.as_str(),
        &caller.account,
        &caller.root_arn,
        caller.principal_role_arn(),
    ];
    let count = if caller.is_role_session() { 4 } else { 3 };
    f(names.get(..count).unwrap_or(&names))
}

impl Kms {
    /// A grant (cached, or carried by a grant token) that lets `caller` perform `access` on
    /// `key`. A grant to the caller's account needs an IAM allow as well.
    pub(super) fn grant_allowing(
        &self,
        caller: &Caller,
        key: &LoadedKey,
        access: &Access<'_>,
        facts: &RequestFacts<'_>,
    ) -> Option<Arc<Grant>> {
        let operation = GrantOperation::of_action(access.action)?;
        let empty = std::collections::BTreeMap::new();
        let context = access.facts.encryption_context.unwrap_or(&empty);
        let iam_allows = || {
            trent_policy::kms::authorize_without_key(
                caller.identity_policies.as_slice(),
                caller.policy_principal(),
                access.action,
                key.arn(),
                facts,
            )
            .is_allowed()
        };
        let usable = |g: &Grant| {
            g.allows(operation, context, caller.source_arn())
                && match grantee_match(g, caller) {
                    GranteeMatch::Direct => true,
                    GranteeMatch::Account => iam_allows(),
                    GranteeMatch::No => false,
                }
        };
        let key_id = &key.record.key_id;
        with_grantees_of(caller, |grantees| {
            self.grants.find(key_id, grantees, operation, usable)
        })
        .or_else(|| self.usable_token_grants(access, key_id).find(|g| usable(g)))
    }

    /// The grants the request's grant tokens carry for `key_id`, less any this node knows to
    /// be retired or revoked. A grant this node knows is taken as stored, not as the token
    /// sealed it: a token from before its principals were bound carries them unbound
    /// (`authz/bindings.rs`). Every use of token grants goes through here.
    fn usable_token_grants<'a>(
        &'a self,
        access: &'a Access<'_>,
        key_id: &'a str,
    ) -> impl Iterator<Item = Arc<Grant>> + 'a {
        access
            .grant_tokens
            .iter()
            .filter(move |g| g.key_id == key_id)
            .filter_map(move |g| match self.grants.known(key_id, &g.grant_id) {
                Some(crate::grants::Known::Retired) => None,
                Some(crate::grants::Known::Active(stored)) => Some(stored),
                None => Some(g.clone()),
            })
    }

    /// CreateGrant: the policies first; failing that (but not on an explicit deny), a grant to
    /// the caller holding CreateGrant may delegate a subset of itself — no more operations and
    /// constraints at least as strict.
    pub(crate) fn decide_create_grant(
        &self,
        caller: &Caller,
        access: &Access<'_>,
        key: &LoadedKey,
        operations: &[GrantOperation],
        constraints: Option<&GrantConstraints>,
    ) -> KmsResult<Decision> {
        let decision = self.decide(caller, access)?;
        if decision.is_allowed() || decision.is_explicit_deny() {
            return Ok(decision);
        }
        let child = constraints.cloned().unwrap_or_default();
        let delegates = |p: &Grant| {
            grantee_match(p, caller) == GranteeMatch::Direct
                && p.has(GrantOperation::CreateGrant)
                && operations.iter().all(|o| p.has(*o))
                && p.constraints
                    .as_ref()
                    .is_none_or(|pc| child.at_least_as_strict_as(pc))
        };
        let key_id = &key.record.key_id;
        let parent = with_grantees_of(caller, |grantees| {
            self.grants
                .find(key_id, grantees, GrantOperation::CreateGrant, delegates)
        })
        .or_else(|| {
            self.usable_token_grants(access, key_id)
                .find(|g| delegates(g))
        });
        Ok(parent.map_or(decision, Decision::AllowedByGrant))
    }

    /// ListRetirableGrants: an IAM permission, and only for retiring principals of the
    /// caller's own account.
    pub(crate) fn check_list_retirable_grants(
        &self,
        caller: &Caller,
        retiring_principal: &str,
    ) -> KmsResult<()> {
        self.check(
            caller,
            Access::new("kms:ListRetirableGrants", super::Resource::Any),
        )?;
        let principal_account = if crate::ids::is_account_id(retiring_principal) {
            retiring_principal
        } else {
            retiring_principal.split(':').nth(4).unwrap_or_default()
        };
        if principal_account != caller.account {
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:ListRetirableGrants for a retiring principal of another account",
                caller.principal_arn
            )));
        }
        Ok(())
    }

    /// RetireGrant is not controlled by the key policy: the grant's retiring principal, a
    /// grantee holding RetireGrant, or the issuing account (its root, or a principal its IAM
    /// policies allow `kms:RetireGrant`) may retire it.
    pub(crate) fn check_retire_grant(&self, caller: &Caller, grant: &Arc<Grant>) -> KmsResult<()> {
        let retiring = grant.retiring_principal.as_deref().is_some_and(|r| {
            Grant::names(
                r,
                grant.retiring_principal_id.as_deref(),
                &caller.principal_arn,
                Some(caller.principal_role_arn()),
                caller.policy_principal().unique_id.as_deref(),
            )
        });
        let grantee = grantee_match(grant, caller) == GranteeMatch::Direct
            && grant.has(GrantOperation::RetireGrant);
        let issuer = caller.account == grant.issuing_account
            && (caller.is_root()
                || self
                    .decide_identity(caller, "kms:RetireGrant", "*")
                    .is_allowed());
        if retiring || grantee || issuer {
            return Ok(());
        }
        Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: kms:RetireGrant on resource: {}",
            caller.principal_arn,
            crate::ids::key_arn(&grant.key_region, &grant.key_account, &grant.key_id)
        )))
    }
}
