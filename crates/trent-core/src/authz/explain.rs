//! Why a real request was allowed or denied, for the operator: the typed [`Decision`] a
//! request's authorization produced, kept on its [`Caller`] (like the key ARN) and rendered
//! into the request log line's `decision` field.
//!
//! What is recorded: the denial that answered the request (with its action), else the first
//! allow. What is shown: which kind of policy, which statement (1-based, with its `Sid`) or
//! which grant — never a policy's text, never a condition value.
//!
//! Cost on the request path: an allow moves the decision (already built) into a `OnceLock`; a
//! denial also copies the action name. Rendering happens only when the log line is written.

use std::fmt;

use trent_policy::{DenyCause, PolicyType, Reason};

use super::Decision;
use crate::caller::Caller;

/// A denial with the action it denied.
#[derive(Debug, Clone)]
pub struct Denial {
    pub decision: Decision,
    pub action: Box<str>,
    /// The action was on another account's key and is one no other account may ever perform
    /// (the cross-account gate decided, whatever the policies say).
    pub never_cross_account: bool,
}

/// What a request's authorization decided, ready to render.
#[derive(Debug, Clone, Copy)]
pub enum Explanation<'a> {
    Allowed(&'a Decision),
    Denied(&'a Denial),
}

impl Caller {
    /// The decision that answered this request, if any authorization ran: the denial, else
    /// the first allow.
    pub fn explanation(&self) -> Option<Explanation<'_>> {
        self.denied_decision()
            .map(Explanation::Denied)
            .or_else(|| self.allowed_decision().map(Explanation::Allowed))
    }

    /// The grant that allowed this request, when a grant did (the audit trail records it as
    /// `additionalEventData.grantId`).
    pub fn allowing_grant_id(&self) -> Option<&str> {
        match self.allowed_decision()? {
            Decision::AllowedByGrant(grant) => Some(&grant.grant_id),
            _ => None,
        }
    }
}

impl fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (decision, action) = match self {
            Self::Allowed(d) => (*d, None),
            Self::Denied(d) => (&d.decision, Some(&*d.action)),
        };
        let action = action.unwrap_or("the action");
        match decision {
            Decision::AllowedByPolicy(reasons) if reasons.is_empty() => {
                f.write_str("allowed: account root (implicit identity-based permissions)")
            }
            Decision::AllowedByPolicy(reasons) => {
                f.write_str("allowed by ")?;
                statements(f, reasons)
            }
            Decision::AllowedByGrant(grant) => write!(f, "allowed by grant {}", grant.grant_id),
            Decision::ExplicitDeny(reasons, _) => {
                f.write_str("explicit deny by ")?;
                statements(f, reasons)
            }
            Decision::ImplicitDeny(_) if matches!(self, Self::Denied(d) if d.never_cross_account) =>
            {
                write!(
                    f,
                    "implicit deny: {action} is never allowed on a key of another account"
                )
            }
            Decision::ImplicitDeny(DenyCause::NoResourcePolicyAllows) => write!(
                f,
                "implicit deny: no key policy statement allows {action} for this caller"
            ),
            Decision::ImplicitDeny(DenyCause::NoIdentityPolicyAllows) => {
                write!(f, "implicit deny: no identity-based policy allows {action}")
            }
            Decision::ImplicitDeny(DenyCause::ExplicitDeny(_)) => {
                write!(f, "implicit deny of {action}")
            }
        }
    }
}

/// `key policy statement 2 (Sid "Admins") and identity policy 1 statement 1`.
fn statements(f: &mut fmt::Formatter<'_>, reasons: &[Reason]) -> fmt::Result {
    for (i, r) in reasons.iter().enumerate() {
        if i > 0 {
            f.write_str(" and ")?;
        }
        let statement = r.statement.saturating_add(1);
        match r.policy_type {
            PolicyType::ResourceBased => write!(f, "key policy statement {statement}")?,
            PolicyType::IdentityBased => write!(
                f,
                "identity policy {} statement {statement}",
                r.policy_index.saturating_add(1)
            )?,
            PolicyType::Grant => f.write_str("a grant")?,
        }
        if let Some(sid) = &r.sid {
            write!(f, " (Sid {:?})", &**sid)?;
        }
    }
    Ok(())
}
