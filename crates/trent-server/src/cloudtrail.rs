//! CloudTrail's `LookupEvents` over awsJson1.1 (`X-Amz-Target:
//! com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`, SigV4 service
//! `cloudtrail`), answered from the audit trail, so `aws cloudtrail lookup-events` works
//! unchanged. Each account sees only the events recorded in it; the permission is
//! `cloudtrail:LookupEvents`, decided by the domain from the caller's identity policies.
//! With several nodes on one database the events come from the shared trail (every node's),
//! else from this node's files.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use trent_audit::read::{self, Attribute, Cursor, Lookup};
use trent_audit::shared::SharedCursor;
use trent_core::Caller;

use crate::kms::error_response;
use crate::server::AppState;

/// The awsJson1.1 target prefix of CloudTrail's operations.
const TARGET_PREFIX: &[u8] = b"com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

/// Events per page at most, and by default (AWS's bounds).
const MAX_RESULTS: usize = 50;

/// The operation the request's `X-Amz-Target` names, if it is CloudTrail's.
pub fn operation_of(headers: &HeaderMap) -> Option<&str> {
    let target = headers.get("x-amz-target")?.as_bytes();
    let name = target.strip_prefix(TARGET_PREFIX)?;
    std::str::from_utf8(name).ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LookupEventsRequest {
    #[serde(default)]
    lookup_attributes: Vec<LookupAttribute>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    event_category: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LookupAttribute {
    attribute_key: String,
    attribute_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LookupEventsResponse {
    events: Vec<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    event_id: String,
    event_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_only: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    event_time: i64,
    event_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    resources: Vec<EventResource>,
    cloud_trail_event: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventResource {
    resource_type: String,
    resource_name: String,
}

fn bad_request(code: &str, message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, code, message)
}

/// Handles one authenticated CloudTrail request.
pub async fn handle(
    app: &AppState,
    caller: &Caller,
    operation: Option<&str>,
    body: &[u8],
) -> Response {
    match operation {
        Some("LookupEvents") => {}
        Some(_) => {
            return bad_request(
                "UnsupportedOperationException",
                "Trent serves only LookupEvents of the CloudTrail API.",
            );
        }
        None => return bad_request("UnknownOperationException", ""),
    }
    // CloudTrail's quota: 2 LookupEvents per second per account and Region.
    if app
        .kms
        .admit(caller, trent_core::quotas::RateQuota::LookupEvents)
        .is_err()
    {
        return bad_request("ThrottlingException", "Rate exceeded");
    }
    if let Err(e) = app
        .kms
        .authorize_iam(caller, "cloudtrail:LookupEvents", "*")
    {
        return bad_request("AccessDeniedException", &e.to_string());
    }
    let request: LookupEventsRequest = if body.is_empty() {
        LookupEventsRequest {
            lookup_attributes: Vec::new(),
            start_time: None,
            end_time: None,
            event_category: None,
            max_results: None,
            next_token: None,
        }
    } else {
        match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return bad_request("SerializationException", &e.to_string()),
        }
    };
    let shared = app.audit.as_ref().and_then(|a| a.shared.clone());
    let (lookup, shared_cursor) = match lookup_of(&caller.account, request, shared.is_some()) {
        Ok(l) => l,
        Err(response) => return *response,
    };
    let Some(audit) = app.audit.clone() else {
        // Auditing is off: nothing was recorded.
        return json(&LookupEventsResponse {
            events: Vec::new(),
            next_token: None,
        });
    };
    let (events, next_token) = match shared {
        // Several nodes: every node's events, from the shared trail's index.
        Some(shipper) => match shared_lookup(&shipper, &lookup, shared_cursor.as_ref()).await {
            Some(page) => (page.events, page.next.map(|c| c.to_token())),
            None => {
                return error_response(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", "");
            }
        },
        None => {
            let page = tokio::task::spawn_blocking(move || {
                read::lookup(&audit.settings.directory, &lookup)
            })
            .await;
            match page {
                Ok(Ok(page)) => (page.events, page.next.map(Cursor::to_token)),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "LookupEvents could not read the audit trail");
                    return error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalFailure",
                        "",
                    );
                }
                Err(_) => {
                    return error_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalFailure",
                        "",
                    );
                }
            }
        }
    };
    let events = events
        .into_iter()
        .map(|e| Event {
            event_id: e.event_id,
            event_name: e.event_name,
            read_only: e.read_only.map(|r| if r { "true" } else { "false" }),
            access_key_id: e.access_key_id,
            event_time: e.event_time_secs,
            event_source: e.event_source,
            username: e.username,
            resources: e
                .resources
                .into_iter()
                .map(|(resource_type, resource_name)| EventResource {
                    resource_type,
                    resource_name,
                })
                .collect(),
            cloud_trail_event: e.record,
        })
        .collect();
    json(&LookupEventsResponse { events, next_token })
}

/// How long a lookup waits for this node's own committed batches to be shipped first.
const SHIP_BEFORE_LOOKUP: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a lookup waits for the shared trail's answer.
const SHARED_LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// A page from the shared trail, `None` when it could not be read (logged). This node's own
/// committed batches are shipped first, so a caller finds its own calls at once; if that
/// fails the lookup still answers from what is shipped.
async fn shared_lookup(
    shipper: &trent_audit::ship::Shipper,
    lookup: &Lookup,
    cursor: Option<&SharedCursor>,
) -> Option<trent_audit::shared::SharedPage> {
    match tokio::time::timeout(SHIP_BEFORE_LOOKUP, shipper.ship_now()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(target: "trent::audit", error = %e, "shipping before LookupEvents failed");
        }
        Err(_) => {
            tracing::warn!(target: "trent::audit", "shipping before LookupEvents took too long");
        }
    }
    match tokio::time::timeout(
        SHARED_LOOKUP_TIMEOUT,
        shipper.trail().lookup(lookup, cursor),
    )
    .await
    {
        Ok(Ok(page)) => Some(page),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "LookupEvents could not read the shared audit trail");
            None
        }
        Err(_) => {
            tracing::error!("LookupEvents: the shared audit trail did not answer in time");
            None
        }
    }
}

/// The trail's lookup for a request, or the error AWS gives for it.
/// With `shared`, tokens are the shared trail's (`t2.…`), else the files' (`t1.…`).
fn lookup_of(
    account: &str,
    request: LookupEventsRequest,
    shared: bool,
) -> Result<(Lookup, Option<SharedCursor>), Box<Response>> {
    if request.lookup_attributes.len() > 1 {
        return Err(Box::new(bad_request(
            "InvalidLookupAttributesException",
            "You cannot specify more than one lookup attribute.",
        )));
    }
    let attribute = match request.lookup_attributes.into_iter().next() {
        None => None,
        Some(a) => match Attribute::from_wire(&a.attribute_key) {
            Some(key) => Some((key, a.attribute_value)),
            None => {
                return Err(Box::new(bad_request(
                    "InvalidLookupAttributesException",
                    &format!("Lookup attribute key {} is not valid.", a.attribute_key),
                )));
            }
        },
    };
    if let Some(category) = &request.event_category {
        if category != "insight" {
            return Err(Box::new(bad_request(
                "InvalidEventCategoryException",
                "The event category is not valid.",
            )));
        }
        // Insight events are not recorded: a lookup for them finds none.
        return Err(Box::new(json(&LookupEventsResponse {
            events: Vec::new(),
            next_token: None,
        })));
    }
    let seconds = |t: Option<f64>| t.filter(|t| t.is_finite()).map(|t| t.floor() as i64);
    let (start_secs, end_secs) = (seconds(request.start_time), seconds(request.end_time));
    if let (Some(s), Some(e)) = (start_secs, end_secs)
        && s > e
    {
        return Err(Box::new(bad_request(
            "InvalidTimeRangeException",
            "Start time must be earlier than end time.",
        )));
    }
    let max_results = match request.max_results {
        None => MAX_RESULTS,
        Some(n) if (1..=50).contains(&n) => usize::try_from(n).unwrap_or(MAX_RESULTS),
        Some(_) => {
            return Err(Box::new(bad_request(
                "InvalidMaxResultsException",
                "MaxResults must be from 1 to 50.",
            )));
        }
    };
    let invalid_token = || {
        Box::new(bad_request(
            "InvalidNextTokenException",
            "The next token is not valid.",
        ))
    };
    let (cursor, shared_cursor) = match &request.next_token {
        None => (None, None),
        Some(token) if shared => (
            None,
            Some(SharedCursor::from_token(token).ok_or_else(invalid_token)?),
        ),
        Some(token) => (
            Some(Cursor::from_token(token).ok_or_else(invalid_token)?),
            None,
        ),
    };
    Ok((
        Lookup {
            account: account.to_string(),
            attribute,
            start_secs,
            end_secs,
            max_results,
            cursor,
        },
        shared_cursor,
    ))
}

fn json(value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::kms::CONTENT_TYPE),
            );
            response
        }
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", ""),
    }
}
