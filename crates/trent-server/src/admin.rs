//! The operator's clock control: `POST /trent-admin/advance-clock`, for tests and drills of
//! time-driven behaviour (rotation schedules, deletion windows, material expiry).
//!
//! It is not part of the KMS API and no AWS credential reaches it. It exists only when the
//! operator turns on `[testing] clock_control`, answers only loopback peers, and requires the
//! random token `trent serve` writes to `<data_dir>/admin.token` (mode 0600) in the
//! `X-Trent-Admin-Token` header. Body: `{"Seconds": <n >= 0>}`; the clock moves forward by that
//! much (persisted), the lifecycle work now due runs, and the answer reports both.

use std::net::SocketAddr;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::server::AppState;

/// The path of the clock-control endpoint.
pub const PATH: &str = "/trent-admin/advance-clock";
/// The header carrying the admin token.
pub const TOKEN_HEADER: &str = "x-trent-admin-token";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AdvanceClock {
    seconds: i64,
}

pub async fn handle(
    app: &AppState,
    peer: Option<SocketAddr>,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    // Without clock control the path does not exist; say nothing more.
    let Some(expected) = app.admin_token.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !peer.is_some_and(|p| p.ip().is_loopback()) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let given = headers
        .get(TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !constant_time_eq(given, expected.as_bytes()) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let Ok(request) = serde_json::from_slice::<AdvanceClock>(body) else {
        return (StatusCode::BAD_REQUEST, "expected {\"Seconds\": <integer>}").into_response();
    };
    // At most about 100 years at a time: far past any test's need, far from overflowing time.
    if !(0..=3_200_000_000).contains(&request.seconds) {
        return (
            StatusCode::BAD_REQUEST,
            "Seconds must be from 0 (the clock only moves forward) to 3200000000",
        )
            .into_response();
    }
    match app
        .kms
        .advance_clock(request.seconds.saturating_mul(1000))
        .await
    {
        Ok((offset_ms, done)) => {
            let body = json!({
                "OffsetSeconds": offset_ms.div_euclid(1000),
                "Now": app.kms.clock().now_secs(),
                "Rotated": done.rotated,
                "Deleted": done.deleted,
                "Expired": done.expired,
            });
            (StatusCode::OK, body.to_string()).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "advancing the clock failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
