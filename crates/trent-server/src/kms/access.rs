//! `AnalyzeKeyAccess`, a Trent extension of the KMS API (`X-Amz-Target:
//! TrentService.AnalyzeKeyAccess`): who can use a key of the caller's account, or with
//! `Policy` what setting that key policy would change — the operator's key-access analysis
//! (`operator_access.rs`, same JSON) for a caller who may read everything it reads
//! (`trent_core::access`, docs/decisions.md).
//!
//! ```text
//! {"KeyId": "...", "Policy"?: "<key policy>"} → the analysis, or the dry run
//! ```

use serde::Deserialize;
use trent_core::access::CallerKeyAccess;
use trent_core::{Caller, Kms};

use super::error::ApiError;
use super::operations::parse;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct AnalyzeKeyAccessRequest {
    key_id: Option<String>,
    policy: Option<String>,
}

/// Answers `AnalyzeKeyAccess` with the JSON `body`.
pub async fn analyze_key_access(
    kms: &Kms,
    caller: &Caller,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let r: AnalyzeKeyAccessRequest = parse(body)?;
    let answer = kms
        .analyze_key_access(caller, r.key_id.as_deref(), r.policy.as_deref())
        .await?;
    let json = match &answer {
        CallerKeyAccess::Access(a) => crate::operator_access::render(a),
        CallerKeyAccess::Change(c) => crate::operator_access::render_change(c),
    };
    Ok(json.to_string().into_bytes())
}
