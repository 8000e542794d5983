//! Identity policies on users, groups and roles: their inline policies, and attaching customer
//! managed policies to them (the managed policies themselves are `managed_policies.rs`).

use std::collections::{BTreeMap, BTreeSet};

use trent_policy::IdentityPolicyType;

use super::directory::AccountIam;
use super::entity_arn;
use super::error::{IamError, IamResult};
use super::records::{Group, Role, User};
use super::users::{Change, check_identity_policy, check_name, no_such, put};
use crate::caller::Caller;
use crate::service::Kms;

/// Which kind of identity a policy operation addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    User,
    Group,
    Role,
}

impl Entity {
    fn noun(self) -> &'static str {
        match self {
            Entity::User => "User",
            Entity::Group => "Group",
            Entity::Role => "Role",
        }
    }

    fn arn_kind(self) -> &'static str {
        match self {
            Entity::User => "user",
            Entity::Group => "group",
            Entity::Role => "role",
        }
    }

    fn inline_type(self) -> IdentityPolicyType {
        match self {
            Entity::User => IdentityPolicyType::UserInline,
            Entity::Group => IdentityPolicyType::GroupInline,
            Entity::Role => IdentityPolicyType::RoleInline,
        }
    }
}

/// What users, groups and roles share: a path, inline policies and attached managed policies.
trait PolicyHolder {
    fn inline(&mut self) -> &mut BTreeMap<String, String>;
    fn attached(&mut self) -> &mut BTreeSet<String>;
    fn change(&self, account: &str) -> IamResult<Change>;
}

macro_rules! holder {
    ($t:ty) => {
        impl PolicyHolder for $t {
            fn inline(&mut self) -> &mut BTreeMap<String, String> {
                &mut self.inline
            }
            fn attached(&mut self) -> &mut BTreeSet<String> {
                &mut self.attached
            }
            fn change(&self, account: &str) -> IamResult<Change> {
                put(account, self)
            }
        }
    };
}
holder!(User);
holder!(Group);
holder!(Role);

fn holder<'a>(
    iam: &'a mut AccountIam,
    entity: Entity,
    name: &str,
) -> IamResult<&'a mut dyn PolicyHolder> {
    let found: Option<&mut dyn PolicyHolder> = match entity {
        Entity::User => iam.users.get_mut(name).map(|u| u as &mut dyn PolicyHolder),
        Entity::Group => iam.groups.get_mut(name).map(|g| g as &mut dyn PolicyHolder),
        Entity::Role => iam.roles.get_mut(name).map(|r| r as &mut dyn PolicyHolder),
    };
    found.ok_or_else(|| no_such(entity.arn_kind(), name))
}

fn holder_arn(iam: &AccountIam, account: &str, entity: Entity, name: &str) -> IamResult<String> {
    let path = match entity {
        Entity::User => iam.users.get(name).map(|u| u.path.clone()),
        Entity::Group => iam.groups.get(name).map(|g| g.path.clone()),
        Entity::Role => iam.roles.get(name).map(|r| r.path.clone()),
    }
    .ok_or_else(|| no_such(entity.arn_kind(), name))?;
    Ok(entity_arn(account, entity.arn_kind(), &path, name))
}

fn guard_service_linked(iam: &AccountIam, entity: Entity, name: &str) -> IamResult<()> {
    if entity == Entity::Role
        && iam
            .roles
            .get(name)
            .is_some_and(|r| r.path.starts_with("/aws-service-role/"))
    {
        return Err(IamError::UnmodifiableEntity(format!(
            "Cannot perform the operation on the protected role '{name}' - this role is only modifiable by AWS"
        )));
    }
    Ok(())
}

impl Kms {
    pub async fn iam_put_inline_policy(
        &self,
        caller: &Caller,
        entity: Entity,
        name: &str,
        policy_name: &str,
        document: &str,
    ) -> IamResult<()> {
        check_name("policyName", policy_name, 128)?;
        check_identity_policy(document, entity.inline_type())?;
        let snapshot = self.iam.account(&caller.account);
        let arn = holder_arn(&snapshot, &caller.account, entity, name)?;
        self.authorize_iam(caller, &format!("iam:Put{}Policy", entity.noun()), &arn)?;
        guard_service_linked(&snapshot, entity, name)?;
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            let h = holder(iam, entity, name)?;
            h.inline()
                .insert(policy_name.to_string(), document.to_string());
            let total: usize = h
                .inline()
                .values()
                .map(|d| trent_policy::identity_policy_size(d))
                .sum();
            if total > entity.inline_type().max_chars() {
                return Err(IamError::LimitExceeded(format!(
                    "Maximum policy size of {} bytes exceeded for {} {name}",
                    entity.inline_type().max_chars(),
                    entity.arn_kind()
                )));
            }
            Ok(((), vec![h.change(&account)?]))
        })
        .await
    }

    pub async fn iam_get_inline_policy(
        &self,
        caller: &Caller,
        entity: Entity,
        name: &str,
        policy_name: &str,
    ) -> IamResult<String> {
        let mut snapshot = (*self.iam.account(&caller.account)).clone();
        let arn = holder_arn(&snapshot, &caller.account, entity, name)?;
        self.authorize_iam(caller, &format!("iam:Get{}Policy", entity.noun()), &arn)?;
        holder(&mut snapshot, entity, name)?
            .inline()
            .get(policy_name)
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "The {} policy with name {policy_name} cannot be found.",
                    entity.arn_kind()
                ))
            })
    }

    pub async fn iam_list_inline_policies(
        &self,
        caller: &Caller,
        entity: Entity,
        name: &str,
    ) -> IamResult<Vec<String>> {
        let mut snapshot = (*self.iam.account(&caller.account)).clone();
        let arn = holder_arn(&snapshot, &caller.account, entity, name)?;
        self.authorize_iam(caller, &format!("iam:List{}Policies", entity.noun()), &arn)?;
        Ok(holder(&mut snapshot, entity, name)?
            .inline()
            .keys()
            .cloned()
            .collect())
    }

    pub async fn iam_delete_inline_policy(
        &self,
        caller: &Caller,
        entity: Entity,
        name: &str,
        policy_name: &str,
    ) -> IamResult<()> {
        let snapshot = self.iam.account(&caller.account);
        let arn = holder_arn(&snapshot, &caller.account, entity, name)?;
        self.authorize_iam(caller, &format!("iam:Delete{}Policy", entity.noun()), &arn)?;
        guard_service_linked(&snapshot, entity, name)?;
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            let h = holder(iam, entity, name)?;
            if h.inline().remove(policy_name).is_none() {
                return Err(IamError::NoSuchEntity(format!(
                    "The {} policy with name {policy_name} cannot be found.",
                    entity.arn_kind()
                )));
            }
            Ok(((), vec![h.change(&account)?]))
        })
        .await
    }

    /// AttachXPolicy (`attach`) or DetachXPolicy.
    pub async fn iam_attach_policy(
        &self,
        caller: &Caller,
        entity: Entity,
        name: &str,
        policy_arn: &str,
        attach: bool,
    ) -> IamResult<()> {
        let snapshot = self.iam.account(&caller.account);
        let arn = holder_arn(&snapshot, &caller.account, entity, name)?;
        let verb = if attach { "Attach" } else { "Detach" };
        self.authorize_iam(caller, &format!("iam:{verb}{}Policy", entity.noun()), &arn)?;
        guard_service_linked(&snapshot, entity, name)?;
        // A service role's AWS managed policy belongs to its service-linked role alone.
        if attach && super::aws_managed::policy(policy_arn).is_some() {
            return Err(super::aws_managed::not_attachable());
        }
        if snapshot
            .policy_by_arn(&caller.account, policy_arn)
            .is_none()
        {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {policy_arn} does not exist or is not attachable."
            )));
        }
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            let h = holder(iam, entity, name)?;
            if attach {
                if h.attached().len() >= 10 && !h.attached().contains(policy_arn) {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for PoliciesPer{}: 10",
                        entity.noun()
                    )));
                }
                h.attached().insert(policy_arn.to_string());
            } else if !h.attached().remove(policy_arn) {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {policy_arn} was not found."
                )));
            }
            Ok(((), vec![h.change(&account)?]))
        })
        .await
    }

    /// (policy name, policy ARN) of the managed policies attached to an entity.
    pub async fn iam_list_attached_policies(
        &self,
        caller: &Caller,
        entity: Entity,
        name: &str,
    ) -> IamResult<Vec<(String, String)>> {
        let mut snapshot = (*self.iam.account(&caller.account)).clone();
        let arn = holder_arn(&snapshot, &caller.account, entity, name)?;
        self.authorize_iam(
            caller,
            &format!("iam:ListAttached{}Policies", entity.noun()),
            &arn,
        )?;
        let attached: Vec<String> = holder(&mut snapshot, entity, name)?
            .attached()
            .iter()
            .cloned()
            .collect();
        Ok(attached
            .into_iter()
            .map(|a| (a.rsplit('/').next().unwrap_or_default().to_string(), a))
            .collect())
    }
}
