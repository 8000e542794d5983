//! AWS managed policies that Trent knows (read-only, the same in every account, ARN
//! `arn:aws:iam::aws:policy/<path><name>`), and the service-linked role KMS creates for
//! multi-Region keys (seed 000).
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
    /// exists (CreateKey of a multi-Region primary). Creating it needs
    /// `iam:CreateServiceLinkedRole`, as in AWS; once it exists nothing is asked.
    pub(crate) async fn ensure_multi_region_role(&self, caller: &Caller) -> KmsResult<()> {
        if self
            .iam
            .account(&caller.account)
            .roles
            .contains_key(MRK_ROLE_NAME)
        {
            return Ok(());
        }
        let role_arn = super::entity_arn(&caller.account, "role", MRK_ROLE_PATH, MRK_ROLE_NAME);
        self.authorize_iam(caller, "iam:CreateServiceLinkedRole", &role_arn)
            .map_err(|e| KmsError::AccessDenied(e.to_string()))?;
        let role = Role {
            v: 1,
            name: MRK_ROLE_NAME.into(),
            path: MRK_ROLE_PATH.into(),
            id: unique_id("AROA").map_err(|e| KmsError::Internal(e.to_string()))?,
            created_ms: self.clock.now_ms(),
            trust_policy: format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{MRK_SERVICE}"}},"Action":"sts:AssumeRole"}}]}}"#
            ),
            description: Some(MRK_ROLE_DESCRIPTION.into()),
            max_session_duration: 3600,
            tags: Vec::new(),
            inline: Default::default(),
            attached: [MRK_POLICY_ARN.to_string()].into_iter().collect(),
        };
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            // Another request may have created it meanwhile: creating it is idempotent.
            if iam.roles.contains_key(MRK_ROLE_NAME) {
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
