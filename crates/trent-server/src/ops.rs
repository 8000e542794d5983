//! Operator endpoints, unauthenticated and read-only: `GET /health` (the process answers),
//! `GET /ready` (the store answers and the root key is loaded) and `GET /metrics` (Prometheus
//! text). They reveal counts and timings, never names of keys, accounts or principals; an
//! operator who wants them off the API port configures a separate `ops_listen` address.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, Uri, header};

use crate::server::AppState;

/// The answer to an operator endpoint, or `None` when `uri` is not one.
pub async fn answer(app: &AppState, method: &Method, uri: &Uri) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match uri.path() {
        "/health" => Some(text(StatusCode::OK, "ok\n".into(), "text/plain")),
        "/ready" => Some(match app.kms.store_reachable().await {
            // The root key is loaded by construction: `Kms` cannot exist without it.
            Ok(()) => text(StatusCode::OK, "ready\n".into(), "text/plain"),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check: the store does not answer");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: storage unavailable\n".into(),
                    "text/plain",
                )
            }
        }),
        "/metrics" => Some(text(
            StatusCode::OK,
            metrics_text(app),
            "text/plain; version=0.0.4",
        )),
        _ => None,
    }
}

fn metrics_text(app: &AppState) -> String {
    let stats = app.kms.stats();
    let n = |x: usize| x as f64;
    let gauges = [
        (
            "trent_connections_open",
            "Open client connections.",
            n(app.connections.count()),
        ),
        (
            "trent_connections_evicted_total",
            "Idle connections closed to make room for new ones.",
            app.connections
                .evicted
                .load(std::sync::atomic::Ordering::Relaxed) as f64,
        ),
        (
            "trent_request_body_bytes_held",
            "Bytes of request bodies held now, of the shared budget.",
            n(app.bodies.bytes_in_use()),
        ),
        (
            "trent_cache_keys",
            "Keys in the key cache.",
            n(stats.cached_keys),
        ),
        (
            "trent_cache_aliases",
            "Alias names in the alias cache.",
            n(stats.cached_aliases),
        ),
        (
            "trent_cache_grant_keys",
            "Keys whose grants are cached.",
            n(stats.keys_with_cached_grants),
        ),
        (
            "trent_credentials",
            "Access keys and session credentials held in memory.",
            n(stats.credentials),
        ),
        ("trent_accounts", "Accounts served.", n(stats.accounts)),
        (
            "trent_lifecycle_runs_total",
            "Runs of the background lifecycle work.",
            stats.lifecycle_runs as f64,
        ),
        (
            "trent_keys_rotated_total",
            "Keys rotated on schedule.",
            stats.keys_rotated as f64,
        ),
        (
            "trent_keys_deleted_total",
            "Keys deleted at the end of their waiting period.",
            stats.keys_deleted as f64,
        ),
        (
            "trent_key_materials_expired_total",
            "Imported key materials deleted at expiry.",
            stats.materials_expired as f64,
        ),
        (
            "trent_lifecycle_failures_total",
            "Lifecycle steps that failed (and will be retried).",
            stats.lifecycle_failures as f64,
        ),
    ];
    app.metrics.render(&gauges)
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
