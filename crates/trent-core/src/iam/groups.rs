//! IAM groups and their membership.

use super::entity_arn;
use super::error::{IamError, IamResult};
use super::records::{Group, KIND_GROUP};
use super::users::{Change, check_name, check_path, no_such, put, unique_id};
use crate::caller::Caller;
use crate::service::Kms;

impl Kms {
    pub async fn iam_create_group(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
    ) -> IamResult<Group> {
        check_name("groupName", name, 128)?;
        let path = path.unwrap_or("/");
        check_path(path)?;
        self.authorize_iam(
            caller,
            "iam:CreateGroup",
            &entity_arn(&caller.account, "group", path, name),
        )?;
        let group = Group {
            v: 1,
            name: name.to_string(),
            path: path.to_string(),
            id: unique_id("AGPA")?,
            created_ms: self.clock.now_ms(),
            members: Default::default(),
            inline: Default::default(),
            attached: Default::default(),
        };
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            if iam.groups.keys().any(|k| k.eq_ignore_ascii_case(name)) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Group with name {name} already exists."
                )));
            }
            super::check_quota(
                iam.groups.len(),
                super::GROUPS_PER_ACCOUNT,
                "GroupsPerAccount",
            )?;
            iam.groups.insert(name.to_string(), group.clone());
            Ok((group.clone(), vec![put(&account, &group)?]))
        })
        .await
    }

    pub async fn iam_get_group(&self, caller: &Caller, name: &str) -> IamResult<Group> {
        let group = self
            .iam
            .account(&caller.account)
            .groups
            .get(name)
            .cloned()
            .ok_or_else(|| no_such("group", name))?;
        self.authorize_iam(
            caller,
            "iam:GetGroup",
            &entity_arn(&caller.account, "group", &group.path, name),
        )?;
        Ok(group)
    }

    pub async fn iam_list_groups(
        &self,
        caller: &Caller,
        for_user: Option<&str>,
    ) -> IamResult<Vec<Group>> {
        let iam = self.iam.account(&caller.account);
        match for_user {
            Some(user) => {
                let u = iam.users.get(user).ok_or_else(|| no_such("user", user))?;
                self.authorize_iam(
                    caller,
                    "iam:ListGroupsForUser",
                    &entity_arn(&caller.account, "user", &u.path, user),
                )?;
                Ok(iam
                    .groups
                    .values()
                    .filter(|g| g.members.contains(user))
                    .cloned()
                    .collect())
            }
            None => {
                self.authorize_iam(
                    caller,
                    "iam:ListGroups",
                    &entity_arn(&caller.account, "group", "/", "*"),
                )?;
                Ok(iam.groups.values().cloned().collect())
            }
        }
    }

    pub async fn iam_delete_group(&self, caller: &Caller, name: &str) -> IamResult<()> {
        let group = self.iam_get_group(caller, name).await?;
        self.authorize_iam(
            caller,
            "iam:DeleteGroup",
            &entity_arn(&caller.account, "group", &group.path, name),
        )?;
        if !group.members.is_empty() || !group.inline.is_empty() || !group.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove users and policies from group first.".into(),
            ));
        }
        self.iam_write(&caller.account, |iam| {
            // Re-checked under the write lock: a concurrent write may have changed them.
            if iam.groups.get(name).is_some_and(|g| {
                !g.members.is_empty() || !g.inline.is_empty() || !g.attached.is_empty()
            }) {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must remove users and policies from group first.".into(),
                ));
            }
            iam.groups.remove(name);
            Ok(((), vec![Change::Delete(KIND_GROUP, name.to_string())]))
        })
        .await
    }

    /// AddUserToGroup (`add`) or RemoveUserFromGroup.
    pub async fn iam_group_membership(
        &self,
        caller: &Caller,
        group: &str,
        user: &str,
        add: bool,
    ) -> IamResult<()> {
        let snapshot = self.iam.account(&caller.account);
        let g = snapshot
            .groups
            .get(group)
            .ok_or_else(|| no_such("group", group))?;
        if !snapshot.users.contains_key(user) {
            return Err(no_such("user", user));
        }
        let action = if add {
            "iam:AddUserToGroup"
        } else {
            "iam:RemoveUserFromGroup"
        };
        self.authorize_iam(
            caller,
            action,
            &entity_arn(&caller.account, "group", &g.path, group),
        )?;
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            let g = iam
                .groups
                .get_mut(group)
                .ok_or_else(|| no_such("group", group))?;
            if add {
                g.members.insert(user.to_string());
            } else if !g.members.remove(user) {
                return Err(IamError::NoSuchEntity(format!(
                    "User {user} is not in group {group}."
                )));
            }
            Ok(((), vec![put(&account, &*g)?]))
        })
        .await
    }
}
