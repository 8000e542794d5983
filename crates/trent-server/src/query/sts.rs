//! The STS API (Query protocol, version 2011-06-15): GetCallerIdentity, AssumeRole,
//! GetSessionToken.

use axum::response::Response;
use trent_core::clock::iso8601;
use trent_core::iam::IamError;
use trent_core::sts::TemporaryCredentials;
use trent_core::{Caller, Kms};

use super::{Params, Xml, error_code, error_response, success};

pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Handles one authenticated STS request.
pub async fn handle(kms: &Kms, caller: &Caller, params: &Params, request_id: &str) -> Response {
    let action = params.get("Action").unwrap_or_default().to_string();
    match dispatch(kms, caller, &action, params).await {
        Ok(x) => success(NAMESPACE, &action, Some(x), request_id),
        Err(e) => {
            let (status, code) = error_code(&e, true);
            error_response(NAMESPACE, status, code, &e.to_string(), request_id)
        }
    }
}

async fn dispatch(kms: &Kms, caller: &Caller, action: &str, p: &Params) -> Result<Xml, IamError> {
    let mut x = Xml::new();
    match action {
        "GetCallerIdentity" => {
            let (user_id, account, arn) = kms.sts_get_caller_identity(caller);
            x.leaf("UserId", &user_id)
                .leaf("Account", &account)
                .leaf("Arn", &arn);
        }
        "AssumeRole" => {
            let assumed = kms
                .sts_assume_role(
                    caller,
                    p.required("RoleArn")?,
                    p.required("RoleSessionName")?,
                    p.int("DurationSeconds")?,
                )
                .await?;
            credentials_xml(&mut x, &assumed.credentials);
            x.open("AssumedRoleUser")
                .leaf("AssumedRoleId", &assumed.assumed_role_id)
                .leaf("Arn", &assumed.arn)
                .close("AssumedRoleUser");
        }
        "GetSessionToken" => {
            let credentials = kms
                .sts_get_session_token(caller, p.int("DurationSeconds")?)
                .await?;
            credentials_xml(&mut x, &credentials);
        }
        _ => {
            return Err(IamError::InvalidInput(format!(
                "Could not find operation {action} for version 2011-06-15"
            )));
        }
    }
    Ok(x)
}

fn credentials_xml(x: &mut Xml, c: &TemporaryCredentials) {
    x.open("Credentials")
        .leaf("AccessKeyId", &c.access_key_id)
        .leaf("SecretAccessKey", &c.secret_access_key)
        .leaf("SessionToken", &c.session_token)
        .leaf("Expiration", &iso8601(c.expires_ms))
        .close("Credentials");
}
