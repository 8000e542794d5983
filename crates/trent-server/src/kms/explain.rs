//! `ExplainDecision`, a Trent extension of the KMS API (`X-Amz-Target:
//! TrentService.ExplainDecision`): why the caller's own request, named by the request id Trent
//! answered it with (`x-amzn-RequestId`), was denied. Authorized by `trent:ExplainDecision`;
//! what it may reveal is decided in `trent_core::explain` (docs/decisions.md).
//!
//! ```text
//! {"RequestId": "..."} → {"RequestId", "Action", "KeyArn"?, "Decision", "DecidedBy", "Reason",
//!   "Needed"?, "Statements": [{"PolicyType", "PolicyIndex"?, "Statement", "Sid"?}],
//!   "WithheldStatements", "RequestTime"}
//! ```

use serde::{Deserialize, Serialize};
use trent_core::{Caller, Kms};

use super::error::ApiError;
use super::operations::{parse, to_json};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ExplainDecisionRequest {
    request_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Statement<'a> {
    policy_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_index: Option<usize>,
    statement: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExplainDecisionResponse<'a> {
    request_id: &'a str,
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_arn: Option<&'a str>,
    decision: &'a str,
    decided_by: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    needed: Option<&'a str>,
    statements: Vec<Statement<'a>>,
    withheld_statements: usize,
    /// Epoch seconds, as KMS's timestamps.
    request_time: f64,
}

/// Answers `ExplainDecision` with the JSON `body`.
pub async fn explain_decision(
    kms: &Kms,
    caller: &Caller,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let r: ExplainDecisionRequest = parse(body)?;
    let e = kms.explain_denial(caller, r.request_id.as_deref()).await?;
    to_json(&ExplainDecisionResponse {
        request_id: &e.request_id,
        action: &e.action,
        key_arn: e.key_arn.as_deref(),
        decision: e.decision,
        decided_by: e.decided_by,
        reason: &e.reason,
        needed: e.needed.as_deref(),
        statements: e
            .statements
            .iter()
            .map(|s| Statement {
                policy_type: s.policy_type,
                policy_index: s.policy_index,
                statement: s.statement,
                sid: s.sid.as_deref(),
            })
            .collect(),
        withheld_statements: e.withheld_statements,
        #[allow(clippy::cast_precision_loss, reason = "epoch milliseconds fit an f64")]
        request_time: e.at_ms as f64 / 1000.0,
    })
}
