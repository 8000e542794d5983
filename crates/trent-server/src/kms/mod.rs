//! The KMS API over awsJson1.1: `POST /` with `X-Amz-Target: TrentService.<Operation>`.
//!
//! `operations.rs` maps each operation's JSON shapes to a `trent_core::Kms` call; `error.rs` is
//! the one place where domain errors become `__type` codes and HTTP statuses.

mod access;
mod asymmetric;
mod custom_key_stores;
mod error;
mod explain;
mod grants;
mod last_usage;
mod lifecycle;
mod model;
mod multi_region;
mod operation;
mod operations;
mod shapes;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use trent_core::Caller;

use crate::server::AppState;

pub use error::error_response;
pub use operation::Operation;

/// The awsJson1.1 content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The operation a request's `X-Amz-Target` names.
pub fn operation_of(headers: &HeaderMap) -> Option<Operation> {
    headers
        .get("x-amz-target")
        .and_then(|v| Operation::from_target(v.as_bytes()))
}

/// Handles one authenticated KMS request for `operation` (`None`: the target named none).
pub async fn handle(
    app: &AppState,
    caller: &Caller,
    operation: Option<Operation>,
    body: &[u8],
) -> Response {
    let Some(operation) = operation else {
        return error_response(StatusCode::BAD_REQUEST, "UnknownOperationException", "");
    };
    // AWS's model validation comes before anything else, every failing member in one answer.
    if let Err(e) = model::check(operation, body) {
        return error::ApiError::from(e).into_response();
    }
    if operation == Operation::GetKeyLastUsage {
        // Answered from the audit trail's usage table, which the edge holds.
        return match last_usage::get_key_last_usage(app, caller, body).await {
            Ok(json) => json_response(json),
            Err(e) => e.into_response(),
        };
    }
    match operations::dispatch(&app.kms, caller, operation, body).await {
        Ok(json) => {
            // What the audit record says of the answer (management calls only: data
            // operations and reads record none, so the hot path skips this).
            let elements = match &app.audit {
                Some(_) => crate::audit::kms_response_elements(
                    operation.as_str(),
                    &json,
                    caller.key_arn().map(|a| &**a),
                ),
                None => None,
            };
            let mut response = json_response(json);
            if let Some(elements) = elements {
                response.extensions_mut().insert(elements);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}
