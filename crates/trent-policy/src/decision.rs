//! Combining policy outcomes into one decision that carries its reasons: the
//! statements that decided it, and for a denial which AWS message applies.

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::ast::Effect;
use crate::evaluate::PolicyOutcome;

/// The final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// An applicable Deny statement: final, overrides every allow and grant.
    ExplicitDeny,
    /// Nothing allowed it (the default).
    ImplicitDeny,
}

/// Where a deciding statement lives; AWS names it in `AccessDenied` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyType {
    /// A resource policy (for KMS: the key policy).
    ResourceBased,
    /// An IAM identity policy of the caller.
    IdentityBased,
    /// A KMS grant (allows only).
    Grant,
}

impl PolicyType {
    fn phrase(self) -> &'static str {
        match self {
            Self::ResourceBased => "a resource-based policy",
            Self::IdentityBased => "an identity-based policy",
            Self::Grant => "a grant",
        }
    }
}

/// One deciding statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Which kind of policy it is in.
    pub policy_type: PolicyType,
    /// Index of the policy in the list the caller passed (0 for the key policy).
    pub policy_index: usize,
    /// Index of the statement in that policy.
    pub statement: usize,
    /// The statement's `Sid`, if any.
    pub sid: Option<Arc<str>>,
}

/// Why a request was denied, in AWS's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyCause {
    /// "with an explicit deny in a resource-based / an identity-based policy".
    ExplicitDeny(PolicyType),
    /// "because no identity-based policy allows the ... action".
    NoIdentityPolicyAllows,
    /// "because no resource-based policy allows the ... action".
    NoResourcePolicyAllows,
}

/// The statements behind a decision.
pub type Reasons = SmallVec<[Reason; 2]>;

/// A decision with its reasons: for Allow the allowing statements, for
/// ExplicitDeny the denying ones, for ImplicitDeny none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The decision.
    pub decision: Decision,
    /// The statements that decided it (held inline for the usual one or two).
    pub reasons: Reasons,
    /// For denials, which AWS message applies.
    pub deny_cause: Option<DenyCause>,
}

impl Authorization {
    /// `true` iff the decision is [`Decision::Allow`].
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    pub(crate) fn allow(reasons: Reasons) -> Self {
        Self {
            decision: Decision::Allow,
            reasons,
            deny_cause: None,
        }
    }

    pub(crate) fn implicit_deny(cause: DenyCause) -> Self {
        Self {
            decision: Decision::ImplicitDeny,
            reasons: Reasons::new(),
            deny_cause: Some(cause),
        }
    }

    /// The `AccessDeniedException` message AWS would give, or `None` when allowed.
    #[must_use]
    pub fn access_denied_message(
        &self,
        principal_arn: &str,
        action: &str,
        resource: &str,
    ) -> Option<String> {
        Some(self.deny_cause?.message(principal_arn, action, resource))
    }
}

impl DenyCause {
    /// The `AccessDeniedException` message AWS gives for a denial with this cause.
    #[must_use]
    pub fn message(self, principal_arn: &str, action: &str, resource: &str) -> String {
        format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {}",
            DenyPhrase {
                cause: self,
                action
            }
        )
    }
}

struct DenyPhrase<'a> {
    cause: DenyCause,
    action: &'a str,
}

impl fmt::Display for DenyPhrase<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            DenyCause::ExplicitDeny(t) => write!(f, "with an explicit deny in {}", t.phrase()),
            DenyCause::NoIdentityPolicyAllows => write!(
                f,
                "because no identity-based policy allows the {} action",
                self.action
            ),
            DenyCause::NoResourcePolicyAllows => write!(
                f,
                "because no resource-based policy allows the {} action",
                self.action
            ),
        }
    }
}

/// Reasons for every statement of `effect` in the given outcomes.
pub(crate) fn reasons_for(
    outcomes: &[(PolicyType, usize, &PolicyOutcome)],
    effect: Effect,
) -> Reasons {
    outcomes
        .iter()
        .flat_map(|(policy_type, policy_index, o)| {
            o.matched
                .iter()
                .filter(move |m| m.effect == effect)
                .map(move |m| Reason {
                    policy_type: *policy_type,
                    policy_index: *policy_index,
                    statement: m.index,
                    sid: m.sid.clone(),
                })
        })
        .collect()
}

/// The generic IAM rule (§1.4) for services where identity and resource
/// policies are alternatives: any explicit deny wins; otherwise any allow
/// allows; otherwise implicit deny. KMS does not work this way: use
/// [`crate::kms::authorize`].
#[must_use]
pub fn combine(outcomes: &[(PolicyType, &PolicyOutcome)]) -> Authorization {
    let indexed: Vec<(PolicyType, usize, &PolicyOutcome)> = outcomes
        .iter()
        .enumerate()
        .map(|(i, (t, o))| (*t, i, *o))
        .collect();
    if let Some((t, _, _)) = indexed.iter().find(|(_, _, o)| o.explicit_deny) {
        return Authorization {
            decision: Decision::ExplicitDeny,
            reasons: reasons_for(&indexed, Effect::Deny),
            deny_cause: Some(DenyCause::ExplicitDeny(*t)),
        };
    }
    if indexed.iter().any(|(_, _, o)| o.allow) {
        return Authorization::allow(reasons_for(&indexed, Effect::Allow));
    }
    let has_identity = outcomes
        .iter()
        .any(|(t, _)| *t == PolicyType::IdentityBased);
    Authorization::implicit_deny(if has_identity || outcomes.is_empty() {
        DenyCause::NoIdentityPolicyAllows
    } else {
        DenyCause::NoResourcePolicyAllows
    })
}
