//! Authorization: the single gate every operation passes before it acts.
//!
//! Until key policies and IAM policies are evaluated (the authorization issue), the rule is the
//! one AWS applies to an account with only its root principal and default key policies: a caller
//! may do everything to the keys of its own account, and nothing to another account's keys (a
//! cross-account call needs a key policy that names the caller, which no key can have yet).
//! Operations call [`Kms::authorize`] with the permission name and the key, so the real
//! evaluator replaces this body without touching the operations.

use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::model::KeyRecord;
use crate::service::Kms;

/// The resource a permission is checked against.
pub enum Resource<'a> {
    /// A key (key-policy-controlled actions).
    Key(&'a KeyRecord),
    /// No specific resource (`*`: CreateKey, ListKeys, ListAliases, GenerateRandom, ...).
    Any,
}

impl Kms {
    /// Decides whether `caller` may perform `action` (e.g. `kms:Encrypt`) on `resource`.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: Resource<'_>,
    ) -> KmsResult<()> {
        match resource {
            Resource::Any => Ok(()),
            Resource::Key(key) if key.account_id == caller.account => Ok(()),
            Resource::Key(key) => Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: {action} on resource: {} because no resource-based policy allows the {action} action",
                caller.principal_arn,
                key.arn()
            ))),
        }
    }
}
