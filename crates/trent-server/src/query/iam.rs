//! The IAM API (Query protocol, version 2010-05-08): parameters → `trent_core::Kms` IAM calls →
//! XML. Policy documents in responses are URL-encoded, as IAM returns them.

use axum::response::Response;
use trent_core::Caller;
use trent_core::Kms;
use trent_core::clock::iso8601;
use trent_core::iam::records::{Group, ManagedPolicy, PolicyVersion, Role, User};
use trent_core::iam::{DeletionStatus, Entity, IamError, entity_arn};

use super::{Params, Xml, error_code, error_response, success, url_encode};

pub const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// Handles one authenticated IAM request.
pub async fn handle(kms: &Kms, caller: &Caller, params: &Params, request_id: &str) -> Response {
    let action = params.get("Action").unwrap_or_default().to_string();
    match dispatch(kms, caller, &action, params).await {
        Ok(result) => success(NAMESPACE, &action, result, request_id),
        Err(e) => {
            let (status, code) = error_code(&e, false);
            error_response(NAMESPACE, status, code, &e.to_string(), request_id)
        }
    }
}

fn entity_of(action: &str) -> Option<Entity> {
    if action.contains("User") {
        Some(Entity::User)
    } else if action.contains("Group") {
        Some(Entity::Group)
    } else if action.contains("Role") {
        Some(Entity::Role)
    } else {
        None
    }
}

fn entity_name(params: &Params, entity: Entity) -> Result<&str, IamError> {
    params.required(match entity {
        Entity::User => "UserName",
        Entity::Group => "GroupName",
        Entity::Role => "RoleName",
    })
}

async fn dispatch(
    kms: &Kms,
    caller: &Caller,
    action: &str,
    p: &Params,
) -> Result<Option<Xml>, IamError> {
    let a = caller.account.as_str();
    let mut x = Xml::new();
    match action {
        "CreateUser" => {
            let u = kms
                .iam_create_user(caller, p.required("UserName")?, p.get("Path"), p.tags())
                .await?;
            user_xml(&mut x, a, &u, "User");
        }
        "GetUser" => {
            let u = kms.iam_get_user(caller, p.get("UserName")).await?;
            user_xml(&mut x, a, &u, "User");
        }
        "ListUsers" => {
            let users = kms.iam_list_users(caller, p.get("PathPrefix")).await?;
            x.open("Users");
            for u in &users {
                user_xml(&mut x, a, u, "member");
            }
            x.close("Users").leaf("IsTruncated", "false");
        }
        "DeleteUser" => kms.iam_delete_user(caller, p.required("UserName")?).await?,
        "TagUser" => {
            kms.iam_tag_user(caller, p.required("UserName")?, p.tags(), vec![])
                .await?
        }
        "UntagUser" => {
            kms.iam_tag_user(caller, p.required("UserName")?, vec![], p.list("TagKeys"))
                .await?
        }
        "ListUserTags" => {
            let u = kms
                .iam_get_user(caller, Some(p.required("UserName")?))
                .await?;
            tags_xml(&mut x, &u.tags);
            x.leaf("IsTruncated", "false");
        }
        "CreateAccessKey" => {
            let k = kms.iam_create_access_key(caller, p.get("UserName")).await?;
            x.open("AccessKey")
                .leaf("UserName", &k.user_name)
                .leaf("AccessKeyId", &k.access_key_id)
                .leaf("Status", "Active")
                .leaf("SecretAccessKey", &k.secret_access_key)
                .leaf("CreateDate", &iso8601(k.created_ms))
                .close("AccessKey");
        }
        "ListAccessKeys" => {
            let keys = kms.iam_list_access_keys(caller, p.get("UserName")).await?;
            x.open("AccessKeyMetadata");
            for k in keys {
                x.open("member")
                    .leaf("UserName", &k.user_name)
                    .leaf("AccessKeyId", &k.access_key_id)
                    .leaf("Status", if k.active { "Active" } else { "Inactive" })
                    .leaf("CreateDate", &iso8601(k.created_ms))
                    .close("member");
            }
            x.close("AccessKeyMetadata").leaf("IsTruncated", "false");
        }
        "UpdateAccessKey" => {
            let active = match p.required("Status")? {
                "Active" => true,
                "Inactive" => false,
                other => {
                    return Err(IamError::Validation(format!(
                        "1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
                    )));
                }
            };
            kms.iam_change_access_key(
                caller,
                p.get("UserName"),
                p.required("AccessKeyId")?,
                Some(active),
            )
            .await?
        }
        "DeleteAccessKey" => {
            kms.iam_change_access_key(caller, p.get("UserName"), p.required("AccessKeyId")?, None)
                .await?
        }
        "CreateGroup" => {
            let g = kms
                .iam_create_group(caller, p.required("GroupName")?, p.get("Path"))
                .await?;
            group_xml(&mut x, a, &g, "Group");
        }
        "GetGroup" => {
            let g = kms.iam_get_group(caller, p.required("GroupName")?).await?;
            group_xml(&mut x, a, &g, "Group");
            x.open("Users");
            for name in &g.members {
                if let Ok(u) = kms.iam_get_user(caller, Some(name)).await {
                    user_xml(&mut x, a, &u, "member");
                }
            }
            x.close("Users").leaf("IsTruncated", "false");
        }
        "ListGroups" | "ListGroupsForUser" => {
            let user = if action == "ListGroupsForUser" {
                Some(p.required("UserName")?)
            } else {
                None
            };
            let groups = kms.iam_list_groups(caller, user).await?;
            x.open("Groups");
            for g in &groups {
                group_xml(&mut x, a, g, "member");
            }
            x.close("Groups").leaf("IsTruncated", "false");
        }
        "DeleteGroup" => {
            kms.iam_delete_group(caller, p.required("GroupName")?)
                .await?
        }
        "AddUserToGroup" | "RemoveUserFromGroup" => {
            kms.iam_group_membership(
                caller,
                p.required("GroupName")?,
                p.required("UserName")?,
                action == "AddUserToGroup",
            )
            .await?
        }
        "CreateRole" => {
            let input = trent_core::iam::CreateRoleInput {
                name: p.required("RoleName")?.to_string(),
                path: p.get("Path").map(str::to_string),
                trust_policy: p.required("AssumeRolePolicyDocument")?.to_string(),
                description: p.get("Description").map(str::to_string),
                max_session_duration: p.int("MaxSessionDuration")?,
                tags: p.tags(),
            };
            let r = kms.iam_create_role(caller, input).await?;
            role_xml(&mut x, a, &r, "Role");
        }
        "CreateServiceLinkedRole" => {
            let r = kms
                .iam_create_service_linked_role(
                    caller,
                    p.required("AWSServiceName")?,
                    p.get("Description"),
                    p.get("CustomSuffix"),
                )
                .await?;
            role_xml(&mut x, a, &r, "Role");
        }
        "DeleteServiceLinkedRole" => {
            let id = kms
                .iam_delete_service_linked_role(caller, p.required("RoleName")?)
                .await?;
            x.leaf("DeletionTaskId", &id);
        }
        "GetServiceLinkedRoleDeletionStatus" => {
            match kms
                .iam_service_linked_role_deletion_status(caller, p.required("DeletionTaskId")?)?
            {
                DeletionStatus::Succeeded => {
                    x.leaf("Status", "SUCCEEDED");
                }
                DeletionStatus::Failed(usage) => {
                    x.leaf("Status", "FAILED").open("Reason").leaf(
                        "Reason",
                        "The service-linked role is still used by resources of its service.",
                    );
                    x.open("RoleUsageList");
                    for (region, resources) in &usage {
                        x.open("member").leaf("Region", region).open("Resources");
                        for arn in resources {
                            x.leaf("member", arn);
                        }
                        x.close("Resources").close("member");
                    }
                    x.close("RoleUsageList").close("Reason");
                }
            }
        }
        "UpdateRoleDescription" => {
            let r = kms
                .iam_update_role_description(
                    caller,
                    p.required("RoleName")?,
                    p.required("Description")?,
                )
                .await?;
            role_xml(&mut x, a, &r, "Role");
        }
        "UpdateRole" => {
            kms.iam_update_role(
                caller,
                p.required("RoleName")?,
                p.get("Description"),
                p.int("MaxSessionDuration")?,
            )
            .await?
        }
        "GetRole" => {
            let r = kms.iam_get_role(caller, p.required("RoleName")?).await?;
            role_xml(&mut x, a, &r, "Role");
        }
        "ListRoles" => {
            let roles = kms.iam_list_roles(caller, p.get("PathPrefix")).await?;
            x.open("Roles");
            for r in &roles {
                role_xml(&mut x, a, r, "member");
            }
            x.close("Roles").leaf("IsTruncated", "false");
        }
        "DeleteRole" => kms.iam_delete_role(caller, p.required("RoleName")?).await?,
        "UpdateAssumeRolePolicy" => {
            kms.iam_update_assume_role_policy(
                caller,
                p.required("RoleName")?,
                p.required("PolicyDocument")?,
            )
            .await?
        }
        "TagRole" => {
            kms.iam_tag_role(caller, p.required("RoleName")?, p.tags(), vec![])
                .await?
        }
        "UntagRole" => {
            kms.iam_tag_role(caller, p.required("RoleName")?, vec![], p.list("TagKeys"))
                .await?
        }
        "ListRoleTags" => {
            let r = kms.iam_get_role(caller, p.required("RoleName")?).await?;
            tags_xml(&mut x, &r.tags);
            x.leaf("IsTruncated", "false");
        }
        "PutUserPolicy" | "PutGroupPolicy" | "PutRolePolicy" => {
            let e = entity_of(action).ok_or_else(unknown)?;
            kms.iam_put_inline_policy(
                caller,
                e,
                entity_name(p, e)?,
                p.required("PolicyName")?,
                p.required("PolicyDocument")?,
            )
            .await?
        }
        "GetUserPolicy" | "GetGroupPolicy" | "GetRolePolicy" => {
            let e = entity_of(action).ok_or_else(unknown)?;
            let (name, policy) = (entity_name(p, e)?, p.required("PolicyName")?);
            let doc = kms.iam_get_inline_policy(caller, e, name, policy).await?;
            let name_tag = match e {
                Entity::User => "UserName",
                Entity::Group => "GroupName",
                Entity::Role => "RoleName",
            };
            x.leaf(name_tag, name)
                .leaf("PolicyName", policy)
                .leaf("PolicyDocument", &url_encode(&doc));
        }
        "ListUserPolicies" | "ListGroupPolicies" | "ListRolePolicies" => {
            let e = entity_of(action).ok_or_else(unknown)?;
            let names = kms
                .iam_list_inline_policies(caller, e, entity_name(p, e)?)
                .await?;
            x.open("PolicyNames");
            for n in names {
                x.leaf("member", &n);
            }
            x.close("PolicyNames").leaf("IsTruncated", "false");
        }
        "DeleteUserPolicy" | "DeleteGroupPolicy" | "DeleteRolePolicy" => {
            let e = entity_of(action).ok_or_else(unknown)?;
            kms.iam_delete_inline_policy(caller, e, entity_name(p, e)?, p.required("PolicyName")?)
                .await?
        }
        "AttachUserPolicy" | "AttachGroupPolicy" | "AttachRolePolicy" | "DetachUserPolicy"
        | "DetachGroupPolicy" | "DetachRolePolicy" => {
            let e = entity_of(action).ok_or_else(unknown)?;
            kms.iam_attach_policy(
                caller,
                e,
                entity_name(p, e)?,
                p.required("PolicyArn")?,
                action.starts_with("Attach"),
            )
            .await?
        }
        "ListAttachedUserPolicies" | "ListAttachedGroupPolicies" | "ListAttachedRolePolicies" => {
            let e = entity_of(action).ok_or_else(unknown)?;
            let attached = kms
                .iam_list_attached_policies(caller, e, entity_name(p, e)?)
                .await?;
            x.open("AttachedPolicies");
            for (name, arn) in attached {
                x.open("member")
                    .leaf("PolicyName", &name)
                    .leaf("PolicyArn", &arn)
                    .close("member");
            }
            x.close("AttachedPolicies").leaf("IsTruncated", "false");
        }
        "CreatePolicy" => {
            let policy = kms
                .iam_create_policy(
                    caller,
                    p.required("PolicyName")?,
                    p.get("Path"),
                    p.required("PolicyDocument")?,
                    p.get("Description"),
                )
                .await?;
            policy_xml(&mut x, a, &policy, 0, "Policy");
        }
        "GetPolicy" => {
            let (policy, n) = kms.iam_get_policy(caller, p.required("PolicyArn")?).await?;
            policy_xml(&mut x, a, &policy, n, "Policy");
        }
        "ListPolicies" => {
            let policies = kms
                .iam_list_policies(caller, p.bool("OnlyAttached"))
                .await?;
            x.open("Policies");
            for (policy, n) in &policies {
                policy_xml(&mut x, a, policy, *n, "member");
            }
            x.close("Policies").leaf("IsTruncated", "false");
        }
        "DeletePolicy" => {
            kms.iam_delete_policy(caller, p.required("PolicyArn")?)
                .await?
        }
        "GetPolicyVersion" => {
            let (v, is_default) = kms
                .iam_get_policy_version(caller, p.required("PolicyArn")?, p.required("VersionId")?)
                .await?;
            version_xml(&mut x, &v, is_default, "PolicyVersion", true);
        }
        "CreatePolicyVersion" => {
            let v = kms
                .iam_create_policy_version(
                    caller,
                    p.required("PolicyArn")?,
                    p.required("PolicyDocument")?,
                    p.bool("SetAsDefault"),
                )
                .await?;
            version_xml(&mut x, &v, p.bool("SetAsDefault"), "PolicyVersion", false);
        }
        "ListPolicyVersions" => {
            let policy = kms
                .iam_list_policy_versions(caller, p.required("PolicyArn")?)
                .await?;
            x.open("Versions");
            for v in policy.versions.iter().rev() {
                version_xml(&mut x, v, v.id == policy.default_version, "member", false);
            }
            x.close("Versions").leaf("IsTruncated", "false");
        }
        "DeletePolicyVersion" => {
            kms.iam_delete_policy_version(
                caller,
                p.required("PolicyArn")?,
                p.required("VersionId")?,
            )
            .await?
        }
        "SetDefaultPolicyVersion" => {
            kms.iam_set_default_policy_version(
                caller,
                p.required("PolicyArn")?,
                p.required("VersionId")?,
            )
            .await?
        }
        "SimulatePrincipalPolicy" | "SimulateCustomPolicy" => {
            return super::iam_simulate::dispatch(kms, caller, action, p)
                .await
                .map(Some);
        }
        _ => return Err(unknown()),
    }
    let body = x.finish();
    // UpdateRole's output is an empty structure: SDKs expect its (empty) result element.
    Ok((!body.is_empty() || action == "UpdateRole").then(|| {
        let mut out = Xml::new();
        out.raw(&body);
        out
    }))
}

fn unknown() -> IamError {
    IamError::InvalidInput(
        "The action or operation requested is invalid. Verify that the action is typed correctly."
            .into(),
    )
}

fn tags_xml(x: &mut Xml, tags: &[(String, String)]) {
    x.open("Tags");
    for (k, v) in tags {
        x.open("member")
            .leaf("Key", k)
            .leaf("Value", v)
            .close("member");
    }
    x.close("Tags");
}

fn user_xml(x: &mut Xml, account: &str, u: &User, tag: &str) {
    x.open(tag)
        .leaf("Path", &u.path)
        .leaf("UserName", &u.name)
        .leaf("UserId", &u.id)
        .leaf("Arn", &entity_arn(account, "user", &u.path, &u.name))
        .leaf("CreateDate", &iso8601(u.created_ms));
    if !u.tags.is_empty() {
        tags_xml(x, &u.tags);
    }
    x.close(tag);
}

fn group_xml(x: &mut Xml, account: &str, g: &Group, tag: &str) {
    x.open(tag)
        .leaf("Path", &g.path)
        .leaf("GroupName", &g.name)
        .leaf("GroupId", &g.id)
        .leaf("Arn", &entity_arn(account, "group", &g.path, &g.name))
        .leaf("CreateDate", &iso8601(g.created_ms))
        .close(tag);
}

fn role_xml(x: &mut Xml, account: &str, r: &Role, tag: &str) {
    x.open(tag)
        .leaf("Path", &r.path)
        .leaf("RoleName", &r.name)
        .leaf("RoleId", &r.id)
        .leaf("Arn", &entity_arn(account, "role", &r.path, &r.name))
        .leaf("CreateDate", &iso8601(r.created_ms))
        .leaf("AssumeRolePolicyDocument", &url_encode(&r.trust_policy))
        .leaf("MaxSessionDuration", &r.max_session_duration.to_string());
    if let Some(d) = &r.description {
        x.leaf("Description", d);
    }
    if !r.tags.is_empty() {
        tags_xml(x, &r.tags);
    }
    x.close(tag);
}

fn policy_xml(x: &mut Xml, account: &str, p: &ManagedPolicy, attachments: usize, tag: &str) {
    x.open(tag)
        .leaf("PolicyName", &p.name)
        .leaf("PolicyId", &p.id)
        .leaf("Arn", &p.arn(account))
        .leaf("Path", &p.path)
        .leaf("DefaultVersionId", &p.default_version)
        .leaf("AttachmentCount", &attachments.to_string())
        .leaf("PermissionsBoundaryUsageCount", "0")
        .leaf(
            "IsAttachable",
            if trent_core::iam::aws_managed::is_aws_managed(p) {
                "false"
            } else {
                "true"
            },
        )
        .leaf("CreateDate", &iso8601(p.created_ms))
        .leaf("UpdateDate", &iso8601(p.updated_ms));
    if let Some(d) = &p.description {
        x.leaf("Description", d);
    }
    x.close(tag);
}

fn version_xml(x: &mut Xml, v: &PolicyVersion, is_default: bool, tag: &str, with_document: bool) {
    x.open(tag);
    if with_document {
        x.leaf("Document", &url_encode(&v.document));
    }
    x.leaf("VersionId", &v.id)
        .leaf(
            "IsDefaultVersion",
            if is_default { "true" } else { "false" },
        )
        .leaf("CreateDate", &iso8601(v.created_ms))
        .close(tag);
}
