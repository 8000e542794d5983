//! AWS managed policies that Trent knows (read-only, the same in every account, ARN
//! `arn:aws:iam::aws:policy/<path><name>`), and the service-linked roles KMS creates (seed
//! 000): for multi-Region keys with the first primary, for custom key stores with the first
//! store.
//!
//! Only the policies a Trent feature uses are here: today the permissions policy of
//! `AWSServiceRoleForKeyManagementServiceMultiRegionKeys`, with its version history (v1
//! 2021-06-16, v2 — the default — 2024-11-13, which added the statement id). They cannot be
//! changed, deleted or attached by customers (a service role's policy is attachable only to its
//! role).

use std::sync::LazyLock;

use super::error::IamError;
use super::records::{ManagedPolicy, PolicyVersion, Role};
use super::users::{put, unique_id};
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::service::Kms;

/// The service principal of KMS's multi-Region key service-linked role.
pub const MRK_SERVICE: &str = "mrk.kms.amazonaws.com";
/// Its role name.
pub const MRK_ROLE_NAME: &str = "AWSServiceRoleForKeyManagementServiceMultiRegionKeys";
/// Its role path.
pub const MRK_ROLE_PATH: &str = "/aws-service-role/mrk.kms.amazonaws.com/";
/// Its AWS managed permissions policy.
pub const MRK_POLICY_ARN: &str = "arn:aws:iam::aws:policy/aws-service-role/AWSKeyManagementServiceMultiRegionKeysServiceRolePolicy";
const MRK_POLICY_NAME: &str = "AWSKeyManagementServiceMultiRegionKeysServiceRolePolicy";
const MRK_ROLE_DESCRIPTION: &str =
    "Enables access to AWS services and resources required for AWS KMS Multi-Region Keys";

/// The service principal of KMS's custom key store service-linked role.
pub const CKS_SERVICE: &str = "cks.kms.amazonaws.com";
/// Its role name.
pub const CKS_ROLE_NAME: &str = "AWSServiceRoleForKeyManagementServiceCustomKeyStores";
/// Its role path.
pub const CKS_ROLE_PATH: &str = "/aws-service-role/cks.kms.amazonaws.com/";
/// Its AWS managed permissions policy.
pub const CKS_POLICY_ARN: &str = "arn:aws:iam::aws:policy/aws-service-role/AWSKeyManagementServiceCustomKeyStoresServiceRolePolicy";
const CKS_POLICY_NAME: &str = "AWSKeyManagementServiceCustomKeyStoresServiceRolePolicy";
const CKS_DESCRIPTION: &str =
    "Enables access to AWS services and resources required for AWS KMS custom key stores";
/// 2018-11-14T00:00:00Z and 2023-11-10T00:00:00Z, in milliseconds (v1 and v2).
const CKS_V1_MS: i64 = 1_542_153_600_000;
const CKS_V2_MS: i64 = 1_699_574_400_000;

/// A service-linked role KMS creates in an account the first time a feature needs it.
pub(crate) struct KmsServiceRole {
    service: &'static str,
    name: &'static str,
    path: &'static str,
    policy_arn: &'static str,
    description: &'static str,
}

/// Multi-Region keys' role (the first multi-Region primary creates it).
pub(crate) const MRK_ROLE: KmsServiceRole = KmsServiceRole {
    service: MRK_SERVICE,
    name: MRK_ROLE_NAME,
    path: MRK_ROLE_PATH,
    policy_arn: MRK_POLICY_ARN,
    description: MRK_ROLE_DESCRIPTION,
};

/// Custom key stores' role (the first custom key store creates it).
pub(crate) const CKS_ROLE: KmsServiceRole = KmsServiceRole {
    service: CKS_SERVICE,
    name: CKS_ROLE_NAME,
    path: CKS_ROLE_PATH,
    policy_arn: CKS_POLICY_ARN,
    description: CKS_DESCRIPTION,
};

/// 2021-06-16T00:00:00Z and 2024-11-13T00:00:00Z, in milliseconds.
const V1_MS: i64 = 1_623_801_600_000;
const V2_MS: i64 = 1_731_456_000_000;

static POLICIES: LazyLock<Vec<ManagedPolicy>> = LazyLock::new(|| {
    vec![ManagedPolicy {
        v: 1,
        name: MRK_POLICY_NAME.into(),
        path: "/aws-service-role/".into(),
        // AWS's policy ids are fixed per policy; this one is Trent's stand-in.
        id: "ANPAZKAPJZG4MW35THVLF".into(),
        created_ms: V1_MS,
        updated_ms: V2_MS,
        description: Some(
            "Enables AWS KMS to synchronize the shared properties of multi-Region keys".into(),
        ),
        default_version: "v2".into(),
        versions: vec![
            PolicyVersion {
                id: "v1".into(),
                document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:SynchronizeMultiRegionKey"],"Resource":"*"}]}"#.into(),
                created_ms: V1_MS,
            },
            PolicyVersion {
                id: "v2".into(),
                document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"KMSSynchronizeMultiRegionKey","Effect":"Allow","Action":["kms:SynchronizeMultiRegionKey"],"Resource":"*"}]}"#.into(),
                created_ms: V2_MS,
            },
        ],
        next_version: 3,
    },
    ManagedPolicy {
        v: 1,
        name: CKS_POLICY_NAME.into(),
        path: "/aws-service-role/".into(),
        // Trent's stand-in policy id, fixed like AWS's.
        id: "ANPAZKAPJZG4CKS7STORE".into(),
        created_ms: CKS_V1_MS,
        updated_ms: CKS_V2_MS,
        description: Some(CKS_DESCRIPTION.into()),
        default_version: "v2".into(),
        versions: vec![
            PolicyVersion {
                id: "v1".into(),
                document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudhsm:Describe*","ec2:CreateNetworkInterface","ec2:AuthorizeSecurityGroupIngress","ec2:CreateSecurityGroup","ec2:DescribeSecurityGroups","ec2:RevokeSecurityGroupEgress","ec2:DeleteSecurityGroup"],"Resource":"*"}]}"#.into(),
                created_ms: CKS_V1_MS,
            },
            PolicyVersion {
                id: "v2".into(),
                document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudhsm:Describe*","ec2:CreateNetworkInterface","ec2:AuthorizeSecurityGroupIngress","ec2:CreateSecurityGroup","ec2:DescribeSecurityGroups","ec2:RevokeSecurityGroupEgress","ec2:DeleteSecurityGroup","ec2:DescribeVpcs","ec2:DescribeNetworkAcls","ec2:DescribeNetworkInterfaces"],"Resource":"*"}]}"#.into(),
                created_ms: CKS_V2_MS,
            },
        ],
        next_version: 3,
    }]
});

/// The AWS managed policy with ARN `arn`, if Trent knows it.
pub fn policy(arn: &str) -> Option<&'static ManagedPolicy> {
    let rest = arn.strip_prefix("arn:aws:iam::aws:policy")?;
    POLICIES
        .iter()
        .find(|p| rest.strip_prefix(p.path.as_str()) == Some(p.name.as_str()))
}

/// Whether `p` is one of these AWS managed policies.
pub fn is_aws_managed(p: &ManagedPolicy) -> bool {
    POLICIES.iter().any(|a| a.id == p.id && a.name == p.name)
}

/// The refusal of a change to an AWS managed policy or of attaching a service role's policy
/// to anything but its role.
pub(crate) fn not_attachable() -> IamError {
    IamError::PolicyNotAttachable("Cannot attach a Service Role Policy to a Customer Role.".into())
}

pub(crate) fn unmodifiable(arn: &str) -> IamError {
    IamError::UnmodifiableEntity(format!(
        "Policy {arn} is an AWS managed policy and cannot be modified."
    ))
}

impl Kms {
    /// Creates KMS's multi-Region key service-linked role in the caller's account unless it
    /// exists (CreateKey of a multi-Region primary).
    pub(crate) async fn ensure_multi_region_role(&self, caller: &Caller) -> KmsResult<()> {
        self.ensure_service_role(caller, &MRK_ROLE).await
    }

    /// Creates the service-linked role `spec` in the caller's account unless it exists.
    /// Creating it needs `iam:CreateServiceLinkedRole`, as in AWS; once it exists nothing is
    /// asked.
    pub(crate) async fn ensure_service_role(
        &self,
        caller: &Caller,
        spec: &KmsServiceRole,
    ) -> KmsResult<()> {
        if self
            .iam
            .account(&caller.account)
            .roles
            .contains_key(spec.name)
        {
            return Ok(());
        }
        let role_arn = super::entity_arn(&caller.account, "role", spec.path, spec.name);
        self.authorize_iam(caller, "iam:CreateServiceLinkedRole", &role_arn)
            .map_err(|e| KmsError::AccessDenied(e.to_string()))?;
        let role = Role {
            v: 1,
            name: spec.name.into(),
            path: spec.path.into(),
            id: unique_id("AROA").map_err(|e| KmsError::Internal(e.to_string()))?,
            created_ms: self.clock.now_ms(),
            trust_policy: format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
                spec.service
            ),
            // Its trust policy names a service only: nothing to bind.
            trust_principals: Default::default(),
            description: Some(spec.description.into()),
            max_session_duration: 3600,
            tags: Vec::new(),
            inline: Default::default(),
            attached: [spec.policy_arn.to_string()].into_iter().collect(),
        };
        let account = caller.account.clone();
        let name = spec.name;
        self.iam_write(&caller.account, |iam| {
            // Another request may have created it meanwhile: creating it is idempotent.
            if iam.roles.contains_key(name) {
                return Ok(((), Vec::new()));
            }
            iam.roles.insert(role.name.clone(), role.clone());
            Ok(((), vec![put(&account, &role)?]))
        })
        .await
        .map_err(|e| match e {
            IamError::AccessDenied(m) => KmsError::AccessDenied(m),
            e => KmsError::Internal(e.to_string()),
        })
    }
}
