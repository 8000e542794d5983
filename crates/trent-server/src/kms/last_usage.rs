//! GetKeyLastUsage: the domain resolves the key and authorizes `kms:GetKeyLastUsage`; the
//! answer comes from the audit trail's usage table (`trent_audit::usage`), which the edge
//! feeds from the records of successful cryptographic calls, and with several nodes on one
//! database from every node's shipped events too (the newest use wins).

use serde::Deserialize;
use serde_json::{Map, Value, json};
use trent_core::Caller;

use super::error::ApiError;
use super::operations::{parse, to_json};
use super::shapes::epoch_seconds;
use crate::server::AppState;

/// How long GetKeyLastUsage waits for the shared trail (several nodes).
const SHARED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct GetKeyLastUsageRequest {
    key_id: Option<String>,
}

pub(super) async fn get_key_last_usage(
    app: &AppState,
    caller: &Caller,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    // Counted like every other KMS request, though the domain does not answer it.
    app.kms
        .admit(caller, trent_core::quotas::RateQuota::GetKeyLastUsage)?;
    let request: GetKeyLastUsageRequest = parse(body)?;
    let key = app
        .kms
        .key_for_last_usage(caller, request.key_id.as_deref())
        .await?;
    let Some(audit) = &app.audit else {
        return Err(ApiError::Domain(trent_core::KmsError::UnsupportedOperation(
            "GetKeyLastUsage is answered from the audit trail, which is off ([audit] enabled = false)"
                .into(),
        )));
    };
    let arn = trent_core::ids::key_arn(&key.region, &key.account_id, &key.key_id);
    // Tracking of a key starts when it was created or when the trail began, whichever is later.
    let tracking_start = audit.usage.tracking_start_ms().max(key.created_ms);
    let mut answer = Map::new();
    answer.insert("KeyId".into(), json!(arn));
    answer.insert(
        "KeyCreationDate".into(),
        json!(epoch_seconds(key.created_ms)),
    );
    answer.insert(
        "TrackingStartDate".into(),
        json!(epoch_seconds(tracking_start)),
    );
    let mut latest = audit.usage.get(&arn);
    // Several nodes: the newest use over every node's shipped events (seconds; this node's own
    // table has milliseconds and wins a tie).
    if let Some(shipper) = &audit.shared {
        match tokio::time::timeout(
            SHARED_TIMEOUT,
            shipper.trail().last_usage(&arn, &key.account_id),
        )
        .await
        {
            Ok(Ok(Some(other))) => {
                if latest
                    .as_ref()
                    .is_none_or(|own| other.time_ms / 1000 > own.time_ms / 1000)
                {
                    latest = Some(other);
                }
            }
            Ok(Ok(None)) => {}
            // This node's own uses still answer.
            Ok(Err(e)) => {
                tracing::warn!(target: "trent::audit", error = %e, "GetKeyLastUsage could not read the shared audit trail");
            }
            Err(_) => {
                tracing::warn!(target: "trent::audit", "GetKeyLastUsage: the shared audit trail did not answer in time");
            }
        }
    }
    if let Some(usage) = latest {
        let mut last = Map::new();
        last.insert("Operation".into(), json!(usage.operation));
        last.insert("Timestamp".into(), json!(epoch_seconds(usage.time_ms)));
        last.insert("CloudTrailEventId".into(), json!(usage.event_id));
        if let Some(id) = usage.request_id {
            last.insert("KmsRequestId".into(), json!(id));
        }
        answer.insert("KeyLastUsage".into(), Value::Object(last));
    }
    to_json(&Value::Object(answer))
}
