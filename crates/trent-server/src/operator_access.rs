//! The operator's key-access endpoint, which `trent access KEY` calls:
//! `POST /trent-admin/key-access {"KeyId": "<key ARN or id>"}` → who can use the key
//! (`trent_core::access`), as JSON:
//!
//! ```text
//! {"KeyArn", "Principals": [{"Principal", "Kind", "Allowed": [...], "AllowedConditionKeys": [...],
//!   "Conditional": [{"Action", "ConditionKeys": [...]}]}],
//!  "Grants": [{"GrantId", "Grantee", "Operations": [...], "Constrained"}],
//!  "Findings": [{"Severity", "Message"}]}
//! ```
//!
//! With `"Policy": "<key policy document>"` it is a dry run of PutKeyPolicy with that policy
//! (`trent access KEY --policy FILE`); nothing is changed:
//!
//! ```text
//! {"KeyArn", "Changes": [{"Principal", "Kind", "Gained": [...], "Lost": [...],
//!   "GainedConditional": [{"Action", "ConditionKeys"}], "LostConditional": [...]}],
//!  "NewFindings": [...], "ResolvedFindings": [...], "After": <the analysis above>}
//! ```
//!
//! Served only on the operator listener, behind its loopback and token checks (`operator.rs`).

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use trent_core::access::{Finding, KeyAccess, PolicyChange};
use trent_core::{Kms, KmsError};

/// The key-access analysis.
pub const KEY_ACCESS_PATH: &str = "/trent-admin/key-access";

#[derive(Deserialize)]
struct KeyAccessRequest {
    #[serde(rename = "KeyId")]
    key_id: String,
    /// A proposed key policy: answer what setting it would change.
    #[serde(rename = "Policy")]
    policy: Option<String>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        json!({"Error": code, "Message": message}).to_string(),
    )
        .into_response()
}

/// Answers one key-access request with body `body`.
pub(crate) async fn key_access(kms: &Kms, body: &[u8]) -> Response {
    let request: KeyAccessRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                &format!("expected {{\"KeyId\": \"<key ARN or id>\"}}: {e}"),
            );
        }
    };
    let answer = match &request.policy {
        Some(policy) => kms
            .operator_policy_change(&request.key_id, policy)
            .await
            .map(|c| render_change(&c)),
        None => kms
            .operator_key_access(&request.key_id)
            .await
            .map(|a| render(&a)),
    };
    match answer {
        Ok(json) => (StatusCode::OK, json.to_string()).into_response(),
        Err(KmsError::NotFound(m)) => error(StatusCode::NOT_FOUND, "NoSuchKey", &m),
        Err(KmsError::MalformedPolicyDocument(m)) => {
            error(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", &m)
        }
        Err(e) => {
            tracing::error!(error = %e, "key access analysis failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "the analysis failed; see the server's log",
            )
        }
    }
}

/// The analysis as JSON (also `AnalyzeKeyAccess`'s answer, `kms/access.rs`).
pub(crate) fn render(a: &KeyAccess) -> serde_json::Value {
    let principals: Vec<_> = a
        .principals
        .iter()
        .map(|p| {
            json!({
                "Principal": p.principal,
                "Kind": p.kind,
                "Allowed": p.allowed,
                "AllowedConditionKeys": p.allowed_conditions,
                "Conditional": p.conditional.iter().map(|(action, keys)| {
                    json!({"Action": action, "ConditionKeys": keys})
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let grants: Vec<_> = a
        .grants
        .iter()
        .map(|g| {
            json!({
                "GrantId": g.grant_id,
                "Grantee": g.grantee,
                "Operations": g.operations,
                "Constrained": g.constrained,
            })
        })
        .collect();
    json!({"KeyArn": a.key_arn, "Principals": principals, "Grants": grants,
           "Findings": findings(&a.findings)})
}

fn findings(list: &[Finding]) -> Vec<serde_json::Value> {
    list.iter()
        .map(|f| json!({"Severity": f.severity, "Message": f.message}))
        .collect()
}

/// The dry run as JSON.
pub(crate) fn render_change(c: &PolicyChange) -> serde_json::Value {
    let changes: Vec<_> = c
        .changes
        .iter()
        .map(|p| {
            json!({
                "Principal": p.principal,
                "Kind": p.kind,
                "Gained": p.gained,
                "Lost": p.lost,
                "GainedConditional": p.gained_conditional.iter().map(|(action, keys)| {
                    json!({"Action": action, "ConditionKeys": keys})
                }).collect::<Vec<_>>(),
                "LostConditional": p.lost_conditional,
            })
        })
        .collect();
    json!({"KeyArn": c.key_arn, "Changes": changes, "NewFindings": findings(&c.new_findings),
           "ResolvedFindings": findings(&c.resolved_findings), "After": render(&c.after)})
}
