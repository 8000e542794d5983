//! The operator's account endpoints, which `trent account …` and `trent credentials rotate`
//! call: list accounts, create one, rotate an account's root access key.
//!
//! They are served on their own listener, bound by `trent serve` to an ephemeral port on
//! 127.0.0.1 whose address it writes to `<data_dir>/admin.addr`, never on the API port (so
//! neither `listen = "0.0.0.0:…"` nor TLS changes who can reach them). Every request must come
//! from a loopback peer and carry the token of `<data_dir>/admin.token` (mode 0600, new at every
//! start) in `X-Trent-Admin-Token`, compared in constant time. They are always on: whoever can
//! read the data directory owns the keys anyway. The actions run through the domain
//! (`trent_core::operator`), so the server's in-memory credentials and accounts stay the truth.
//!
//! ```text
//! GET  /trent-admin/accounts                          → {"Accounts": [{"AccountId", "CreatedAt", "RootAccessKeyIds"}]}
//! POST /trent-admin/accounts       {"AccountId"?}     → {"AccountId", "AccessKeyId", "SecretAccessKey"}
//! POST /trent-admin/rotate-root-key {"AccountId"}     → {"AccountId", "AccessKeyId", "SecretAccessKey", "DeletedAccessKeyIds"}
//! POST /trent-admin/key-access     {"KeyId"}         → who can use the key (`operator_access.rs`)
//! ```
//!
//! Errors are `{"Error": <code>, "Message": <text>}` with 400 (`ValidationError`), 403, 404
//! (`NoSuchAccount`), 409 (`AccountExists`, `DeclaredAccount`) or 500 (`InternalError`; the
//! detail is logged, not sent).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use trent_core::{Kms, KmsError};
use zeroize::Zeroizing;

/// The accounts collection.
pub const ACCOUNTS_PATH: &str = "/trent-admin/accounts";
/// Root key rotation.
pub const ROTATE_PATH: &str = "/trent-admin/rotate-root-key";
/// Largest request body accepted.
const MAX_BODY: usize = 4096;

/// What the operator endpoints need.
pub struct OperatorApi {
    kms: Arc<Kms>,
    token: Zeroizing<String>,
    /// Accounts whose root key the config file declares: rotating it here would be undone at
    /// the next start, so it is refused.
    declared_accounts: HashSet<String>,
}

impl OperatorApi {
    pub fn new(
        kms: Arc<Kms>,
        token: Zeroizing<String>,
        declared_accounts: HashSet<String>,
    ) -> Self {
        Self {
            kms,
            token,
            declared_accounts,
        }
    }
}

/// The router of the operator listener. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so peers can be checked.
pub fn operator_router(api: Arc<OperatorApi>) -> Router {
    Router::new().fallback(handle).with_state(api)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct AccountRequest {
    account_id: Option<String>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        json!({"Error": code, "Message": message}).to_string(),
    )
        .into_response()
}

fn domain_error(e: KmsError) -> Response {
    match e {
        KmsError::Validation(m) => error(StatusCode::BAD_REQUEST, "ValidationError", &m),
        KmsError::NotFound(m) => error(StatusCode::NOT_FOUND, "NoSuchAccount", &m),
        KmsError::AlreadyExists(m) => error(StatusCode::CONFLICT, "AccountExists", &m),
        e => {
            tracing::error!(error = %e, "operator action failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "the action failed; see the server's log",
            )
        }
    }
}

async fn handle(
    State(api): State<Arc<OperatorApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if !peer.ip().is_loopback() {
        return error(StatusCode::FORBIDDEN, "Forbidden", "loopback peers only");
    }
    let given = request
        .headers()
        .get(crate::admin::TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !crate::admin::constant_time_eq(given, api.token.as_bytes()) {
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "missing or wrong X-Trent-Admin-Token",
        );
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error(StatusCode::BAD_REQUEST, "ValidationError", "body too large");
    };
    let parsed = || -> Result<AccountRequest, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(AccountRequest::default());
        }
        serde_json::from_slice(&body)
            .map_err(|e| format!("expected {{\"AccountId\": \"<12 digits>\"}}: {e}"))
    };
    match (&parts.method, parts.uri.path()) {
        (&Method::POST, crate::operator_access::KEY_ACCESS_PATH) => {
            crate::operator_access::key_access(&api.kms, &body).await
        }
        (&Method::GET, ACCOUNTS_PATH) => match api.kms.operator_list_accounts().await {
            Ok(accounts) => {
                let accounts: Vec<_> = accounts
                    .iter()
                    .map(|a| {
                        json!({
                            "AccountId": a.account_id,
                            "CreatedAt": a.created_ms.div_euclid(1000),
                            "RootAccessKeyIds": a.root_access_key_ids,
                            "Declared": api.declared_accounts.contains(&a.account_id),
                        })
                    })
                    .collect();
                (StatusCode::OK, json!({"Accounts": accounts}).to_string()).into_response()
            }
            Err(e) => domain_error(e),
        },
        (&Method::POST, ACCOUNTS_PATH) => {
            let request = match parsed() {
                Ok(r) => r,
                Err(m) => return error(StatusCode::BAD_REQUEST, "ValidationError", &m),
            };
            match api
                .kms
                .operator_create_account(request.account_id.as_deref())
                .await
            {
                Ok(new) => {
                    tracing::info!(account = %new.account_id, "operator created an account");
                    let body = json!({
                        "AccountId": new.account_id,
                        "AccessKeyId": new.access_key_id,
                        "SecretAccessKey": new.secret_access_key.as_str(),
                    });
                    (StatusCode::OK, body.to_string()).into_response()
                }
                Err(e) => domain_error(e),
            }
        }
        (&Method::POST, ROTATE_PATH) => {
            let request = match parsed() {
                Ok(r) => r,
                Err(m) => return error(StatusCode::BAD_REQUEST, "ValidationError", &m),
            };
            let Some(account) = request.account_id else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ValidationError",
                    "AccountId is required",
                );
            };
            if api.declared_accounts.contains(&account) {
                return error(
                    StatusCode::CONFLICT,
                    "DeclaredAccount",
                    &format!(
                        "the root access key of account {account} is declared in the config file \
                         ([[account]]) and set again at every start: change it there"
                    ),
                );
            }
            match api.kms.operator_rotate_root_key(&account).await {
                Ok(rotated) => {
                    tracing::info!(account = %account, "operator rotated a root access key");
                    let c = &rotated.credentials;
                    let body = json!({
                        "AccountId": c.account_id,
                        "AccessKeyId": c.access_key_id,
                        "SecretAccessKey": c.secret_access_key.as_str(),
                        "DeletedAccessKeyIds": rotated.deleted_access_key_ids,
                    });
                    (StatusCode::OK, body.to_string()).into_response()
                }
                Err(e) => domain_error(e),
            }
        }
        (_, ACCOUNTS_PATH | ROTATE_PATH) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "see the operator API in trent-server's operator.rs",
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no such operator endpoint",
        ),
    }
}
