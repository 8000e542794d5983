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
//! Served only on the operator listener, behind its loopback and token checks (`operator.rs`).

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use trent_core::access::KeyAccess;
use trent_core::{Kms, KmsError};

/// The key-access analysis.
pub const KEY_ACCESS_PATH: &str = "/trent-admin/key-access";

#[derive(Deserialize)]
struct KeyAccessRequest {
    #[serde(rename = "KeyId")]
    key_id: String,
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
    match kms.operator_key_access(&request.key_id).await {
        Ok(access) => (StatusCode::OK, render(&access).to_string()).into_response(),
        Err(KmsError::NotFound(m)) => error(StatusCode::NOT_FOUND, "NoSuchKey", &m),
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

fn render(a: &KeyAccess) -> serde_json::Value {
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
    let findings: Vec<_> = a
        .findings
        .iter()
        .map(|f| json!({"Severity": f.severity, "Message": f.message}))
        .collect();
    json!({"KeyArn": a.key_arn, "Principals": principals, "Grants": grants, "Findings": findings})
}
