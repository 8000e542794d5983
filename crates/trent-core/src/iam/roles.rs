//! IAM roles: trust policies, tags, and service-linked roles' protections.

use super::entity_arn;
use super::error::{IamError, IamResult};
use super::records::{KIND_ROLE, Role};
use super::users::{
    Change, check_name, check_path, check_trust_policy, merge_tags, no_such, put, unique_id,
};
use crate::caller::Caller;
use crate::service::Kms;

/// CreateRole input.
#[derive(Debug, Default, Clone)]
pub struct CreateRoleInput {
    pub name: String,
    pub path: Option<String>,
    pub trust_policy: String,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    pub tags: Vec<(String, String)>,
}

impl Kms {
    pub async fn iam_create_role(
        &self,
        caller: &Caller,
        input: CreateRoleInput,
    ) -> IamResult<Role> {
        check_name("roleName", &input.name, 64)?;
        let path = input.path.clone().unwrap_or_else(|| "/".into());
        check_path(&path)?;
        // The path of service-linked roles: only CreateServiceLinkedRole makes roles there, so
        // a customer's role can never pass for one (its sessions would count as the service's).
        if path.starts_with("/aws-service-role/") {
            return Err(IamError::InvalidInput(
                "The path /aws-service-role/ is reserved for service-linked roles: use CreateServiceLinkedRole."
                    .into(),
            ));
        }
        check_trust_policy(&input.trust_policy)?;
        let trust_principals = self.bind_trust_principals(&input.trust_policy);
        let max = input.max_session_duration.unwrap_or(3600);
        if !(3600..=43200).contains(&max) {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{max}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
            )));
        }
        if input
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 1000)
        {
            return Err(IamError::Validation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000".into()));
        }
        self.authorize_iam(
            caller,
            "iam:CreateRole",
            &entity_arn(&caller.account, "role", &path, &input.name),
        )?;
        // Only once the caller may create it: the answer tells which principals exist.
        self.check_trust_principals(&input.trust_policy)?;
        let role = Role {
            v: 1,
            name: input.name.clone(),
            path,
            id: unique_id("AROA")?,
            created_ms: self.clock.now_ms(),
            trust_policy: input.trust_policy,
            trust_principals,
            description: input.description,
            max_session_duration: max,
            tags: Vec::new(),
            inline: Default::default(),
            attached: Default::default(),
        };
        let mut role = role;
        merge_tags(&mut role.tags, input.tags, &[])?;
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            if iam.roles.keys().any(|k| k.eq_ignore_ascii_case(&role.name)) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Role with name {} already exists.",
                    role.name
                )));
            }
            super::check_quota(iam.roles.len(), super::ROLES_PER_ACCOUNT, "RolesPerAccount")?;
            iam.roles.insert(role.name.clone(), role.clone());
            Ok((role.clone(), vec![put(&account, &role)?]))
        })
        .await
    }

    pub async fn iam_get_role(&self, caller: &Caller, name: &str) -> IamResult<Role> {
        let role = self
            .iam
            .account(&caller.account)
            .roles
            .get(name)
            .cloned()
            .ok_or_else(|| no_such("role", name))?;
        self.authorize_iam(
            caller,
            "iam:GetRole",
            &entity_arn(&caller.account, "role", &role.path, name),
        )?;
        Ok(self.shown_role(role))
    }

    /// IAM refuses a trust policy naming a user or role that does not exist (or a role
    /// session of one), with the principal as written. Trent checks those of the accounts it
    /// hosts; accounts, services, federated principals and principals of accounts Trent
    /// does not host are accepted (docs/decisions.md, "Principals are bound to unique ids").
    fn check_trust_principals(&self, document: &str) -> IamResult<()> {
        use trent_policy::PrincipalValue as V;
        // A document that does not parse was refused by `check_trust_policy` already.
        let Ok(policy) = crate::sts::parse_trust_policy(document) else {
            return Ok(());
        };
        for (kind, entry) in policy.principal_entries() {
            let (arn, exists) = match entry.value() {
                V::User(arn) | V::Role(arn) => (arn, self.principal_unique_id(arn).is_some()),
                // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION: any session of a role that exists.
                V::AssumedRole(arn) => {
                    let account = arn.split(':').nth(4).unwrap_or_default();
                    let role = arn.split('/').nth(1).unwrap_or_default();
                    (arn, self.iam.account(account).roles.contains_key(role))
                }
                _ => continue,
            };
            let account = arn.split(':').nth(4).unwrap_or_default();
            if !exists && self.known_account(account) {
                return Err(IamError::MalformedPolicyDocument(format!(
                    "Invalid principal in policy: \"{}\":\"{}\"",
                    kind.name(),
                    entry.source()
                )));
            }
        }
        Ok(())
    }

    /// The user and role principals of trust policy `document` bound to their unique ids now.
    fn bind_trust_principals(&self, document: &str) -> std::collections::BTreeMap<String, String> {
        crate::sts::parse_trust_policy(document)
            .map(|p| self.bind_parsed_principals(&p))
            .unwrap_or_default()
    }

    /// The start-up pass of `authz/bindings.rs` over `account`'s roles: each trust policy
    /// naming an existing user or role it has no binding for is bound to it (through
    /// `iam_write`, so over a shared store only over the document as this node read it; a
    /// role another node bound meanwhile is found bound when re-read, and left as it is).
    pub(crate) async fn bind_stored_trust_policies(&self, account: &str) -> IamResult<()> {
        let names: Vec<String> = self.iam.account(account).roles.keys().cloned().collect();
        for name in names {
            let missing = |role: &Role| {
                crate::sts::parse_trust_policy(&role.trust_policy)
                    .ok()
                    .and_then(|p| self.missing_bindings(&p, &role.trust_principals))
            };
            if self
                .iam
                .account(account)
                .roles
                .get(&name)
                .and_then(missing)
                .is_none()
            {
                continue;
            }
            self.iam_write(account, |iam| {
                let Some(role) = iam.roles.get_mut(&name) else {
                    return Ok(((), Vec::new())); // deleted meanwhile
                };
                let Some(bindings) = missing(role) else {
                    return Ok(((), Vec::new()));
                };
                role.trust_principals.extend(bindings);
                Ok(((), vec![put(account, &*role)?]))
            })
            .await?;
        }
        Ok(())
    }

    /// `role` as GetRole/ListRoles show it: a trust principal since deleted appears as its
    /// unique id, as in AWS.
    fn shown_role(&self, mut role: Role) -> Role {
        role.trust_policy = self.show_bound_policy(&role.trust_policy, &role.trust_principals);
        role
    }

    pub async fn iam_list_roles(
        &self,
        caller: &Caller,
        path_prefix: Option<&str>,
    ) -> IamResult<Vec<Role>> {
        self.authorize_iam(
            caller,
            "iam:ListRoles",
            &entity_arn(&caller.account, "role", "/", "*"),
        )?;
        let iam = self.iam.account(&caller.account);
        Ok(iam
            .roles
            .values()
            .filter(|r| r.path.starts_with(path_prefix.unwrap_or("/")))
            .map(|r| self.shown_role(r.clone()))
            .collect())
    }

    pub async fn iam_delete_role(&self, caller: &Caller, name: &str) -> IamResult<()> {
        let role = self.iam_get_role(caller, name).await?;
        self.authorize_iam(
            caller,
            "iam:DeleteRole",
            &entity_arn(&caller.account, "role", &role.path, name),
        )?;
        if role.path.starts_with("/aws-service-role/") {
            return Err(IamError::UnmodifiableEntity(format!(
                "Cannot perform the operation on the protected role '{name}' - this role is only modifiable by AWS"
            )));
        }
        if !role.inline.is_empty() || !role.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        self.iam_write(&caller.account, |iam| {
            // Re-checked under the write lock: a concurrent write may have changed them.
            if iam
                .roles
                .get(name)
                .is_some_and(|r| !r.inline.is_empty() || !r.attached.is_empty())
            {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must delete policies first.".into(),
                ));
            }
            iam.roles.remove(name);
            Ok(((), vec![Change::Delete(KIND_ROLE, name.to_string())]))
        })
        .await
    }

    pub async fn iam_update_assume_role_policy(
        &self,
        caller: &Caller,
        name: &str,
        document: &str,
    ) -> IamResult<()> {
        check_trust_policy(document)?;
        let bindings = self.bind_trust_principals(document);
        self.change_role(caller, name, "iam:UpdateAssumeRolePolicy", true, |r| {
            self.check_trust_principals(document)?;
            r.trust_policy = document.to_string();
            r.trust_principals.clone_from(&bindings);
            Ok(())
        })
        .await
    }

    pub async fn iam_tag_role(
        &self,
        caller: &Caller,
        name: &str,
        tags: Vec<(String, String)>,
        untag: Vec<String>,
    ) -> IamResult<()> {
        let action = if untag.is_empty() {
            "iam:TagRole"
        } else {
            "iam:UntagRole"
        };
        self.change_role(caller, name, action, true, |r| {
            merge_tags(&mut r.tags, tags.clone(), &untag)
        })
        .await
    }

    pub(super) async fn change_role(
        &self,
        caller: &Caller,
        name: &str,
        action: &str,
        protected: bool,
        mut change: impl FnMut(&mut Role) -> IamResult<()>,
    ) -> IamResult<()> {
        let role = self
            .iam
            .account(&caller.account)
            .roles
            .get(name)
            .cloned()
            .ok_or_else(|| no_such("role", name))?;
        self.authorize_iam(
            caller,
            action,
            &entity_arn(&caller.account, "role", &role.path, name),
        )?;
        if protected && role.path.starts_with("/aws-service-role/") {
            return Err(IamError::UnmodifiableEntity(format!(
                "Cannot perform the operation on the protected role '{name}' - this role is only modifiable by AWS"
            )));
        }
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            let r = iam
                .roles
                .get_mut(name)
                .ok_or_else(|| no_such("role", name))?;
            change(r)?;
            Ok(((), vec![put(&account, &*r)?]))
        })
        .await
    }
}

/// The role name AWS gives a service's service-linked role.
pub(super) fn service_linked_role_name(service: &str) -> String {
    match service {
        "autoscaling.amazonaws.com" => "AWSServiceRoleForAutoScaling".into(),
        "mrk.kms.amazonaws.com" => "AWSServiceRoleForKeyManagementServiceMultiRegionKeys".into(),
        "cks.kms.amazonaws.com" => "AWSServiceRoleForKeyManagementServiceCustomKeyStores".into(),
        other => {
            let first = other.split('.').next().unwrap_or_default();
            let mut chars = first.chars();
            let capitalized: String = chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
                .collect();
            format!("AWSServiceRoleFor{capitalized}")
        }
    }
}
