//! Policy principals bound to IAM unique ids, as AWS binds them (IAM User Guide, "Unique
//! identifiers"; policy-semantics §1.2): a key policy, grant or trust policy naming an IAM user
//! or role names the entity that held the ARN when it was set. Evaluation matches the bound
//! principal only for a caller with that unique id, so a user or role deleted and re-created
//! under the same name does not regain access; the policy is then shown with the old unique id
//! (`AIDA…`/`AROA…`) where the ARN was.
//!
//! The hot path does no lookup: bindings are computed once when a policy is set (here, from the
//! IAM snapshot), stored with it (`KeyRecord::policy_principals`, a role's `trust_principals`),
//! and applied to the parsed policy when it is loaded (`trent_policy::Policy::bind_principals`);
//! the caller's unique id is on its principal already. Showing a policy (GetKeyPolicy, GetRole)
//! reads the current IAM snapshot to tell which bound entities are gone.

use trent_policy::{Policy, PolicyKind, PrincipalValue};

use crate::model::PrincipalBindings;
use crate::service::Kms;

/// The account of a principal ARN (`arn:aws:iam::ACCOUNT:…`).
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// `text` parsed as `kind` with its user and role principals bound by `bindings`. Entries
/// without a binding stay unbound (compared by ARN: policies stored before bindings existed).
pub(crate) fn parse_bound(
    text: &str,
    kind: PolicyKind,
    bindings: &PrincipalBindings,
) -> Result<Policy, trent_policy::PolicyError> {
    let mut policy = Policy::parse(text, kind)?;
    if !bindings.is_empty() {
        policy.bind_principals(|arn| bindings.get(arn).cloned());
    }
    Ok(policy)
}

impl Kms {
    /// The unique id of the user or role named by `arn` now, if it exists in a Trent account.
    pub(crate) fn principal_unique_id(&self, arn: &str) -> Option<String> {
        let account = account_of(arn);
        self.iam.account(account).unique_id_of(account, arn)
    }

    /// The bindings of every IAM user and role principal of the policy `text` (of `kind`), from
    /// the current IAM snapshot. Principals that do not exist are left out (callers refuse
    /// them before storing: key policies and grants must name existing principals).
    pub(crate) fn bind_policy_principals(&self, text: &str, kind: PolicyKind) -> PrincipalBindings {
        match Policy::parse(text, kind) {
            Ok(policy) => self.bind_parsed_principals(&policy),
            Err(_) => PrincipalBindings::new(),
        }
    }

    /// [`Self::bind_policy_principals`] of a policy already parsed (a trust policy, which
    /// `sts::parse_trust_policy` parses its own way).
    pub(crate) fn bind_parsed_principals(&self, policy: &Policy) -> PrincipalBindings {
        let mut bindings = PrincipalBindings::new();
        for (_, entry) in policy.principal_entries() {
            if let PrincipalValue::User(arn) | PrincipalValue::Role(arn) = entry.value()
                && let Some(id) = self.principal_unique_id(arn)
            {
                bindings.insert(arn.clone(), id);
            }
        }
        bindings
    }

    /// What a principal bound as `arn` → `id` is shown as now: `None` while the entity with
    /// that id still has that ARN; else its current ARN (renamed), or the bare unique id
    /// (deleted, possibly re-created under the same name with a new id), as AWS shows it.
    pub(crate) fn shown_principal(&self, arn: &str, id: &str) -> Option<String> {
        if self.principal_unique_id(arn).as_deref() == Some(id) {
            return None;
        }
        let account = account_of(arn);
        Some(
            self.iam
                .account(account)
                .arn_of_unique_id(account, id)
                .unwrap_or_else(|| id.to_string()),
        )
    }

    /// A stored policy as GetKeyPolicy / GetRole show it: the text as set, with each bound
    /// principal whose entity is gone written as its unique id (only the principal values;
    /// everything else as written).
    pub(crate) fn show_bound_policy(&self, text: &str, bindings: &PrincipalBindings) -> String {
        let shown: PrincipalBindings = bindings
            .iter()
            .filter_map(|(arn, id)| Some((arn.clone(), self.shown_principal(arn, id)?)))
            .collect();
        if shown.is_empty() {
            return text.to_string();
        }
        trent_policy::rewrite_principal_values(text, |value| shown.get(value).cloned())
    }
}
