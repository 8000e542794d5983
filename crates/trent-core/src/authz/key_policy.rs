//! Checks on a key policy about to be set: every principal it names exists, and (unless the
//! caller bypasses it) it does not lock the caller out of changing it again. The principals of
//! a new grant must exist too.

use std::collections::HashMap;

use trent_policy::{Policy, PolicyKind};

use super::{Access, Resource};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::model::KeyRecord;
use crate::service::Kms;

impl Kms {
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
        // Decide under the *new* policy: a key value carrying it, not the cached key.
        let candidate = LoadedKey::new(key.clone(), [0; 16], HashMap::new());
        // The later call it must still allow is a plain PutKeyPolicy: no bypass parameter,
        // so no `kms:BypassPolicyLockoutSafetyCheck` in its context.
        let access = Access::new("kms:PutKeyPolicy", Resource::Key(&candidate));
        if self.decide(caller, &access)?.is_allowed() {
            Ok(())
        } else {
            Err(KmsError::MalformedPolicyDocument(
                "The new key policy will not allow you to update the key policy in the future."
                    .into(),
            ))
        }
    }

    /// A grantee or retiring principal of a new grant: an account Trent hosts, or a user, role
    /// or role session of one (AWS refuses principals it cannot find with
    /// `InvalidArnException`). Checked only once the caller may create the grant, so it tells
    /// nobody else which principals exist.
    pub(crate) fn check_grant_principal(&self, principal: &str) -> KmsResult<()> {
        use trent_policy::PrincipalValue as V;
        let exists = V::parse_aws(principal).is_some_and(|value| {
            let account = match &value {
                V::Account(a) => a.as_str(),
                V::Everyone => return false,
                _ => principal.split(':').nth(4).unwrap_or_default(),
            };
            self.known_account(account) && self.principal_exists(&value)
        });
        if exists {
            Ok(())
        } else {
            Err(KmsError::InvalidArn(format!(
                "{principal} is not a valid principal"
            )))
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
