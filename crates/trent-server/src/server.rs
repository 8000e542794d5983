//! The HTTP server: one handler for every request, request ids, routing by service, TLS.
//!
//! A request is handled in this order: headers checked (signature well-formed, access key
//! known, inside its replay window), body read within the shared budget, signature verified,
//! then routed to the service the credential scope names.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Uri};
use trent_core::Credential;
use trent_core::Kms;
use trent_sigv4::SigningKeyCache;

use crate::auth::{self, AuthFailure, Service};
use crate::body::{BodyLimits, BodyReader, BodyRefusal};
use crate::listener::{self, ConnectionLimits, Connections};
use crate::metrics::{ErrorCode, Metrics, Observed, OperationName};
use crate::{kms, query};

/// Shared state of the edge.
pub struct AppState {
    pub kms: Arc<Kms>,
    /// Signing keys by access key, filed under the credential that owns the secret.
    pub signing_keys: SigningKeyCache<Credential>,
    pub tls: bool,
    /// The clock-control token when `[testing] clock_control` is on (see `admin.rs`).
    pub admin_token: Option<zeroize::Zeroizing<String>>,
    /// Request bodies: bounded in size, in total memory and in time.
    pub bodies: BodyReader,
    /// The open connections (empty when the router is driven in-process).
    pub connections: Arc<Connections>,
    /// Requests, errors and latencies since start (`/metrics`).
    pub metrics: Metrics,
    /// Whether `/health`, `/ready` and `/metrics` are answered on the API port (they are not
    /// when a separate operations address is configured).
    pub ops_on_main_port: bool,
    /// The audit trail, when auditing is on: every authenticated call's record is synced
    /// before its answer is sent.
    pub audit: Option<Arc<crate::audit::Audit>>,
    request_ids: RequestIds,
}

impl AppState {
    pub fn new(kms: Arc<Kms>, tls: bool) -> Self {
        Self {
            kms,
            signing_keys: SigningKeyCache::new(10_000),
            tls,
            admin_token: None,
            bodies: BodyReader::new(&BodyLimits::default()),
            connections: Arc::new(Connections::default()),
            metrics: Metrics::default(),
            ops_on_main_port: true,
            audit: None,
            request_ids: RequestIds::new(),
        }
    }

    /// Records every authenticated call in `audit`.
    pub fn with_audit(mut self, audit: Arc<crate::audit::Audit>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Serves `/health`, `/ready` and `/metrics` only on [`ops_router`], not on the API port.
    pub fn with_separate_ops_port(mut self) -> Self {
        self.ops_on_main_port = false;
        self
    }

    /// Replaces the default body limits.
    pub fn with_body_limits(mut self, limits: &BodyLimits) -> Self {
        self.bodies = BodyReader::new(limits);
        self
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

/// The router of a separate operations address: `/health`, `/ready`, `/metrics`, nothing else.
pub fn ops_router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle_ops).with_state(state)
}

async fn handle_ops(State(app): State<Arc<AppState>>, request: Request) -> Response {
    match crate::ops::answer(&app, request.method(), request.uri()).await {
        Some(response) => response,
        None => (http::StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// Every request: taken whole (no extractor copies its parts), refused early when its headers
/// already show it cannot succeed, its body read within the limits.
async fn handle(State(app): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    // The web console's files: static, unauthenticated (its pages sign their own API calls).
    if let Some(response) = crate::console::answer(request.method(), request.uri()) {
        return response;
    }
    if app.ops_on_main_port
        && let Some(response) = crate::ops::answer(&app, request.method(), request.uri()).await
    {
        return response;
    }
    let mut id_buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let request_id = app.request_ids.next(&mut id_buffer);
    let (parts, body) = request.into_parts();
    let is_query = is_query_request(&parts.uri, &parts.headers);
    let (mut response, observed) = if parts.uri.path() == crate::admin::PATH {
        // The operator's endpoint has its own token, not a signature.
        match app.bodies.read(&parts.headers, body).await {
            Ok(body) => {
                let peer = peer_of(&parts);
                let response =
                    crate::admin::handle(&app, peer, &parts.method, &parts.headers, &body.bytes)
                        .await;
                (response, None)
            }
            Err(refusal) => (
                close_after(body_refusal_response(&refusal, is_query, request_id)),
                None,
            ),
        }
    } else {
        match auth::check_headers(&app, &parts.method, &parts.uri, &parts.headers).await {
            Err(failure) => (
                close_after(auth_failure_response(&failure, is_query, request_id)),
                None,
            ),
            Ok(signed) => match app.bodies.read(&parts.headers, body).await {
                Ok(body) => dispatch(&app, request_id, &parts, signed, is_query, &body.bytes).await,
                Err(refusal) => (
                    close_after(body_refusal_response(&refusal, is_query, request_id)),
                    None,
                ),
            },
        }
    };
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", v);
    }
    let latency = started.elapsed();
    let observed = observed.as_ref();
    let error = response.extensions().get::<ErrorCode>();
    app.metrics.record(observed, error, latency);
    if tracing::enabled!(target: "trent::request", tracing::Level::INFO) {
        log_request(
            request_id,
            &parts,
            observed,
            error,
            response.status(),
            latency,
        );
    }
    response
}

/// The one log line of a request: who, what, the outcome, how long. Never a secret: no
/// header, body or credential other than the (public) access key id.
fn log_request(
    request_id: &str,
    parts: &http::request::Parts,
    observed: Option<&Observed>,
    error: Option<&ErrorCode>,
    status: http::StatusCode,
    latency: std::time::Duration,
) {
    let principal = observed.and_then(|o| o.principal.as_deref());
    let peer = peer_of(parts).map(|p| p.ip());
    tracing::info!(
        target: "trent::request",
        request_id,
        source_ip = peer.map(tracing::field::display),
        service = observed.map_or("", |o| o.service),
        operation = observed.map_or("", |o| o.operation.as_str()),
        account = principal.map_or("", |p| p.account.as_str()),
        principal = principal.map_or("", |p| p.principal_arn.as_str()),
        access_key_id = principal.map_or("", |p| p.access_key_id.as_str()),
        key_arn = observed.and_then(|o| o.key_arn.as_deref()).unwrap_or(""),
        decision = observed.and_then(|o| o.decision.as_deref()).unwrap_or(""),
        status = status.as_u16(),
        error_code = error.map_or("", |e| &*e.0),
        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
}

/// Query-protocol (IAM/STS) requests are form-encoded; they get XML errors even when their
/// signature cannot be parsed.
fn is_query_request(uri: &Uri, headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
        || uri.query().is_some_and(|q| q.contains("Action="))
}

fn auth_failure_response(failure: &AuthFailure, is_query: bool, request_id: &str) -> Response {
    if is_query {
        let (status, code) = failure.query_code();
        query::error_response(
            query::sts::NAMESPACE,
            status,
            code,
            &failure.message(),
            request_id,
        )
    } else {
        kms::error_response(
            failure.json_status(),
            failure.json_code(),
            &failure.message(),
        )
    }
}

/// A body that was not read. A spent budget is answered as AWS answers a rate limit, which
/// every SDK retries with backoff.
fn body_refusal_response(refusal: &BodyRefusal, is_query: bool, request_id: &str) -> Response {
    use http::StatusCode as S;
    let (status, json_code, query_code, message) = match refusal {
        BodyRefusal::TooLarge => (
            S::PAYLOAD_TOO_LARGE,
            "SerializationException",
            "RequestEntityTooLarge",
            "The request body is too large.",
        ),
        BodyRefusal::Busy => (
            S::BAD_REQUEST,
            "ThrottlingException",
            "Throttling",
            "Rate exceeded",
        ),
        BodyRefusal::TimedOut => (
            S::REQUEST_TIMEOUT,
            "RequestTimeoutException",
            "RequestTimeout",
            "The request body did not arrive in time.",
        ),
        BodyRefusal::Broken => (
            S::BAD_REQUEST,
            "SerializationException",
            "MalformedInput",
            "The request body could not be read.",
        ),
    };
    if is_query {
        query::error_response(
            query::sts::NAMESPACE,
            status,
            query_code,
            message,
            request_id,
        )
    } else {
        kms::error_response(status, json_code, message)
    }
}

/// The rest of a refused request's body was never read: the connection cannot carry another.
fn close_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// An authenticated request's answer, and what it was (for metrics and the log); `None` when
/// authentication failed.
async fn dispatch(
    app: &AppState,
    request_id: &str,
    parts: &http::request::Parts,
    signed: auth::SignedHeaders<'_>,
    is_query: bool,
    body: &[u8],
) -> (Response, Option<Observed>) {
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let authenticated =
        match auth::authenticate(app, peer_of(parts), signed, method, uri, headers, body) {
            Ok(a) => a,
            Err(failure) => return (auth_failure_response(&failure, is_query, request_id), None),
        };
    let authenticated = match auth::forwarded(app, authenticated, headers)
        .await
        .and_then(|a| auth::source_arn(a, headers))
    {
        Ok(a) => a,
        Err(failure) => return (auth_failure_response(&failure, is_query, request_id), None),
    };
    let service = match &authenticated.service {
        Service::Kms => "kms",
        Service::Iam => "iam",
        Service::Sts => "sts",
        Service::CloudTrail => "cloudtrail",
        Service::Other(_) => "",
    };
    let mut observed = Observed {
        service,
        operation: OperationName::Unknown,
        principal: Some(authenticated.caller.principal().clone()),
        key_arn: None,
        decision: None,
    };
    let response = route(
        app,
        request_id,
        &authenticated,
        uri,
        headers,
        body,
        &mut observed,
    )
    .await;
    let response = match &app.audit {
        Some(audit) => {
            record(
                app,
                audit,
                request_id,
                parts,
                &authenticated,
                &observed,
                body,
                response,
            )
            .await
        }
        None => response,
    };
    observed.key_arn = authenticated.caller.key_arn().cloned();
    // A denial is kept (bounded) for its caller's ExplainDecision; an allow costs one read.
    app.kms.keep_denial(request_id, &authenticated.caller);
    if tracing::enabled!(target: "trent::request", tracing::Level::INFO) {
        observed.decision = authenticated.caller.explanation().map(|e| e.to_string());
    }
    (response, Some(observed))
}

/// Records the call in the audit trail and returns its answer once the record is durable;
/// an answer whose record cannot be made durable becomes an internal error (fail closed: no
/// call is answered unrecorded). Calls whose operation was never read are not recorded.
#[allow(
    clippy::too_many_arguments,
    reason = "the pieces of one request, borrowed"
)]
async fn record(
    app: &AppState,
    audit: &crate::audit::Audit,
    request_id: &str,
    parts: &http::request::Parts,
    authenticated: &auth::Authenticated,
    observed: &Observed,
    body: &[u8],
    response: Response,
) -> Response {
    use crate::audit::Source;
    let (source, is_query) = match &authenticated.service {
        Service::Kms => (Source::Kms, false),
        Service::Iam => (Source::Iam, true),
        Service::Sts => (Source::Sts, true),
        Service::CloudTrail => (Source::CloudTrail, false),
        Service::Other(_) => return response,
    };
    let event_name = observed.operation.as_str();
    if event_name.is_empty() {
        return response;
    }
    let query_params;
    let parameters = if is_query {
        query_params = query::Params::parse(parts.uri.query(), body).ok();
        match &query_params {
            Some(p) => trent_audit::parameters::query_parameters(p.iter()),
            None => trent_audit::record::Parameters::None,
        }
    } else {
        trent_audit::parameters::json_parameters(body)
    };
    let error = response.extensions().get::<ErrorCode>().map(|code| {
        let message = response
            .extensions()
            .get::<crate::metrics::ErrorMessage>()
            .map_or("", |m| &*m.0);
        (&*code.0, message)
    });
    let call = crate::audit::Call {
        source,
        event_name,
        request_id,
        caller: &authenticated.caller,
        headers: &parts.headers,
        parameters,
        error,
        response_elements: response
            .extensions()
            .get::<crate::audit::ResponseElements>()
            .map(|r| &*r.0),
        tls: parts.extensions.get::<crate::audit::TlsInfo>().copied(),
        secure: app.tls,
    };
    let now_ms = app.kms.clock().now_ms();
    thread_local! {
        /// The record text of this thread's latest call: reused, so a record allocates no
        /// buffer of its own (`append` copies it into the batch before the first await).
        static RECORD: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(2048));
    }
    let pushed = RECORD.with(|buffer| {
        let mut buffer = buffer.try_borrow_mut().map_err(|e| e.to_string())?;
        buffer.clear();
        let event_id = crate::audit::lines_into(audit, &call, now_ms, &mut buffer)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((event_id, audit.log.append(&buffer)))
    });
    let appended = match pushed {
        Ok((event_id, durable)) => durable.await.map(|()| event_id).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match appended {
        Ok(event_id) => {
            // GetKeyLastUsage: a successful tracked operation on a key, now on record.
            if let (OperationName::Kms(op), None, Some(key_arn)) =
                (&observed.operation, error, authenticated.caller.key_arn())
                && let Some(operation) = trent_audit::usage::tracked_operation(op.as_str())
            {
                audit
                    .usage
                    .note(key_arn, operation, now_ms, &event_id, request_id);
            }
            response
        }
        Err(e) => {
            tracing::error!(target: "trent::audit", request_id, error = %e, "the call's audit record is not durable; answering with an internal error");
            if is_query {
                query::error_response(
                    query::sts::NAMESPACE,
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalFailure",
                    "The request could not be recorded.",
                    request_id,
                )
            } else {
                kms::error_response(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "KMSInternalException",
                    "The request could not be recorded.",
                )
            }
        }
    }
}

/// The client's address. Unknown only when the router runs without the listener (in-process
/// callers): then there is no source address, not a made-up one.
fn peer_of(parts: &http::request::Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The authenticated request, handed to its service; `observed` learns the operation.
async fn route(
    app: &AppState,
    request_id: &str,
    authenticated: &auth::Authenticated,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    observed: &mut Observed,
) -> Response {
    let caller = &authenticated.caller;
    match &authenticated.service {
        Service::Kms => {
            let operation = kms::operation_of(headers);
            if let Some(op) = operation {
                observed.operation = OperationName::Kms(op);
            }
            kms::handle(app, caller, operation, body).await
        }
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
            if let Some(action) = params.get("Action") {
                observed.operation = OperationName::Query(action.into());
            }
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
        Service::CloudTrail => {
            let operation = crate::cloudtrail::operation_of(headers);
            if let Some(op) = operation {
                observed.operation = OperationName::Query(op.into());
            }
            crate::cloudtrail::handle(app, caller, operation, body).await
        }
        Service::Other(other) => kms::error_response(
            http::StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("Trent does not serve the AWS service `{other}`"),
        ),
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
/// `tls` is a PEM certificate chain and private key, for HTTPS.
pub async fn serve(
    app: Arc<AppState>,
    listener: std::net::TcpListener,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = match tls {
        Some((cert, key)) => Some(tls_acceptor(&cert, &key, limits.http2)?),
        None => None,
    };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let connections = app.connections.clone();
    listener::run(
        router(app),
        listener,
        acceptor,
        limits,
        connections,
        shutdown,
    )
    .await;
    Ok(())
}

/// A TLS acceptor for the PEM files, offering HTTP/2 by ALPN only when it is served.
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
    http2: bool,
) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", what.display()),
        )
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(cert, &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| invalid(cert, &e))?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
