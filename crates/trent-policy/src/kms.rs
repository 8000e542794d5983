//! The KMS authorization algorithm (policy-semantics §1.5) over already parsed
//! policies: key policy + the caller's IAM policies + "does a grant allow it".
//!
//! KMS differs from the generic IAM rule: the key policy must always take
//! part. An IAM allow counts only if the key policy delegates to the caller's
//! account; a key-policy allow naming the caller suffices alone in the key's
//! own account. Finding a matching grant (grantee, operations, constraints) is
//! the domain's job; it passes the answer in as `grants_allow`.

use crate::ast::{Effect, Policy};
use crate::context::{ConditionValues, Principal, PrincipalKind, RequestContext};
use std::borrow::Cow;

use crate::decision::{Authorization, Decision, DenyCause, PolicyType, Reason, Reasons};
use crate::evaluate::PolicyOutcome;
use crate::principal::PrincipalMatch;

/// Permissions that a principal of another account can ever be granted
/// (§1.5 step 2, from the 2023 docs plus Encapsulate/Decapsulate). Lower-case.
pub const CROSS_ACCOUNT_PERMISSIONS: &[&str] = &[
    "kms:encrypt",
    "kms:decrypt",
    "kms:reencryptfrom",
    "kms:reencryptto",
    "kms:generatedatakey",
    "kms:generatedatakeywithoutplaintext",
    "kms:generatedatakeypair",
    "kms:generatedatakeypairwithoutplaintext",
    "kms:generatemac",
    "kms:verifymac",
    "kms:sign",
    "kms:verify",
    "kms:derivesharedsecret",
    "kms:encapsulate",
    "kms:decapsulate",
    "kms:creategrant",
    "kms:describekey",
    "kms:getkeyrotationstatus",
    "kms:getpublickey",
    "kms:listgrants",
    "kms:retiregrant",
    "kms:revokegrant",
];

/// Can a caller from another account ever be allowed `action` on a key?
#[must_use]
pub fn cross_account_permitted(action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    CROSS_ACCOUNT_PERMISSIONS.contains(&lower.as_str())
}

/// One KMS permission check against a key.
#[derive(Debug, Clone, Copy)]
pub struct KmsRequest<'a> {
    /// The caller.
    pub principal: &'a Principal,
    /// The permission, e.g. `kms:Decrypt`.
    pub action: &'a str,
    /// The key's ARN (the resource policies are evaluated against).
    pub key_arn: &'a str,
    /// The key's account.
    pub key_account: &'a str,
    /// Condition keys of the request.
    pub context: &'a dyn ConditionValues,
}

/// Decide a KMS permission on a key (§1.5): explicit deny anywhere wins, then
/// the cross-account gate, then a key-policy allow naming the caller, then a
/// key-policy delegation to the caller's account plus an IAM allow, then grants.
///
/// Service principals have no account: they are treated as same-account and
/// need no IAM policy. The account root user has implicit identity
/// permissions: every IAM check passes for it.
#[must_use]
pub fn authorize<P: AsRef<Policy>>(
    key_policy: &Policy,
    iam_policies: &[P],
    grants_allow: bool,
    req: &KmsRequest<'_>,
) -> Authorization {
    let mut buffer = [0u8; ACTION_BUFFER];
    let action = lower_action(req.action, &mut buffer);
    let rc = RequestContext {
        action: req.action,
        resource: req.key_arn,
        principal: req.principal,
        context: req.context,
    };
    let kp = key_policy.evaluate_lowered(&action, &rc);
    // Callers have a handful of identity policies at most; no outcome list is built for none.
    let iam: Vec<PolicyOutcome> = iam_policies
        .iter()
        .map(|p| p.as_ref().evaluate_lowered(&action, &rc))
        .collect();
    let key_policy_reasons =
        |effect: Effect| reasons_of(PolicyType::ResourceBased, 0, &kp, effect).collect::<Reasons>();
    let iam_reasons = |effect: Effect| {
        iam.iter()
            .enumerate()
            .flat_map(move |(i, o)| reasons_of(PolicyType::IdentityBased, i, o, effect))
    };

    // 1. Explicit deny in the key policy or any IAM policy; overrides grants.
    let denied_in = if kp.explicit_deny {
        Some(PolicyType::ResourceBased)
    } else if iam.iter().any(|o| o.explicit_deny) {
        Some(PolicyType::IdentityBased)
    } else {
        None
    };
    if let Some(t) = denied_in {
        let mut reasons = key_policy_reasons(Effect::Deny);
        reasons.extend(iam_reasons(Effect::Deny));
        return Authorization {
            decision: Decision::ExplicitDeny,
            reasons,
            deny_cause: Some(DenyCause::ExplicitDeny(t)),
        };
    }

    // 2. Cross-account gate.
    let p = req.principal;
    let cross_account =
        !matches!(p.kind, PrincipalKind::Service(_)) && p.account != req.key_account;
    if cross_account && !CROSS_ACCOUNT_PERMISSIONS.contains(&&*action) {
        return Authorization::implicit_deny(DenyCause::NoResourcePolicyAllows);
    }

    let iam_allows = p.is_root() || iam.iter().any(|o| o.allow);
    let kp_allows = |how: PrincipalMatch| -> Reasons {
        kp.allows()
            .filter(|m| m.principal == how)
            .map(|m| Reason {
                policy_type: PolicyType::ResourceBased,
                policy_index: 0,
                statement: m.index,
                sid: m.sid.clone(),
            })
            .collect()
    };

    // 3. A key-policy allow naming the caller itself.
    let direct = kp_allows(PrincipalMatch::Direct);
    if !direct.is_empty() && (!cross_account || iam_allows) {
        let mut reasons = direct;
        if cross_account {
            reasons.extend(iam_reasons(Effect::Allow));
        }
        return Authorization::allow(reasons);
    }

    // 4. Delegation to the caller's account, plus an IAM allow.
    let delegated = kp_allows(PrincipalMatch::Account);
    if !delegated.is_empty() && iam_allows {
        let mut reasons = delegated;
        reasons.extend(iam_reasons(Effect::Allow));
        return Authorization::allow(reasons);
    }

    // 5. Grants (only allow; denies were handled in step 1).
    if grants_allow {
        return Authorization::allow(smallvec::smallvec![Reason {
            policy_type: PolicyType::Grant,
            policy_index: 0,
            statement: 0,
            sid: None,
        }]);
    }

    // 6. Implicit deny: say which side was missing.
    Authorization::implicit_deny(if direct.is_empty() && delegated.is_empty() {
        DenyCause::NoResourcePolicyAllows
    } else {
        DenyCause::NoIdentityPolicyAllows
    })
}

/// Actions longer than this are lower-cased on the heap (no real action is).
const ACTION_BUFFER: usize = 64;

/// `action` lower-cased, in `buffer` when it fits (every real action does).
fn lower_action<'a>(action: &'a str, buffer: &'a mut [u8; ACTION_BUFFER]) -> Cow<'a, str> {
    if let Some(slot) = buffer.get_mut(..action.len()) {
        slot.copy_from_slice(action.as_bytes());
        slot.make_ascii_lowercase();
        // ASCII lower-casing keeps UTF-8 valid; the fallback is never taken.
        if let Ok(lower) = std::str::from_utf8(slot) {
            return Cow::Borrowed(lower);
        }
    }
    Cow::Owned(action.to_ascii_lowercase())
}

/// Reasons for the statements of `effect` that applied in one policy.
fn reasons_of(
    policy_type: PolicyType,
    policy_index: usize,
    outcome: &PolicyOutcome,
    effect: Effect,
) -> impl Iterator<Item = Reason> + '_ {
    outcome
        .matched
        .iter()
        .filter(move |m| m.effect == effect)
        .map(move |m| Reason {
            policy_type,
            policy_index,
            statement: m.index,
            sid: m.sid.clone(),
        })
}

/// Decide a KMS permission that involves no key (CreateKey, ListKeys,
/// ListAliases, GenerateRandom, custom key store operations, the alias half
/// of alias operations): IAM policies alone decide; the root user is allowed
/// unless denied.
#[must_use]
pub fn authorize_without_key<P: AsRef<Policy>>(
    iam_policies: &[P],
    principal: &Principal,
    action: &str,
    resource: &str,
    context: &dyn ConditionValues,
) -> Authorization {
    let mut buffer = [0u8; ACTION_BUFFER];
    let lower = lower_action(action, &mut buffer);
    let rc = RequestContext {
        action,
        resource,
        principal,
        context,
    };
    let iam: Vec<PolicyOutcome> = iam_policies
        .iter()
        .map(|p| p.as_ref().evaluate_lowered(&lower, &rc))
        .collect();
    let reasons = |effect: Effect| {
        iam.iter()
            .enumerate()
            .flat_map(|(i, o)| reasons_of(PolicyType::IdentityBased, i, o, effect))
            .collect::<Reasons>()
    };
    if iam.iter().any(|o| o.explicit_deny) {
        return Authorization {
            decision: Decision::ExplicitDeny,
            reasons: reasons(Effect::Deny),
            deny_cause: Some(DenyCause::ExplicitDeny(PolicyType::IdentityBased)),
        };
    }
    if principal.is_root() || iam.iter().any(|o| o.allow) {
        return Authorization::allow(reasons(Effect::Allow));
    }
    Authorization::implicit_deny(DenyCause::NoIdentityPolicyAllows)
}
