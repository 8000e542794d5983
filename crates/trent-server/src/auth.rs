//! Authenticating a request: SigV4 signature → known access key (+ session token) → [`Caller`].
//!
//! The verifier's clock is the real wall clock (not the domain's movable clock): signatures
//! come from real clients with real clocks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, Uri};
use trent_core::Caller;
use trent_core::Credential;
use trent_core::sts::CredentialProblem;
use trent_sigv4::{ParsedSignature, RequestParts, SigV4Error};

use crate::server::AppState;

/// An authenticated request: who, and which service it addressed.
pub struct Authenticated {
    pub caller: Caller,
    pub service: Service,
    /// Whether the signature covers [`FORWARDED_REQUEST_HEADER`]: a forwarded request is
    /// accepted only under the service's own signature, so it cannot be swapped in transit.
    pub forwarded_request_signed: bool,
    /// Whether the signature covers [`SOURCE_ARN_HEADER`].
    pub source_arn_signed: bool,
}

/// The AWS service a request's credential scope names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    Kms,
    Iam,
    Sts,
    /// CloudTrail's LookupEvents, answered from the audit trail.
    CloudTrail,
    /// One Trent does not serve.
    Other(String),
}

impl Service {
    fn of_scope(name: &str) -> Self {
        match name {
            "kms" => Self::Kms,
            "iam" => Self::Iam,
            "sts" => Self::Sts,
            "cloudtrail" => Self::CloudTrail,
            other => Self::Other(other.to_string()),
        }
    }
}

/// Why authentication failed.
pub enum AuthFailure {
    Signature(SigV4Error),
    UnknownAccessKey,
    ExpiredToken,
    /// The credential is not in memory and the store could not be reached, or did not answer
    /// in time (retryable): `DependencyTimeoutException`, as for every other call the database
    /// fails.
    StoreUnavailable,
    /// The credential is not in memory and reading it from the store failed otherwise (a
    /// stored record that does not decode): an internal error.
    LookupFailed,
    /// A forward-access call whose forwarded request does not prove the customer called the
    /// service (`forwarded`): AWS's AccessDenied.
    Forward(String),
}

impl AuthFailure {
    /// The awsJson (KMS) error code.
    pub fn json_code(&self) -> &'static str {
        match self {
            AuthFailure::Signature(e) => e.aws_code(),
            AuthFailure::UnknownAccessKey => "UnrecognizedClientException",
            AuthFailure::ExpiredToken => "ExpiredTokenException",
            AuthFailure::StoreUnavailable => "DependencyTimeoutException",
            AuthFailure::LookupFailed => "KMSInternalException",
            AuthFailure::Forward(_) => "AccessDeniedException",
        }
    }

    /// The awsJson (KMS) status: 400 except for the store failures.
    pub fn json_status(&self) -> http::StatusCode {
        match self {
            AuthFailure::StoreUnavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            AuthFailure::LookupFailed => http::StatusCode::INTERNAL_SERVER_ERROR,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }

    /// The Query (IAM/STS) error code and status.
    pub fn query_code(&self) -> (http::StatusCode, &'static str) {
        use http::StatusCode as S;
        match self {
            AuthFailure::Signature(e) => match e.aws_code() {
                "MissingAuthenticationTokenException" => {
                    (S::FORBIDDEN, "MissingAuthenticationToken")
                }
                "IncompleteSignatureException" => (S::BAD_REQUEST, "IncompleteSignature"),
                _ => (S::FORBIDDEN, "SignatureDoesNotMatch"),
            },
            AuthFailure::UnknownAccessKey => (S::FORBIDDEN, "InvalidClientTokenId"),
            AuthFailure::ExpiredToken => (S::BAD_REQUEST, "ExpiredToken"),
            // IAM's and STS's common error for a temporary failure of the server.
            AuthFailure::StoreUnavailable => (S::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            AuthFailure::LookupFailed => (S::INTERNAL_SERVER_ERROR, "InternalFailure"),
            AuthFailure::Forward(_) => (S::FORBIDDEN, "AccessDenied"),
        }
    }

    pub fn message(&self) -> String {
        match self {
            AuthFailure::Signature(e) => e.message(),
            AuthFailure::UnknownAccessKey => {
                "The security token included in the request is invalid.".into()
            }
            AuthFailure::ExpiredToken => {
                "The security token included in the request is expired".into()
            }
            AuthFailure::StoreUnavailable => "The system timed out while trying to fulfill the \
                                              request. You can retry the request."
                .into(),
            AuthFailure::LookupFailed => "An internal error occurred.".into(),
            AuthFailure::Forward(m) => m.clone(),
        }
    }
}

/// A request whose headers passed [`check_headers`]: its parsed signature and the credential
/// it names, carried to [`authenticate`] so neither is parsed or looked up twice.
pub struct SignedHeaders<'a> {
    parsed: ParsedSignature<'a>,
    credential: Arc<Credential>,
}

/// What can be checked before the body arrives: a well-formed signature from a known access key,
/// inside its replay window, with every operation-selecting header signed. A request failing
/// here would fail [`authenticate`] with the same error; refusing it now means an
/// unauthenticated client never gets the server to buffer its body. An access key not in
/// memory is looked up in the store (read-through, `Kms::find_credential`) — the only await,
/// taken only on a miss.
pub async fn check_headers<'a>(
    app: &AppState,
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
) -> Result<SignedHeaders<'a>, AuthFailure> {
    let parts = RequestParts {
        method,
        uri,
        headers,
        body: &[],
    };
    let parsed = trent_sigv4::parse(&parts).map_err(AuthFailure::Signature)?;
    // A KMS operation (`X-Amz-Target: TrentService.*`) signed for another service is AWS's
    // InvalidSignatureException "Credential should be scoped to correct service: 'kms'.".
    if parsed.service != "kms" && is_kms_target(headers) {
        return Err(AuthFailure::Signature(SigV4Error::WrongService {
            expected: "kms".into(),
        }));
    }
    let credential = match app.kms.credentials.lookup(&parsed.access_key_id) {
        Some(c) => c,
        None => match app.kms.find_credential(&parsed.access_key_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(AuthFailure::UnknownAccessKey),
            Err(e) => {
                tracing::warn!(error = %e, "credential read-through failed");
                return Err(lookup_failure(&e));
            }
        },
    };
    trent_sigv4::check_before_body(&parts, &parsed, unix_now()).map_err(AuthFailure::Signature)?;
    Ok(SignedHeaders { parsed, credential })
}

/// How a failed credential read-through is answered: the database unreachable or too slow is
/// the retryable `DependencyTimeoutException` (503), anything else an internal error.
fn lookup_failure(e: &trent_core::KmsError) -> AuthFailure {
    match e {
        trent_core::KmsError::DependencyTimeout(_) => AuthFailure::StoreUnavailable,
        _ => AuthFailure::LookupFailed,
    }
}

/// Whether the request names a KMS operation (awsJson1.1 target prefix `TrentService`).
fn is_kms_target(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("TrentService."))
}

fn unix_now() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// Verifies the signature of a request whose headers passed [`check_headers`], now that its
/// body is here, and finds who made it.
pub fn authenticate(
    app: &AppState,
    peer: Option<SocketAddr>,
    signed: SignedHeaders<'_>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Authenticated, AuthFailure> {
    let parts = RequestParts {
        method,
        uri,
        headers,
        body,
    };
    let SignedHeaders { parsed, credential } = signed;
    let key = app
        .signing_keys
        .get_or_derive(&credential, &credential.secret_access_key, &parsed);
    trent_sigv4::verify(&parts, &parsed, &key, unix_now()).map_err(AuthFailure::Signature)?;
    let mut caller = app
        .kms
        .caller_for(
            &credential,
            parsed.security_token.as_deref(),
            &parsed.region,
        )
        .map_err(|p| match p {
            CredentialProblem::Invalid => AuthFailure::UnknownAccessKey,
            CredentialProblem::Expired => AuthFailure::ExpiredToken,
        })?;
    caller.source_ip = peer.map(|p| p.ip());
    caller.secure_transport = app.tls;
    let signs = |name: &str| parsed.signed_headers.iter().any(|h| h == name);
    Ok(Authenticated {
        caller,
        service: Service::of_scope(&parsed.service),
        forwarded_request_signed: signs(FORWARDED_REQUEST_HEADER),
        source_arn_signed: signs(SOURCE_ARN_HEADER),
    })
}

/// The header an integrated service puts on a call it makes for one of its resources: the
/// resource's ARN, the call's `aws:SourceArn` (what a grant's `SourceArn` constraint matches).
pub const SOURCE_ARN_HEADER: &str = "x-trent-source-arn";

/// Applies [`SOURCE_ARN_HEADER`]: only under the caller's signature, and only for a call an
/// integrated service makes (`Caller::with_source_arn`); anyone else is refused.
pub fn source_arn(
    mut authenticated: Authenticated,
    headers: &HeaderMap,
) -> Result<Authenticated, AuthFailure> {
    let Some(value) = headers.get(SOURCE_ARN_HEADER) else {
        return Ok(authenticated);
    };
    let refuse = |m: &str| AuthFailure::Forward(format!("Source ARN refused: {m}"));
    if !authenticated.source_arn_signed {
        return Err(refuse(
            "the signature must cover the X-Trent-Source-Arn header",
        ));
    }
    let arn = value
        .to_str()
        .map_err(|_| refuse("the header is not text"))?;
    authenticated.caller = authenticated
        .caller
        .with_source_arn(arn.trim())
        .map_err(|e| refuse(&e.to_string()))?;
    Ok(authenticated)
}

/// The header an integrated service puts on a KMS call it makes for a customer: the
/// customer's own SigV4-signed request to the service (docs/integrated-services.md).
pub const FORWARDED_REQUEST_HEADER: &str = "x-trent-forwarded-request";

/// The forwarded request, as the service writes it (base64 of this JSON).
#[derive(serde::Deserialize)]
struct ForwardedRequest {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    /// The body, base64.
    #[serde(default)]
    body: String,
}

/// A forward-access call: when the request carries [`FORWARDED_REQUEST_HEADER`], verifies the
/// customer's signature on the request it sent to the service (with the customer's credential,
/// inside SigV4's replay window) and makes the call the customer's, through the service
/// (`Kms::forwarded_caller` checks who may forward and for which service the request was
/// signed). Crypto and memory only, unless the customer's credential is not cached.
pub async fn forwarded(
    app: &AppState,
    authenticated: Authenticated,
    headers: &HeaderMap,
) -> Result<Authenticated, AuthFailure> {
    let Some(value) = headers.get(FORWARDED_REQUEST_HEADER) else {
        return Ok(authenticated);
    };
    let refuse = |m: &str| AuthFailure::Forward(format!("Forwarded request refused: {m}"));
    if authenticated.service != Service::Kms {
        return Err(refuse("only KMS calls may be forwarded"));
    }
    if !authenticated.forwarded_request_signed {
        return Err(refuse(
            "the service's signature must cover the X-Trent-Forwarded-Request header",
        ));
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let forwarded: ForwardedRequest = value
        .to_str()
        .ok()
        .and_then(|v| b64.decode(v.trim()).ok())
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(|| refuse("the header is not base64 JSON of a request"))?;
    let method =
        Method::from_bytes(forwarded.method.as_bytes()).map_err(|_| refuse("bad method"))?;
    let uri: Uri = forwarded.uri.parse().map_err(|_| refuse("bad uri"))?;
    let mut inner_headers = HeaderMap::new();
    for (name, value) in &forwarded.headers {
        let name =
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| refuse("bad header"))?;
        let value = http::HeaderValue::from_str(value).map_err(|_| refuse("bad header"))?;
        inner_headers.append(name, value);
    }
    let body = b64
        .decode(forwarded.body.as_bytes())
        .map_err(|_| refuse("the body is not base64"))?;
    let parts = RequestParts {
        method: &method,
        uri: &uri,
        headers: &inner_headers,
        body: &body,
    };
    let parsed = trent_sigv4::parse(&parts).map_err(|e| refuse(&e.message()))?;
    let credential = match app.kms.credentials.lookup(&parsed.access_key_id) {
        Some(c) => c,
        None => match app.kms.find_credential(&parsed.access_key_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(refuse("the customer's access key is unknown")),
            Err(e) => {
                tracing::warn!(error = %e, "credential read-through failed");
                return Err(lookup_failure(&e));
            }
        },
    };
    let key = app
        .signing_keys
        .get_or_derive(&credential, &credential.secret_access_key, &parsed);
    trent_sigv4::verify(&parts, &parsed, &key, unix_now()).map_err(|e| refuse(&e.message()))?;
    let customer = app
        .kms
        .caller_for(
            &credential,
            parsed.security_token.as_deref(),
            &parsed.region,
        )
        .map_err(|_| refuse("the customer's credentials are invalid or expired"))?;
    let caller = app
        .kms
        .forwarded_caller(&authenticated.caller, customer, &parsed.service)
        .map_err(|e| AuthFailure::Forward(e.to_string()))?;
    Ok(Authenticated {
        caller,
        service: authenticated.service,
        forwarded_request_signed: true,
        source_arn_signed: authenticated.source_arn_signed,
    })
}
