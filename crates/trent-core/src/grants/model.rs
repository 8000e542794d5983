//! What a grant is: its operations, its encryption-context constraints, and its stored form
//! (which is also the sealed payload of its grant token).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use trent_crypto::spec::WireEnum;

/// Grants per key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

/// Every grant operation AWS defines. Serialized under its AWS name, as it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrantOperation {
    Decrypt,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    ReEncryptFrom,
    ReEncryptTo,
    Sign,
    Verify,
    GetPublicKey,
    CreateGrant,
    RetireGrant,
    DescribeKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateMac,
    VerifyMac,
    DeriveSharedSecret,
    Encapsulate,
    Decapsulate,
}

impl GrantOperation {
    /// In AWS's order (the order of its validation message).
    pub const ALL: [GrantOperation; 19] = [
        Self::Decrypt,
        Self::Encrypt,
        Self::GenerateDataKey,
        Self::GenerateDataKeyWithoutPlaintext,
        Self::ReEncryptFrom,
        Self::ReEncryptTo,
        Self::Sign,
        Self::Verify,
        Self::GetPublicKey,
        Self::CreateGrant,
        Self::RetireGrant,
        Self::DescribeKey,
        Self::GenerateDataKeyPair,
        Self::GenerateDataKeyPairWithoutPlaintext,
        Self::GenerateMac,
        Self::VerifyMac,
        Self::DeriveSharedSecret,
        Self::Encapsulate,
        Self::Decapsulate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decrypt => "Decrypt",
            Self::Encrypt => "Encrypt",
            Self::GenerateDataKey => "GenerateDataKey",
            Self::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Self::ReEncryptFrom => "ReEncryptFrom",
            Self::ReEncryptTo => "ReEncryptTo",
            Self::Sign => "Sign",
            Self::Verify => "Verify",
            Self::GetPublicKey => "GetPublicKey",
            Self::CreateGrant => "CreateGrant",
            Self::RetireGrant => "RetireGrant",
            Self::DescribeKey => "DescribeKey",
            Self::GenerateDataKeyPair => "GenerateDataKeyPair",
            Self::GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
            Self::GenerateMac => "GenerateMac",
            Self::VerifyMac => "VerifyMac",
            Self::DeriveSharedSecret => "DeriveSharedSecret",
            Self::Encapsulate => "Encapsulate",
            Self::Decapsulate => "Decapsulate",
        }
    }

    /// The operation a KMS permission (`kms:Encrypt`) corresponds to, if grants can give it.
    pub fn of_action(action: &str) -> Option<Self> {
        Self::parse(action.strip_prefix("kms:")?)
    }

    /// Position in [`Self::ALL`] (for per-operation tables).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Whether requests for this operation carry an encryption context, so that grant
    /// constraints apply to them.
    pub fn takes_encryption_context(self) -> bool {
        matches!(
            self,
            Self::Decrypt
                | Self::Encrypt
                | Self::GenerateDataKey
                | Self::GenerateDataKeyWithoutPlaintext
                | Self::ReEncryptFrom
                | Self::ReEncryptTo
                | Self::GenerateDataKeyPair
                | Self::GenerateDataKeyPairWithoutPlaintext
                | Self::CreateGrant
        )
    }
}

/// Parsing by name and AWS's "enum value set" message come from the shared wire-name trait.
impl WireEnum for GrantOperation {
    const ALL: &'static [Self] = &GrantOperation::ALL;

    fn as_str(self) -> &'static str {
        GrantOperation::as_str(self)
    }
}

/// The constraints of a grant: on the encryption context, and on the resource an integrated
/// service acts for (`SourceArn`, the request's `aws:SourceArn`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
}

impl GrantConstraints {
    /// Whether the grant has any constraint.
    pub(crate) fn is_empty(&self) -> bool {
        self.kind().is_none() && self.source_arn.is_none()
    }

    /// Whether a request's encryption context satisfies the constraints.
    pub fn allows(&self, context: &BTreeMap<String, String>) -> bool {
        self.encryption_context_equals
            .as_ref()
            .is_none_or(|eq| eq == context)
            && self
                .encryption_context_subset
                .as_ref()
                .is_none_or(|sub| sub.iter().all(|(k, v)| context.get(k) == Some(v)))
    }

    /// Whether `self` (a child grant's constraints) is at least as strict as `parent`'s.
    pub(crate) fn at_least_as_strict_as(&self, parent: &GrantConstraints) -> bool {
        if parent.source_arn.is_some() && self.source_arn != parent.source_arn {
            return false;
        }
        match (
            &parent.encryption_context_equals,
            &parent.encryption_context_subset,
        ) {
            (None, None) => true,
            (Some(eq), _) => self.encryption_context_equals.as_ref() == Some(eq),
            (None, Some(sub)) => {
                let covers =
                    |m: &BTreeMap<String, String>| sub.iter().all(|(k, v)| m.get(k) == Some(v));
                self.encryption_context_equals.as_ref().is_some_and(covers)
                    || self.encryption_context_subset.as_ref().is_some_and(covers)
            }
        }
    }

    /// `kms:GrantConstraintType`.
    pub(crate) fn kind(&self) -> Option<&'static str> {
        if self.encryption_context_equals.is_some() {
            Some("EncryptionContextEquals")
        } else if self.encryption_context_subset.is_some() {
            Some("EncryptionContextSubset")
        } else {
            None
        }
    }

    pub(crate) fn context(&self) -> Option<&BTreeMap<String, String>> {
        self.encryption_context_equals
            .as_ref()
            .or(self.encryption_context_subset.as_ref())
    }
}

/// A grant: its stored form (also the sealed payload of its token).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub v: u32,
    pub grant_id: String,
    pub key_id: String,
    pub key_account: String,
    pub key_region: String,
    #[serde(default)]
    pub name: Option<String>,
    pub grantee_principal: String,
    #[serde(default)]
    pub retiring_principal: Option<String>,
    /// A grant to a service principal (`GranteeServicePrincipal`): then `grantee_principal`
    /// is the same name, which only that service's own calls have as their principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grantee_service_principal: Option<String>,
    /// `RetiringServicePrincipal`: then `retiring_principal` is the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_service_principal: Option<String>,
    /// The unique id (`AIDA…`/`AROA…`) of the user or role `grantee_principal` named at
    /// CreateGrant: only that entity (or a session of that role) uses the grant, so one
    /// deleted and re-created under the same name does not (`authz/bindings.rs`). `None` for
    /// other grantees and for grants stored before bindings existed (matched by ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grantee_principal_id: Option<String>,
    /// The same for `retiring_principal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_principal_id: Option<String>,
    /// Sorted by name, without duplicates.
    pub operations: Vec<GrantOperation>,
    #[serde(default)]
    pub constraints: Option<GrantConstraints>,
    pub issuing_account: String,
    pub created_ms: i64,
}

impl Grant {
    /// Whether `principal` (a grantee or retiring principal of this grant, bound to `bound`)
    /// names the caller whose ARN, role ARN and unique id are given: by ARN, and when bound
    /// by unique id as well.
    pub(crate) fn names(
        principal: &str,
        bound: Option<&str>,
        caller_arn: &str,
        caller_role_arn: Option<&str>,
        caller_unique_id: Option<&str>,
    ) -> bool {
        (principal == caller_arn || caller_role_arn == Some(principal))
            && bound.is_none_or(|id| caller_unique_id == Some(id))
    }

    pub fn has(&self, operation: GrantOperation) -> bool {
        self.operations.contains(&operation)
    }

    /// Whether the grant gives `operation` for a request with this encryption context, made
    /// for the resource `source_arn` (`aws:SourceArn`; a `SourceArn` constraint never applies
    /// to RetireGrant).
    pub fn allows(
        &self,
        operation: GrantOperation,
        context: &BTreeMap<String, String>,
        source_arn: Option<&str>,
    ) -> bool {
        let constraints = self.constraints.as_ref();
        self.has(operation)
            && (!operation.takes_encryption_context()
                || constraints.is_none_or(|c| c.allows(context)))
            && (operation == GrantOperation::RetireGrant
                || constraints
                    .and_then(|c| c.source_arn.as_deref())
                    .is_none_or(|arn| source_arn == Some(arn)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operations_keep_their_aws_names_in_storage() {
        for op in GrantOperation::ALL {
            assert_eq!(GrantOperation::parse(op.as_str()), Some(op));
            assert_eq!(
                serde_json::to_string(&op).unwrap(),
                format!("\"{}\"", op.as_str())
            );
            assert_eq!(GrantOperation::ALL[op.index()], op);
        }
        assert_eq!(
            GrantOperation::of_action("kms:ReEncryptFrom"),
            Some(GrantOperation::ReEncryptFrom)
        );
        assert_eq!(GrantOperation::of_action("kms:PutKeyPolicy"), None);
    }

    #[test]
    fn constraints_equals_and_subset() {
        let eq = GrantConstraints {
            encryption_context_equals: Some(map(&[("a", "1")])),
            encryption_context_subset: None,
            source_arn: None,
        };
        assert!(eq.allows(&map(&[("a", "1")])));
        assert!(!eq.allows(&map(&[("a", "1"), ("b", "2")])));
        assert!(!eq.allows(&map(&[])));
        let sub = GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some(map(&[("a", "1")])),
            source_arn: None,
        };
        assert!(sub.allows(&map(&[("a", "1"), ("b", "2")])));
        assert!(!sub.allows(&map(&[("a", "2")])));
        assert!(!sub.allows(&map(&[("A", "1")])), "keys are case-sensitive");
    }

    #[test]
    fn delegated_constraints_must_be_at_least_as_strict() {
        let none = GrantConstraints::default();
        let sub_a = GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some(map(&[("a", "1")])),
            source_arn: None,
        };
        let sub_ab = GrantConstraints {
            encryption_context_equals: None,
            encryption_context_subset: Some(map(&[("a", "1"), ("b", "2")])),
            source_arn: None,
        };
        let eq_ab = GrantConstraints {
            encryption_context_equals: Some(map(&[("a", "1"), ("b", "2")])),
            encryption_context_subset: None,
            source_arn: None,
        };
        assert!(sub_a.at_least_as_strict_as(&none));
        assert!(
            sub_ab.at_least_as_strict_as(&sub_a),
            "adding subset pairs narrows"
        );
        assert!(
            eq_ab.at_least_as_strict_as(&sub_a),
            "subset to equals narrows"
        );
        assert!(!none.at_least_as_strict_as(&sub_a));
        assert!(
            !sub_a.at_least_as_strict_as(&eq_ab),
            "equals to subset widens"
        );
    }
}
