//! The HTTP server: one handler for `POST /`, request ids, routing by service, TLS, shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, Uri};
use trent_core::Credential;
use trent_core::Kms;
use trent_sigv4::SigningKeyCache;

use crate::auth::{self, Service};
use crate::{kms, query};

/// Largest request body accepted. KMS payloads are at most a few tens of KiB (a 32 KiB policy,
/// a 6 KiB ciphertext, base64-encoded); anything larger is refused before parsing.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Shared state of the edge.
pub struct AppState {
    pub kms: Arc<Kms>,
    /// Signing keys by access key, filed under the credential that owns the secret.
    pub signing_keys: SigningKeyCache<Credential>,
    pub tls: bool,
    /// The clock-control token when `[testing] clock_control` is on (see `admin.rs`).
    pub admin_token: Option<zeroize::Zeroizing<String>>,
    request_ids: RequestIds,
}

impl AppState {
    pub fn new(kms: Arc<Kms>, tls: bool) -> Self {
        Self {
            kms,
            signing_keys: SigningKeyCache::new(10_000),
            tls,
            admin_token: None,
            request_ids: RequestIds::new(),
        }
    }

    /// Turns on the operator's clock control, guarded by `token`.
    pub fn with_admin_token(mut self, token: zeroize::Zeroizing<String>) -> Self {
        self.admin_token = Some(token);
        self
    }
}

/// Request ids in UUID form: a random per-process prefix and a counter. Unique without a
/// random draw per request (which costs a syscall on the hot path).
struct RequestIds {
    prefix: [u8; 8],
    counter: std::sync::atomic::AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let random = *uuid::Uuid::new_v4().as_bytes();
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(random.get(..8).unwrap_or(&[0; 8]));
        Self {
            prefix,
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next id, written into `buffer` (no allocation).
    fn next<'b>(&self, buffer: &'b mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &'b str {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.prefix);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        uuid::Uuid::from_bytes(bytes)
            .hyphenated()
            .encode_lower(buffer)
    }
}

/// The axum router serving every Trent API.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Every request: taken whole (no extractor copies its parts), its body read up to the limit.
async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let mut id_buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let request_id = app.request_ids.next(&mut id_buffer);
    let (parts, body) = request.into_parts();
    let mut response = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => {
            // Unknown only when the router runs without `into_make_service_with_connect_info`
            // (in-process callers): then there is no source address, not a made-up one.
            let peer = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0);
            dispatch(
                &app,
                request_id,
                peer,
                &parts.method,
                &parts.uri,
                &parts.headers,
                &body,
            )
            .await
        }
        Err(_) => kms::error_response(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "SerializationException",
            "The request body is too large.",
        ),
    };
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", v);
    }
    response
}

async fn dispatch(
    app: &AppState,
    request_id: &str,
    peer: Option<SocketAddr>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if uri.path() == crate::admin::PATH {
        return crate::admin::handle(app, peer, method, headers, body).await;
    }
    // Query-protocol (IAM/STS) requests are form-encoded; they get XML errors even when their
    // signature cannot be parsed.
    let is_query = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
        || uri.query().is_some_and(|q| q.contains("Action="));
    let authenticated = match auth::authenticate(app, peer, method, uri, headers, body) {
        Ok(a) => a,
        Err(failure) if is_query => {
            let (status, code) = failure.query_code();
            return query::error_response(
                query::sts::NAMESPACE,
                status,
                code,
                &failure.message(),
                request_id,
            );
        }
        Err(failure) => {
            return kms::error_response(
                http::StatusCode::BAD_REQUEST,
                failure.json_code(),
                &failure.message(),
            );
        }
    };
    let caller = &authenticated.caller;
    match &authenticated.service {
        Service::Kms => kms::handle(app, caller, headers, body).await,
        service @ (Service::Iam | Service::Sts) => {
            let is_iam = *service == Service::Iam;
            let namespace = if is_iam {
                query::iam::NAMESPACE
            } else {
                query::sts::NAMESPACE
            };
            let params = match query::Params::parse(uri.query(), body) {
                Ok(p) => p,
                Err(e) => {
                    let (status, code) = query::error_code(&e, !is_iam);
                    return query::error_response(
                        namespace,
                        status,
                        code,
                        &e.to_string(),
                        request_id,
                    );
                }
            };
            if is_iam && !app.kms.may_call_iam(caller) {
                let failure = auth::AuthFailure::UnknownAccessKey;
                let (status, code) = failure.query_code();
                return query::error_response(
                    namespace,
                    status,
                    code,
                    &failure.message(),
                    request_id,
                );
            }
            if is_iam {
                query::iam::handle(&app.kms, caller, &params, request_id).await
            } else {
                query::sts::handle(&app.kms, caller, &params, request_id).await
            }
        }
        Service::Other(other) => kms::error_response(
            http::StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("Trent does not serve the AWS service `{other}`"),
        ),
    }
}

/// How to listen.
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key paths, for HTTPS.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Serves until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    app: Arc<AppState>,
    listener: std::net::TcpListener,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    listener.set_nonblocking(true)?;
    match tls {
        Some((cert, key)) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(service)
                .await
        }
        None => {
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(service)
                .await
        }
    }
}
