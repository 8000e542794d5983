//! Key policy operations: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies, and the default policy.
//!
//! Policies are syntax-checked (by `trent-policy`, the same parser evaluation uses) when stored. Their evaluation belongs to authorization
//! (`authz.rs`), which reads the stored document.

use crate::authz::Resource;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::service::Kms;
use crate::validate;

/// The only policy name KMS accepts from callers.
pub const DEFAULT_POLICY_NAME: &str = "default";
/// Largest key policy KMS accepts.
pub const MAX_KEY_POLICY_BYTES: usize = 32 * 1024;

/// The policy CreateKey attaches when the caller gives none: the account may manage the key
/// through IAM. Printed the way AWS returns it (Jackson's pretty printer).
pub fn default_key_policy(account: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"#
    )
}

/// Checks a key policy document's size, characters and syntax.
pub fn check_key_policy(policy: &str) -> KmsResult<()> {
    validate::length("policy", policy, 1, 131_072)?;
    validate::pattern(
        "policy",
        policy,
        "[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        |c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}'),
    )?;
    if policy.len() > MAX_KEY_POLICY_BYTES {
        return Err(KmsError::LimitExceeded(format!(
            "Policy exceeds the maximum size of {MAX_KEY_POLICY_BYTES} bytes"
        )));
    }
    trent_policy::Policy::parse(policy, trent_policy::PolicyKind::KeyPolicy)
        .map_err(|e| KmsError::MalformedPolicyDocument(e.aws_message()))?;
    Ok(())
}

fn check_policy_name(name: Option<&str>) -> KmsResult<()> {
    match name {
        None | Some(DEFAULT_POLICY_NAME) => Ok(()),
        Some(n) => {
            validate::length("policyName", n, 1, 128)?;
            validate::pattern("policyName", n, "[\\w]+", |c| {
                c.is_alphanumeric() || c == '_'
            })?;
            Err(KmsError::NotFound(format!("No such policy exists: {n}")))
        }
    }
}

impl Kms {
    pub async fn get_key_policy(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        policy_name: Option<&str>,
    ) -> KmsResult<String> {
        self.admit(caller, crate::quotas::RateQuota::GetKeyPolicy)?;
        let key_id = validate::required("keyId", key_id)?;
        check_policy_name(policy_name)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:GetKeyPolicy", Resource::Key(&key))?;
        // A bound user or role since deleted shows as its unique id, as in AWS.
        Ok(self.show_bound_policy(&key.record.policy, &key.record.policy_principals))
    }

    pub async fn put_key_policy(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        policy_name: Option<&str>,
        policy: Option<&str>,
        bypass_policy_lockout_safety_check: Option<bool>,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::PutKeyPolicy)?;
        let key_id = validate::required("keyId", key_id)?;
        let policy = validate::required("policy", policy)?;
        if policy_name == Some("AWS_RAM") {
            return Err(KmsError::Validation(
                "The AWS_RAM policy can only be managed by the RAM service.".into(),
            ));
        }
        check_policy_name(policy_name)?;
        check_key_policy(policy)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        // Absent from the context when the request did not send it (docs/decisions.md).
        let mut context = trent_policy::ConditionContext::new();
        if let Some(bypass) = bypass_policy_lockout_safety_check {
            context.insert(
                "kms:BypassPolicyLockoutSafetyCheck",
                if bypass { "true" } else { "false" },
            );
        }
        self.authorize_with(caller, "kms:PutKeyPolicy", Resource::Key(&key), context)?;
        let mut proposed = key.record.clone();
        proposed.policy = policy.to_string();
        // Its users and roles bound to their unique ids now (`authz/bindings.rs`).
        proposed.policy_principals =
            self.bind_policy_principals(policy, trent_policy::PolicyKind::KeyPolicy);
        self.check_policy_for_key(
            caller,
            &proposed,
            bypass_policy_lockout_safety_check.unwrap_or(false),
        )?;
        let bindings = proposed.policy_principals;
        self.update_key_record(&key.record.key_id, |r| {
            r.policy = policy.to_string();
            r.policy_principals.clone_from(&bindings);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn list_key_policies(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> KmsResult<Vec<String>> {
        self.admit(caller, crate::quotas::RateQuota::ListKeyPolicies)?;
        let key_id = validate::required("keyId", key_id)?;
        validate::limit(limit, 1000, 100)?;
        if let Some(m) = marker {
            validate::length("marker", m, 1, 1024)?;
            return Err(KmsError::InvalidMarker("Invalid marker".into()));
        }
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:ListKeyPolicies", Resource::Key(&key))?;
        Ok(vec![DEFAULT_POLICY_NAME.to_string()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid_and_names_the_account() {
        let p = default_key_policy("111122223333");
        check_key_policy(&p).unwrap();
        assert!(p.contains("arn:aws:iam::111122223333:root"));
    }

    #[test]
    fn malformed_policies_are_refused() {
        for bad in [
            "not json",
            "[]",
            "{}",
            r#"{"Statement": []}"#,
            r#"{"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "kms:*"}]}"#,
            r#"{"Statement": {"Effect": "Allow", "Action": "kms:*"}}"#,
        ] {
            assert!(
                matches!(
                    check_key_policy(bad),
                    Err(KmsError::MalformedPolicyDocument(_))
                ),
                "{bad}"
            );
        }
        let huge = format!(
            r#"{{"Statement": {{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Sid": "{}"}}}}"#,
            "a".repeat(40_000)
        );
        assert!(matches!(
            check_key_policy(&huge),
            Err(KmsError::LimitExceeded(_))
        ));
    }
}
