//! The grant operations on the wire: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
//! RevokeGrant.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use trent_core::grants::{CreateGrantInput, Grant, GrantConstraints, GrantList, ListGrantsInput};
use trent_core::{Caller, Kms};

use super::error::ApiError;
use super::operation::Operation;
use super::operations::{empty, paged, parse, to_json};
use super::shapes::epoch_seconds;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ConstraintsShape {
    encryption_context_subset: Option<BTreeMap<String, String>>,
    encryption_context_equals: Option<BTreeMap<String, String>>,
    source_arn: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateGrantRequest {
    key_id: Option<String>,
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    grantee_service_principal: Option<String>,
    retiring_service_principal: Option<String>,
    operations: Option<Vec<String>>,
    constraints: Option<ConstraintsShape>,
    grant_tokens: Option<Vec<String>>,
    name: Option<String>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct GrantListRequest {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
    grant_id: Option<String>,
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    grantee_service_principal: Option<String>,
    retiring_service_principal: Option<String>,
    grant_tokens: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct GrantChangeRequest {
    grant_token: Option<String>,
    key_id: Option<String>,
    grant_id: Option<String>,
    dry_run: Option<bool>,
}

/// Handles the grant operations; `None` when `operation` is not one of them.
pub async fn dispatch(
    kms: &Kms,
    caller: &Caller,
    operation: Operation,
    body: &[u8],
) -> Option<Result<Vec<u8>, ApiError>> {
    Some(match operation {
        Operation::CreateGrant => create(kms, caller, body).await,
        Operation::ListGrants => list(kms, caller, body, false).await,
        Operation::ListRetirableGrants => list(kms, caller, body, true).await,
        Operation::RetireGrant => change(kms, caller, body, true).await,
        Operation::RevokeGrant => change(kms, caller, body, false).await,
        _ => return None,
    })
}

async fn create(kms: &Kms, caller: &Caller, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let r: CreateGrantRequest = parse(body)?;
    let input = CreateGrantInput {
        key_id: r.key_id,
        grantee_principal: r.grantee_principal,
        retiring_principal: r.retiring_principal,
        grantee_service_principal: r.grantee_service_principal,
        retiring_service_principal: r.retiring_service_principal,
        operations: r.operations,
        constraints: r.constraints.map(|c| GrantConstraints {
            encryption_context_equals: c.encryption_context_equals,
            encryption_context_subset: c.encryption_context_subset,
            source_arn: c.source_arn,
        }),
        grant_tokens: r.grant_tokens.unwrap_or_default(),
        name: r.name,
        dry_run: r.dry_run.unwrap_or(false),
    };
    let (grant_id, token) = kms.create_grant(caller, input).await?;
    to_json(&json!({ "GrantId": grant_id, "GrantToken": token }))
}

async fn list(
    kms: &Kms,
    caller: &Caller,
    body: &[u8],
    retirable: bool,
) -> Result<Vec<u8>, ApiError> {
    let r: GrantListRequest = parse(body)?;
    let page: GrantList = if retirable {
        kms.list_retirable_grants(
            caller,
            r.retiring_principal.as_deref(),
            r.retiring_service_principal.as_deref(),
            r.limit,
            r.marker.as_deref(),
        )
        .await?
    } else {
        let tokens = r.grant_tokens.unwrap_or_default();
        kms.list_grants(
            caller,
            ListGrantsInput {
                key_id: r.key_id.as_deref(),
                limit: r.limit,
                marker: r.marker.as_deref(),
                grant_id: r.grant_id.as_deref(),
                grantee_principal: r.grantee_principal.as_deref(),
                grantee_service_principal: r.grantee_service_principal.as_deref(),
                grant_tokens: &tokens,
            },
        )
        .await?
    };
    let grants: Vec<Value> = page.grants.iter().map(|g| entry(g)).collect();
    paged(json!({ "Grants": grants }), page.next_marker)
}

async fn change(
    kms: &Kms,
    caller: &Caller,
    body: &[u8],
    retire: bool,
) -> Result<Vec<u8>, ApiError> {
    let r: GrantChangeRequest = parse(body)?;
    let dry_run = r.dry_run.unwrap_or(false);
    if retire {
        kms.retire_grant(
            caller,
            r.grant_token.as_deref(),
            r.key_id.as_deref(),
            r.grant_id.as_deref(),
            dry_run,
        )
        .await?;
    } else {
        kms.revoke_grant(caller, r.key_id.as_deref(), r.grant_id.as_deref(), dry_run)
            .await?;
    }
    empty()
}

/// A `GrantListEntry`.
fn entry(g: &Grant) -> Value {
    let mut e = json!({
        "KeyId": trent_core::ids::key_arn(&g.key_region, &g.key_account, &g.key_id),
        "GrantId": g.grant_id,
        "CreationDate": epoch_seconds(g.created_ms),
        "GranteePrincipal": g.grantee_principal,
        "IssuingAccount": format!("arn:aws:iam::{}:root", g.issuing_account),
        "Operations": g.operations,
    });
    if let Value::Object(m) = &mut e {
        if let Some(n) = &g.name {
            m.insert("Name".into(), json!(n));
        }
        // A service grantee is also in GranteePrincipal (AWS: "the GranteePrincipal field
        // contains the service principal"); a retiring service principal only in its own field.
        if let Some(s) = &g.grantee_service_principal {
            m.insert("GranteeServicePrincipal".into(), json!(s));
        }
        match (&g.retiring_service_principal, &g.retiring_principal) {
            (Some(s), _) => {
                m.insert("RetiringServicePrincipal".into(), json!(s));
            }
            (None, Some(r)) => {
                m.insert("RetiringPrincipal".into(), json!(r));
            }
            (None, None) => {}
        }
        if let Some(c) = &g.constraints {
            let mut cm = serde_json::Map::new();
            if let Some(eq) = &c.encryption_context_equals {
                cm.insert("EncryptionContextEquals".into(), json!(eq));
            }
            if let Some(sub) = &c.encryption_context_subset {
                cm.insert("EncryptionContextSubset".into(), json!(sub));
            }
            if let Some(arn) = &c.source_arn {
                cm.insert("SourceArn".into(), json!(arn));
            }
            m.insert("Constraints".into(), Value::Object(cm));
        }
    }
    e
}
