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
//!
//! For the caller: [`RecentDenials`] keeps the last denials (bounded, for an hour) by request
//! id, and [`Kms::explain_denial`] answers the Trent extension operation `ExplainDecision`
//! (authorized by `trent:ExplainDecision`): why the caller's *own* denied request was denied,
//! with the deciding statements only of policies the caller may read now — the key policy if
//! it may `kms:GetKeyPolicy` on the key, its identity policies if it may
//! `iam:SimulatePrincipalPolicy` on itself. Anything else is said at the level AWS's
//! `AccessDeniedException` message already says it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use trent_policy::{DenyCause, PolicyType, Reason};

use super::{Access, Decision, Resource};
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::service::Kms;

/// At most this many denials are kept for `ExplainDecision`.
pub const KEPT_DENIALS: usize = 4096;
/// A denial is kept this long (milliseconds).
pub const KEPT_FOR_MS: i64 = 3_600_000;

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

/// One kept denial.
#[derive(Debug)]
struct Kept {
    request_id: String,
    principal_arn: String,
    at_ms: i64,
    denial: Denial,
    key_arn: Option<Arc<str>>,
}

/// The last denials, by request id, for their callers to ask about. Bounded by count
/// ([`KEPT_DENIALS`], oldest dropped first) and age ([`KEPT_FOR_MS`]).
#[derive(Debug, Default)]
pub struct RecentDenials(Mutex<KeptDenials>);

/// The kept denials by request id, and in the order they came.
type KeptDenials = (HashMap<String, Arc<Kept>>, VecDeque<Arc<Kept>>);

impl RecentDenials {
    fn keep(&self, kept: Kept) {
        let Ok(mut guard) = self.0.lock() else {
            return;
        };
        let (by_id, order) = &mut *guard;
        while order.len() >= KEPT_DENIALS {
            if let Some(old) = order.pop_front() {
                by_id.remove(&old.request_id);
            }
        }
        let kept = Arc::new(kept);
        by_id.insert(kept.request_id.clone(), kept.clone());
        order.push_back(kept);
    }

    fn get(&self, request_id: &str) -> Option<Arc<Kept>> {
        self.0.lock().ok()?.0.get(request_id).cloned()
    }
}

/// A statement that took part in a denial, as the caller may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainedStatement {
    /// `KeyPolicy` or `IdentityPolicy`.
    pub policy_type: &'static str,
    /// For identity policies: the policy's position (from 1) in the caller's effective list.
    pub policy_index: Option<usize>,
    /// The statement's position (from 1) in its policy.
    pub statement: usize,
    pub sid: Option<String>,
}

/// Why the caller's own request was denied (`ExplainDecision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenialExplanation {
    pub request_id: String,
    pub action: String,
    /// The key, when it is of the caller's account (for another account's key the caller
    /// named it itself, perhaps by an alias that must not be resolved for it).
    pub key_arn: Option<String>,
    /// `ExplicitDeny` or `ImplicitDeny`.
    pub decision: &'static str,
    /// `KeyPolicy`, `IdentityPolicy` or `CrossAccountRule`: what decided.
    pub decided_by: &'static str,
    /// The explanation in words.
    pub reason: String,
    /// For an implicit deny: what would have allowed the call.
    pub needed: Option<String>,
    /// The deciding Deny statements the caller may read.
    pub statements: Vec<ExplainedStatement>,
    /// Deciding statements left out because the caller may not read their policy.
    pub withheld_statements: usize,
    /// When the request was made (epoch milliseconds).
    pub at_ms: i64,
}

impl Kms {
    /// Keeps the denial that answered request `request_id` of `caller`, if any (called by the
    /// edge once a request is answered; an allowed request costs one `OnceLock` read).
    pub fn keep_denial(&self, request_id: &str, caller: &Caller) {
        let Some(denial) = caller.denied_decision() else {
            return;
        };
        self.denials.keep(Kept {
            request_id: request_id.to_string(),
            principal_arn: caller.principal_arn.clone(),
            at_ms: self.clock.now_ms(),
            denial: denial.clone(),
            key_arn: caller.key_arn().cloned(),
        });
    }

    /// `ExplainDecision`: why `caller`'s request `request_id` was denied. Only the caller's
    /// own denials of the last hour are explained; any other id — unknown, expired, allowed,
    /// or another principal's — is the same `NotFoundException`, so nobody learns of
    /// requests not their own.
    pub async fn explain_denial(
        &self,
        caller: &Caller,
        request_id: Option<&str>,
    ) -> KmsResult<DenialExplanation> {
        let request_id = crate::validate::required("requestId", request_id)?;
        crate::validate::length("requestId", request_id, 1, 128)?;
        let decision = self.decide_identity(caller, "trent:ExplainDecision", "*");
        if !decision.is_allowed() {
            let message =
                decision.denial_message(&caller.principal_arn, "trent:ExplainDecision", "*");
            caller.note_decision(decision, "trent:ExplainDecision", None);
            return Err(KmsError::AccessDenied(message));
        }
        caller.note_decision(decision, "trent:ExplainDecision", None);
        let now = self.clock.now_ms();
        let kept = self
            .denials
            .get(request_id)
            .filter(|k| k.principal_arn == caller.principal_arn)
            .filter(|k| now.saturating_sub(k.at_ms) <= KEPT_FOR_MS)
            .ok_or_else(|| {
                KmsError::NotFound(format!(
                    "No request {request_id} of yours was denied in the last hour."
                ))
            })?;
        let action = kept.denial.action.to_string();
        let own_key = kept
            .key_arn
            .as_deref()
            .filter(|arn| arn.split(':').nth(4) == Some(caller.account.as_str()));
        let key_named = if kept.key_arn.is_some() {
            "this key"
        } else {
            "this resource"
        };

        // Which policies the caller may read now.
        let may_read_key_policy = match own_key {
            Some(arn) => self.may_read_key_policy(caller, arn).await,
            None => false,
        };
        let own_arn = if caller.is_role_session() {
            caller.principal_role_arn().to_string()
        } else {
            caller.principal_arn.clone()
        };
        let may_read_identity = caller.is_root()
            || self
                .decide_identity(caller, "iam:SimulatePrincipalPolicy", &own_arn)
                .is_allowed();

        let (decision, decided_by, reason, needed, reasons): (_, _, _, _, &[Reason]) = match &kept
            .denial
            .decision
        {
            Decision::ExplicitDeny(reasons, t) => {
                let (by, whose) = match t {
                    PolicyType::ResourceBased => ("KeyPolicy", "the key policy"),
                    _ => ("IdentityPolicy", "an identity-based policy of yours"),
                };
                (
                    "ExplicitDeny",
                    by,
                    format!(
                        "An explicit Deny in {whose} denied {action}; a Deny overrides every Allow and every grant."
                    ),
                    None,
                    reasons,
                )
            }
            Decision::ImplicitDeny(_) if kept.denial.never_cross_account => (
                "ImplicitDeny",
                "CrossAccountRule",
                format!(
                    "{action} is never allowed on a key of another account, whatever the policies say."
                ),
                Some(format!(
                    "Only principals of the key's own account can perform {action}."
                )),
                &[],
            ),
            Decision::ImplicitDeny(DenyCause::NoResourcePolicyAllows) => (
                "ImplicitDeny",
                "KeyPolicy",
                format!("No statement of the key policy allows {action} for you."),
                Some(format!(
                    "The key policy must allow {action} for your principal, or for your account (arn:aws:iam::{}:root) together with an IAM policy of yours allowing {action} on {key_named}; or a grant must give you the operation.",
                    caller.account
                )),
                &[],
            ),
            Decision::ImplicitDeny(_) => (
                "ImplicitDeny",
                "IdentityPolicy",
                format!("None of your identity-based policies allows {action} on {key_named}."),
                Some(format!(
                    "An IAM policy of yours must allow {action} on {key_named}{}.",
                    if kept.key_arn.is_some() {
                        " (the key policy delegates to your account), or a grant must give you the operation"
                    } else {
                        ""
                    }
                )),
                &[],
            ),
            Decision::AllowedByPolicy(_) | Decision::AllowedByGrant(_) => {
                return Err(KmsError::NotFound(format!(
                    "No request {request_id} of yours was denied in the last hour."
                )));
            }
        };
        let mut statements = Vec::new();
        let mut withheld_statements = 0;
        for r in reasons {
            let (visible, policy_type, policy_index) = match r.policy_type {
                PolicyType::ResourceBased => (may_read_key_policy, "KeyPolicy", None),
                PolicyType::IdentityBased => (
                    may_read_identity,
                    "IdentityPolicy",
                    Some(r.policy_index.saturating_add(1)),
                ),
                PolicyType::Grant => (false, "Grant", None),
            };
            if visible {
                statements.push(ExplainedStatement {
                    policy_type,
                    policy_index,
                    statement: r.statement.saturating_add(1),
                    sid: r.sid.as_deref().map(str::to_string),
                });
            } else {
                withheld_statements += 1;
            }
        }
        Ok(DenialExplanation {
            request_id: request_id.to_string(),
            action,
            key_arn: own_key.map(str::to_string),
            decision,
            decided_by,
            reason,
            needed,
            statements,
            withheld_statements,
            at_ms: kept.at_ms,
        })
    }

    /// Whether `caller` may `kms:GetKeyPolicy` on its own account's key `arn`, decided as a
    /// real request would be (without recording it as this request's decision).
    async fn may_read_key_policy(&self, caller: &Caller, arn: &str) -> bool {
        let Some((_, key_id)) = arn.split_once(":key/") else {
            return false;
        };
        let Ok(Some(key)) = self.load_key(key_id).await else {
            return false;
        };
        key.phantom_not_found().is_none()
            && key.arn() == arn
            && self
                .decide(
                    caller,
                    &Access::new("kms:GetKeyPolicy", Resource::Key(&key)),
                )
                .is_ok_and(|d| d.is_allowed())
    }
}
