//! Domain errors → AWS wire errors: `{"__type": "...", "message": "..."}` with a status code.
//!
//! The match is exhaustive, so a new domain error cannot compile until its wire code is chosen.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use trent_core::KmsError;

use super::CONTENT_TYPE;

/// A failure of one KMS request, ready to send.
pub enum ApiError {
    Domain(KmsError),
    /// The body is not JSON of the operation's shape.
    Serialization(String),
    UnknownOperation,
}

impl From<KmsError> for ApiError {
    fn from(e: KmsError) -> Self {
        ApiError::Domain(e)
    }
}

fn domain_code(e: &KmsError) -> (StatusCode, &'static str) {
    use KmsError::*;
    let bad = StatusCode::BAD_REQUEST;
    match e {
        NotFound(_) => (bad, "NotFoundException"),
        AlreadyExists(_) => (bad, "AlreadyExistsException"),
        InvalidArn(_) => (bad, "InvalidArnException"),
        InvalidAliasName(_) => (bad, "InvalidAliasNameException"),
        NotAuthorized(_) => (bad, "NotAuthorizedException"),
        Disabled(_) => (bad, "DisabledException"),
        InvalidState(_) => (bad, "KMSInvalidStateException"),
        InvalidCiphertext => (bad, "InvalidCiphertextException"),
        IncorrectKey(_) => (bad, "IncorrectKeyException"),
        InvalidKeyUsage(_) => (bad, "InvalidKeyUsageException"),
        InvalidMarker(_) => (bad, "InvalidMarkerException"),
        InvalidSignature(_) => (bad, "KMSInvalidSignatureException"),
        InvalidMac(_) => (bad, "KMSInvalidMacException"),
        InvalidGrantToken(_) => (bad, "InvalidGrantTokenException"),
        Validation(_) => (bad, "ValidationException"),
        LimitExceeded(_) => (bad, "LimitExceededException"),
        Throttling(_) => (bad, "ThrottlingException"),
        Tag(_) => (bad, "TagException"),
        MalformedPolicyDocument(_) => (bad, "MalformedPolicyDocumentException"),
        UnsupportedOperation(_) => (bad, "UnsupportedOperationException"),
        CustomKeyStoreNotFound(_) => (bad, "CustomKeyStoreNotFoundException"),
        CustomKeyStoreNameInUse(_) => (bad, "CustomKeyStoreNameInUseException"),
        CustomKeyStoreInvalidState(_) => (bad, "CustomKeyStoreInvalidStateException"),
        CustomKeyStoreHasCmks(_) => (bad, "CustomKeyStoreHasCMKsException"),
        CloudHsmClusterNotFound(_) => (bad, "CloudHsmClusterNotFoundException"),
        CloudHsmClusterInUse(_) => (bad, "CloudHsmClusterInUseException"),
        IncorrectTrustAnchor(_) => (bad, "IncorrectTrustAnchorException"),
        ExternalKeyStore { code, .. } => (bad, code),
        CloudHsmClusterNotRelated(_) => (bad, "CloudHsmClusterNotRelatedException"),
        CloudHsmClusterInvalidConfiguration(_) => {
            (bad, "CloudHsmClusterInvalidConfigurationException")
        }
        DryRunOperation => (bad, "DryRunOperationException"),
        AccessDenied(_) => (bad, "AccessDeniedException"),
        IncorrectKeyMaterial(_) => (bad, "IncorrectKeyMaterialException"),
        ExpiredImportToken(_) => (bad, "ExpiredImportTokenException"),
        InvalidImportToken(_) => (bad, "InvalidImportTokenException"),
        Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "KMSInternalException"),
        DependencyTimeout(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "DependencyTimeoutException",
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Domain(KmsError::Internal(detail)) => {
                // The detail may name storage paths or internal state: log it, send nothing of it.
                tracing::error!(%detail, "internal error");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "KMSInternalException",
                    "An internal error occurred.",
                )
            }
            ApiError::Domain(KmsError::DependencyTimeout(detail)) => {
                // The database is unreachable: say so in AWS's words, keep its address out.
                tracing::warn!(%detail, "database unavailable");
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "DependencyTimeoutException",
                    "The system timed out while trying to fulfill the request. You can retry \
                     the request.",
                )
            }
            ApiError::Domain(e) => {
                let (status, code) = domain_code(&e);
                error_response(status, code, &e.to_string())
            }
            ApiError::Serialization(m) => {
                error_response(StatusCode::BAD_REQUEST, "SerializationException", &m)
            }
            ApiError::UnknownOperation => {
                error_response(StatusCode::BAD_REQUEST, "UnknownOperationException", "")
            }
        }
    }
}

/// An awsJson1.1 error body. An empty `message` is left out, as AWS leaves it out of
/// `KMSInvalidSignatureException`, `KMSInvalidMacException` and `InvalidCiphertextException`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = if message.is_empty() {
        serde_json::json!({ "__type": code })
    } else {
        serde_json::json!({ "__type": code, "message": message })
    }
    .to_string();
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
        .extensions_mut()
        .insert(crate::metrics::ErrorCode(code.into()));
    response
        .extensions_mut()
        .insert(crate::metrics::ErrorMessage(message.into()));
    response
}
