//! Customer managed policies and their versions: CreatePolicy, GetPolicy, ListPolicies,
//! DeletePolicy and the policy-version operations.

use trent_policy::IdentityPolicyType;

use super::directory::AccountIam;
use super::entity_arn;
use super::error::{IamError, IamResult};
use super::records::{IamRecord, KIND_POLICY, ManagedPolicy, PolicyVersion};
use super::users::{Change, check_identity_policy, check_name, check_path, put, unique_id};
use crate::caller::Caller;
use crate::service::Kms;

impl Kms {
    pub async fn iam_create_policy(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        document: &str,
        description: Option<&str>,
    ) -> IamResult<ManagedPolicy> {
        check_name("policyName", name, 128)?;
        let path = path.unwrap_or("/");
        check_path(path)?;
        check_identity_policy(document, IdentityPolicyType::Managed)?;
        self.authorize_iam(
            caller,
            "iam:CreatePolicy",
            &entity_arn(&caller.account, "policy", path, name),
        )?;
        let now = self.clock.now_ms();
        let policy = ManagedPolicy {
            v: 1,
            name: name.to_string(),
            path: path.to_string(),
            id: unique_id("ANPA")?,
            created_ms: now,
            updated_ms: now,
            description: description.map(str::to_string),
            default_version: "v1".into(),
            versions: vec![PolicyVersion {
                id: "v1".into(),
                document: document.to_string(),
                created_ms: now,
            }],
            next_version: 2,
        };
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            if iam.policies.contains_key(name) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "A policy called {name} already exists. Duplicate names are not allowed."
                )));
            }
            super::check_quota(
                iam.policies.len(),
                super::POLICIES_PER_ACCOUNT,
                "PoliciesPerAccount",
            )?;
            iam.policies.insert(name.to_string(), policy.clone());
            Ok((policy.clone(), vec![put(&account, &policy)?]))
        })
        .await
    }

    /// The policy and how many entities it is attached to.
    pub async fn iam_get_policy(
        &self,
        caller: &Caller,
        policy_arn: &str,
    ) -> IamResult<(ManagedPolicy, usize)> {
        let snapshot = self.iam.account(&caller.account);
        let policy = snapshot
            .policy_by_arn(&caller.account, policy_arn)
            .cloned()
            .ok_or_else(|| no_policy(policy_arn))?;
        self.authorize_iam(caller, "iam:GetPolicy", policy_arn)?;
        Ok((policy, attachment_count(&snapshot, policy_arn)))
    }

    pub async fn iam_list_policies(
        &self,
        caller: &Caller,
        only_attached: bool,
    ) -> IamResult<Vec<(ManagedPolicy, usize)>> {
        self.authorize_iam(
            caller,
            "iam:ListPolicies",
            &entity_arn(&caller.account, "policy", "/", "*"),
        )?;
        let snapshot = self.iam.account(&caller.account);
        Ok(snapshot
            .policies
            .values()
            .map(|p| {
                let arn = entity_arn(&caller.account, "policy", &p.path, &p.name);
                (p.clone(), attachment_count(&snapshot, &arn))
            })
            .filter(|(_, n)| !only_attached || *n > 0)
            .collect())
    }

    pub async fn iam_delete_policy(&self, caller: &Caller, policy_arn: &str) -> IamResult<()> {
        let snapshot = self.iam.account(&caller.account);
        let policy = snapshot
            .policy_by_arn(&caller.account, policy_arn)
            .cloned()
            .ok_or_else(|| no_policy(policy_arn))?;
        self.authorize_iam(caller, "iam:DeletePolicy", policy_arn)?;
        if super::aws_managed::is_aws_managed(&policy) {
            return Err(super::aws_managed::unmodifiable(policy_arn));
        }
        if attachment_count(&snapshot, policy_arn) > 0 {
            return Err(IamError::DeleteConflict(
                "Cannot delete a policy attached to entities.".into(),
            ));
        }
        if policy.versions.len() > 1 {
            return Err(IamError::DeleteConflict("This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into()));
        }
        self.iam_write(&caller.account, |iam| {
            iam.policies.remove(&policy.name);
            Ok(((), vec![Change::Delete(KIND_POLICY, policy.name.clone())]))
        })
        .await
    }

    pub async fn iam_get_policy_version(
        &self,
        caller: &Caller,
        policy_arn: &str,
        version_id: &str,
    ) -> IamResult<(PolicyVersion, bool)> {
        let (policy, _) = self.iam_get_policy(caller, policy_arn).await?;
        self.authorize_iam(caller, "iam:GetPolicyVersion", policy_arn)?;
        let v = policy
            .versions
            .iter()
            .find(|v| v.id == version_id)
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "Policy {policy_arn} version {version_id} does not exist or is not attachable."
                ))
            })?;
        let is_default = v.id == policy.default_version;
        Ok((v, is_default))
    }

    pub async fn iam_list_policy_versions(
        &self,
        caller: &Caller,
        policy_arn: &str,
    ) -> IamResult<ManagedPolicy> {
        let (policy, _) = self.iam_get_policy(caller, policy_arn).await?;
        self.authorize_iam(caller, "iam:ListPolicyVersions", policy_arn)?;
        Ok(policy)
    }

    pub async fn iam_create_policy_version(
        &self,
        caller: &Caller,
        policy_arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> IamResult<PolicyVersion> {
        check_identity_policy(document, IdentityPolicyType::Managed)?;
        let snapshot = self.iam.account(&caller.account);
        let name = snapshot
            .policy_by_arn(&caller.account, policy_arn)
            .map(|p| p.name.clone())
            .ok_or_else(|| no_policy(policy_arn))?;
        self.authorize_iam(caller, "iam:CreatePolicyVersion", policy_arn)?;
        if super::aws_managed::policy(policy_arn).is_some() {
            return Err(super::aws_managed::unmodifiable(policy_arn));
        }
        let now = self.clock.now_ms();
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            let p = iam.policies.get_mut(&name).ok_or_else(|| no_policy(policy_arn))?;
            if p.versions.len() >= 5 {
                return Err(IamError::LimitExceeded("A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.".into()));
            }
            let v = PolicyVersion { id: format!("v{}", p.next_version), document: document.to_string(), created_ms: now };
            p.next_version += 1;
            p.versions.push(v.clone());
            if set_as_default {
                p.default_version = v.id.clone();
            }
            p.updated_ms = now;
            Ok((v, vec![p.to_document(&account).map(Change::Put)?]))
        })
        .await
    }

    pub async fn iam_delete_policy_version(
        &self,
        caller: &Caller,
        policy_arn: &str,
        version_id: &str,
    ) -> IamResult<()> {
        self.change_policy_versions(caller, policy_arn, "iam:DeletePolicyVersion", |p| {
            if p.default_version == version_id {
                return Err(IamError::DeleteConflict(
                    "Cannot delete the default version of a policy.".into(),
                ));
            }
            let before = p.versions.len();
            p.versions.retain(|v| v.id != version_id);
            if p.versions.len() == before {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {policy_arn} version {version_id} does not exist."
                )));
            }
            Ok(())
        })
        .await
    }

    pub async fn iam_set_default_policy_version(
        &self,
        caller: &Caller,
        policy_arn: &str,
        version_id: &str,
    ) -> IamResult<()> {
        self.change_policy_versions(caller, policy_arn, "iam:SetDefaultPolicyVersion", |p| {
            if !p.versions.iter().any(|v| v.id == version_id) {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {policy_arn} version {version_id} does not exist."
                )));
            }
            p.default_version = version_id.to_string();
            Ok(())
        })
        .await
    }

    async fn change_policy_versions(
        &self,
        caller: &Caller,
        policy_arn: &str,
        action: &str,
        mut change: impl FnMut(&mut ManagedPolicy) -> IamResult<()>,
    ) -> IamResult<()> {
        let snapshot = self.iam.account(&caller.account);
        let name = snapshot
            .policy_by_arn(&caller.account, policy_arn)
            .map(|p| p.name.clone())
            .ok_or_else(|| no_policy(policy_arn))?;
        self.authorize_iam(caller, action, policy_arn)?;
        if super::aws_managed::policy(policy_arn).is_some() {
            return Err(super::aws_managed::unmodifiable(policy_arn));
        }
        let account = caller.account.clone();
        let now = self.clock.now_ms();
        self.iam_write(&caller.account, |iam| {
            let p = iam
                .policies
                .get_mut(&name)
                .ok_or_else(|| no_policy(policy_arn))?;
            change(p)?;
            p.updated_ms = now;
            Ok(((), vec![p.to_document(&account).map(Change::Put)?]))
        })
        .await
    }
}

fn no_policy(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
}

fn attachment_count(iam: &AccountIam, arn: &str) -> usize {
    iam.users
        .values()
        .filter(|u| u.attached.contains(arn))
        .count()
        + iam
            .groups
            .values()
            .filter(|g| g.attached.contains(arn))
            .count()
        + iam
            .roles
            .values()
            .filter(|r| r.attached.contains(arn))
            .count()
}
