//! IAM: users, groups, roles, inline and managed policies, access keys — the identities KMS
//! authorizes, managed through the real IAM API shapes.
//!
//! All IAM state is small and read on every authorization, so it lives in memory in an
//! [`IamDirectory`] (one immutable snapshot per account, replaced on write) with each principal's
//! effective identity policies already parsed. Writes go to the store first (`records.rs` owns
//! the JSON document form), then replace the snapshot, so a change is visible to the next
//! request on this node.

pub mod aws_managed;
mod directory;
mod error;
mod groups;
mod managed_policies;
mod policies;
pub mod records;
mod roles;
mod service_linked;
mod users;

pub use directory::{AccountIam, IamDirectory};
pub use error::{IamError, IamResult};
pub use policies::Entity;
pub use records::{Group, ManagedPolicy, PolicyVersion, Role, User};
pub use roles::CreateRoleInput;
pub use service_linked::{DeletionStatus, DeletionTasks};
pub(crate) use users::{check_identity_policy, check_name, check_path};

use crate::caller::Caller;
use crate::service::Kms;

/// Where the IAM entity lives, for ARNs: `arn:aws:iam::ACCOUNT:<kind><path><name>`.
/// IAM's default entity quotas per account (AWS's defaults). They also bound the memory an
/// account's IAM snapshot takes, which every IAM write copies.
pub const USERS_PER_ACCOUNT: usize = 5000;
pub const ROLES_PER_ACCOUNT: usize = 1000;
pub const GROUPS_PER_ACCOUNT: usize = 300;
pub const POLICIES_PER_ACCOUNT: usize = 1500;

/// IAM's answer past an entity quota.
pub(crate) fn check_quota(count: usize, quota: usize, name: &str) -> IamResult<()> {
    if count >= quota {
        Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for {name}: {quota}"
        )))
    } else {
        Ok(())
    }
}

pub fn entity_arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

impl Kms {
    /// Authorizes an IAM or STS action on `resource` by the caller's identity policies (the
    /// account root may do everything in its account).
    pub fn authorize_iam(&self, caller: &Caller, action: &str, resource: &str) -> IamResult<()> {
        let decision = self.decide_identity(caller, action, resource);
        if decision.is_allowed() {
            caller.note_decision(decision, action, None);
            Ok(())
        } else {
            let message = decision.denial_message(&caller.principal_arn, action, resource);
            caller.note_decision(decision, action, None);
            Err(IamError::AccessDenied(message))
        }
    }
}
