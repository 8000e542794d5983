//! Service-linked roles: CreateServiceLinkedRole, DeleteServiceLinkedRole,
//! GetServiceLinkedRoleDeletionStatus and UpdateRoleDescription (the one change a customer may
//! make to one).
//!
//! A service-linked role lives under `/aws-service-role/<service>/`, trusts only its service
//! (`sts.rs` refuses every other principal, whatever the trust policy says) and is otherwise
//! changed only by its service (`UnmodifiableEntity`, `roles.rs`, `policies.rs`). KMS's two
//! roles are made by KMS itself (the multi-Region one by the first multi-Region primary,
//! `aws_managed.rs`), never by CreateServiceLinkedRole. Deletion is a task, as in AWS: it
//! fails, listing the resources per Region, while the service still uses the role — for KMS's
//! roles while multi-Region keys or CloudHSM key stores exist — and succeeds otherwise. Tasks are kept in memory on the
//! node that ran them (bounded), since the role itself is what is durable.

use std::collections::{BTreeMap, VecDeque};

use super::entity_arn;
use super::error::{IamError, IamResult};
use super::records::{KIND_ROLE, Role};
use super::roles::service_linked_role_name;
use super::users::{Change, no_such, put, unique_id};
use crate::caller::Caller;
use crate::service::Kms;

/// At most this many deletion tasks are remembered (the oldest are forgotten first).
const MAX_TASKS: usize = 1024;

/// A deletion task's outcome (GetServiceLinkedRoleDeletionStatus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletionStatus {
    Succeeded,
    /// The role is still used: `(region, resource ARNs)` per Region.
    Failed(Vec<(String, Vec<String>)>),
}

/// Deletion tasks by id, with the account that ran each.
#[derive(Default)]
pub struct DeletionTasks {
    tasks: BTreeMap<String, (String, DeletionStatus)>,
    order: VecDeque<String>,
}

impl DeletionTasks {
    fn insert(&mut self, id: String, account: String, status: DeletionStatus) {
        if self.tasks.insert(id.clone(), (account, status)).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_TASKS {
            if let Some(old) = self.order.pop_front() {
                self.tasks.remove(&old);
            }
        }
    }
}

/// The services whose roles KMS creates itself.
const KMS_SERVICES: [&str; 2] = ["mrk.kms.amazonaws.com", "cks.kms.amazonaws.com"];

fn protected(name: &str) -> IamError {
    IamError::UnmodifiableEntity(format!(
        "Cannot perform the operation on the protected role '{name}' - this role is only modifiable by AWS"
    ))
}

impl Kms {
    /// CreateServiceLinkedRole: a role under `/aws-service-role/<service>/` that only the
    /// service may assume, named `AWSServiceRoleFor<Service>` (`_<suffix>` with CustomSuffix).
    pub async fn iam_create_service_linked_role(
        &self,
        caller: &Caller,
        service: &str,
        description: Option<&str>,
        custom_suffix: Option<&str>,
    ) -> IamResult<Role> {
        if !crate::integrated_services::valid_service_name(service) {
            return Err(IamError::InvalidInput(format!(
                "Invalid service name: {service}"
            )));
        }
        if KMS_SERVICES.contains(&service) {
            return Err(IamError::InvalidInput(format!(
                "You cannot create the service-linked role for {service} directly: AWS KMS creates it when it needs it."
            )));
        }
        if let Some(suffix) = custom_suffix {
            let ok = (1..=64).contains(&suffix.chars().count())
                && suffix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
            if !ok {
                return Err(IamError::Validation(format!(
                    "1 validation error detected: Value '{suffix}' at 'customSuffix' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
                )));
            }
        }
        if description.is_some_and(|d| d.chars().count() > 1000) {
            return Err(IamError::Validation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000".into()));
        }
        let base = service_linked_role_name(service);
        let name = match custom_suffix {
            Some(suffix) => format!("{base}_{suffix}"),
            None => base,
        };
        if name.chars().count() > 64 {
            return Err(IamError::InvalidInput(format!(
                "The role name {name} is longer than 64 characters: choose a shorter suffix."
            )));
        }
        let path = format!("/aws-service-role/{service}/");
        self.authorize_iam(
            caller,
            "iam:CreateServiceLinkedRole",
            &entity_arn(&caller.account, "role", &path, &name),
        )?;
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
        );
        let role = Role {
            v: 1,
            name: name.clone(),
            path,
            id: unique_id("AROA")?,
            created_ms: self.clock.now_ms(),
            trust_policy: trust,
            // Its trust policy names a service only: nothing to bind.
            trust_principals: Default::default(),
            description: description.map(str::to_string),
            max_session_duration: 3600,
            tags: Vec::new(),
            inline: Default::default(),
            attached: Default::default(),
        };
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            if iam.roles.keys().any(|k| k.eq_ignore_ascii_case(&role.name)) {
                return Err(IamError::InvalidInput(format!(
                    "Service role name {} has been taken in this account, please try a different suffix.",
                    role.name
                )));
            }
            iam.roles.insert(role.name.clone(), role.clone());
            Ok((role.clone(), vec![put(&account, &role)?]))
        })
        .await
    }

    /// DeleteServiceLinkedRole: runs the deletion task now and returns its id; the role is
    /// deleted unless its service still uses it (then the task has failed, and says why).
    pub async fn iam_delete_service_linked_role(
        &self,
        caller: &Caller,
        name: &str,
    ) -> IamResult<String> {
        let role = self
            .iam
            .account(&caller.account)
            .roles
            .get(name)
            .cloned()
            .ok_or_else(|| no_such("role", name))?;
        self.authorize_iam(
            caller,
            "iam:DeleteServiceLinkedRole",
            &entity_arn(&caller.account, "role", &role.path, name),
        )?;
        let Some(service) = role
            .path
            .strip_prefix("/aws-service-role/")
            .and_then(|p| p.strip_suffix('/'))
        else {
            return Err(IamError::InvalidInput(format!(
                "The role {name} is not a service-linked role."
            )));
        };
        let task_id = format!(
            "task/aws-service-role/{service}/{name}/{}",
            uuid::Uuid::new_v4()
        );
        let usage = self
            .service_linked_role_usage(&caller.account, service)
            .await?;
        let status = if usage.is_empty() {
            self.iam_write(&caller.account, |iam| {
                iam.roles.remove(name);
                Ok(((), vec![Change::Delete(KIND_ROLE, name.to_string())]))
            })
            .await?;
            DeletionStatus::Succeeded
        } else {
            DeletionStatus::Failed(usage)
        };
        if let Ok(mut tasks) = self.slr_deletions.lock() {
            tasks.insert(task_id.clone(), caller.account.clone(), status);
        }
        Ok(task_id)
    }

    /// GetServiceLinkedRoleDeletionStatus.
    pub fn iam_service_linked_role_deletion_status(
        &self,
        caller: &Caller,
        task_id: &str,
    ) -> IamResult<DeletionStatus> {
        // task/aws-service-role/<service>/<role>/<uuid>
        let role_name = task_id.rsplit('/').nth(1).unwrap_or_default();
        let service = task_id
            .strip_prefix("task/aws-service-role/")
            .and_then(|r| r.split('/').next())
            .ok_or_else(|| {
                IamError::InvalidInput(format!("Invalid deletion task id: {task_id}"))
            })?;
        self.authorize_iam(
            caller,
            "iam:GetServiceLinkedRoleDeletionStatus",
            &entity_arn(
                &caller.account,
                "role",
                &format!("/aws-service-role/{service}/"),
                role_name,
            ),
        )?;
        self.slr_deletions
            .lock()
            .ok()
            .and_then(|tasks| {
                tasks
                    .tasks
                    .get(task_id)
                    .filter(|(account, _)| *account == caller.account)
                    .map(|(_, s)| s.clone())
            })
            .ok_or_else(|| no_such("deletion task", task_id))
    }

    /// UpdateRoleDescription: the one change a customer may make to a service-linked role.
    pub async fn iam_update_role_description(
        &self,
        caller: &Caller,
        name: &str,
        description: &str,
    ) -> IamResult<Role> {
        if description.chars().count() > 1000 {
            return Err(IamError::Validation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000".into()));
        }
        self.change_role(caller, name, "iam:UpdateRole", false, |r| {
            r.description = Some(description.to_string());
            Ok(())
        })
        .await?;
        self.iam
            .account(&caller.account)
            .roles
            .get(name)
            .cloned()
            .ok_or_else(|| no_such("role", name))
    }

    /// UpdateRole (description, maximum session duration): refused on service-linked roles.
    pub async fn iam_update_role(
        &self,
        caller: &Caller,
        name: &str,
        description: Option<&str>,
        max_session_duration: Option<i64>,
    ) -> IamResult<()> {
        if let Some(max) = max_session_duration
            && !(3600..=43200).contains(&max)
        {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{max}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
            )));
        }
        if self
            .iam
            .account(&caller.account)
            .roles
            .get(name)
            .is_some_and(|r| r.path.starts_with("/aws-service-role/"))
            && max_session_duration.is_some()
        {
            return Err(protected(name));
        }
        self.change_role(caller, name, "iam:UpdateRole", false, |r| {
            if let Some(d) = description {
                r.description = Some(d.to_string());
            }
            if let Some(max) = max_session_duration {
                r.max_session_duration = max;
            }
            Ok(())
        })
        .await
    }

    /// What still uses `service`'s role in `account`, per Region (every Region of the store):
    /// for KMS's multi-Region role the account's multi-Region keys, for its
    /// custom key store role the account's CloudHSM key stores.
    async fn service_linked_role_usage(
        &self,
        account: &str,
        service: &str,
    ) -> IamResult<Vec<(String, Vec<String>)>> {
        let mut usage = Vec::new();
        // Every Region the store holds something of the account's in, not only those this
        // node has served: another node (or an earlier run) may have created them.
        let mut regions = self.regions.all();
        regions.extend(self.store.regions_in_use(account).await?);
        regions.sort();
        regions.dedup();
        if service == "cks.kms.amazonaws.com" {
            for region in regions {
                let arns: Vec<String> = self
                    .store
                    .custom_key_stores(account, &region)
                    .await?
                    .iter()
                    .filter(|s| s.store_type == "AWS_CLOUDHSM")
                    .map(|s| format!("arn:aws:kms:{region}:{account}:custom-key-store/{}", s.id))
                    .collect();
                if !arns.is_empty() {
                    usage.push((region, arns));
                }
            }
            return Ok(usage);
        }
        if service != super::aws_managed::MRK_SERVICE {
            return Ok(Vec::new());
        }
        for region in regions {
            let mut arns = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = self
                    .store
                    .list_keys(
                        account,
                        &region,
                        crate::store::Page {
                            after: after.as_deref(),
                            limit: 1000,
                        },
                    )
                    .await?;
                let done = page.len() < 1000;
                after = page.last().cloned();
                for id in page.iter().filter(|id| id.starts_with("mrk-")) {
                    let public = id.split('@').next().unwrap_or(id);
                    arns.push(crate::ids::key_arn(&region, account, public));
                }
                if done {
                    break;
                }
            }
            if !arns.is_empty() {
                usage.push((region, arns));
            }
        }
        Ok(usage)
    }
}
