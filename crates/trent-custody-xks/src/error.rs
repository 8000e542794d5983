//! What can go wrong talking to an XKS proxy, and how KMS reports each outcome.
//!
//! The spec (v1.0.3, "How KMS maps proxy outcomes") gives one KMS exception per proxy outcome
//! and per calling context: store management (Create/Update/ConnectCustomKeyStore), CreateKey,
//! and cryptographic operations. KMS never forwards the proxy's `errorMessage`; each row has
//! one fixed message here, and the proxy's text stays in [`XksError`] for the operator's log.

/// The proxy's own error names (`errorName` in its error body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyErrorName {
    ValidationException,
    InvalidStateException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    AuthenticationFailedException,
    AccessDeniedException,
    KeyNotFoundException,
    InvalidUriPathException,
    ThrottlingException,
    UnsupportedOperationException,
    DependencyTimeoutException,
    InternalException,
}

impl ProxyErrorName {
    /// Every name, for parsing.
    pub const ALL: [ProxyErrorName; 12] = [
        Self::ValidationException,
        Self::InvalidStateException,
        Self::InvalidCiphertextException,
        Self::InvalidKeyUsageException,
        Self::AuthenticationFailedException,
        Self::AccessDeniedException,
        Self::KeyNotFoundException,
        Self::InvalidUriPathException,
        Self::ThrottlingException,
        Self::UnsupportedOperationException,
        Self::DependencyTimeoutException,
        Self::InternalException,
    ];

    /// The name as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationException => "ValidationException",
            Self::InvalidStateException => "InvalidStateException",
            Self::InvalidCiphertextException => "InvalidCiphertextException",
            Self::InvalidKeyUsageException => "InvalidKeyUsageException",
            Self::AuthenticationFailedException => "AuthenticationFailedException",
            Self::AccessDeniedException => "AccessDeniedException",
            Self::KeyNotFoundException => "KeyNotFoundException",
            Self::InvalidUriPathException => "InvalidUriPathException",
            Self::ThrottlingException => "ThrottlingException",
            Self::UnsupportedOperationException => "UnsupportedOperationException",
            Self::DependencyTimeoutException => "DependencyTimeoutException",
            Self::InternalException => "InternalException",
        }
    }

    /// The HTTP status the spec gives the name.
    pub fn status(self) -> u16 {
        match self {
            Self::ValidationException
            | Self::InvalidStateException
            | Self::InvalidCiphertextException
            | Self::InvalidKeyUsageException => 400,
            Self::AuthenticationFailedException => 401,
            Self::AccessDeniedException => 403,
            Self::KeyNotFoundException | Self::InvalidUriPathException => 404,
            Self::ThrottlingException => 429,
            Self::UnsupportedOperationException => 501,
            Self::DependencyTimeoutException => 503,
            Self::InternalException => 500,
        }
    }

    /// The name for `text`, if it is one of the spec's.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == text)
    }
}

/// One failed proxy call. Carries no key material, plaintext or credential secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XksError {
    /// The proxy answered with one of the spec's errors.
    #[error("the XKS proxy answered {name}: {message}", name = .name.as_str())]
    Proxy {
        name: ProxyErrorName,
        message: String,
    },
    /// No TCP connection (refused, unresolvable host, reset).
    #[error("the XKS proxy could not be reached: {0}")]
    Unreachable(String),
    /// The TLS handshake failed (untrusted CA, wrong host name, expired certificate, protocol).
    #[error("TLS with the XKS proxy failed: {0}")]
    Tls(String),
    /// No complete answer within the configured timeout.
    #[error("the XKS proxy did not answer in time")]
    TimedOut,
    /// An answer that is not what the spec allows (not JSON, missing fields, bad sizes,
    /// integrity value mismatch, unknown error name).
    #[error("the XKS proxy's response is invalid: {0}")]
    InvalidResponse(String),
    /// GetHealthStatus succeeded but every EKM instance is `UNAVAILABLE`.
    #[error("the XKS proxy reports every external key manager instance unavailable")]
    AllEkmUnavailable,
    /// The client's own configuration is unusable (bad endpoint, unreadable CA bundle).
    #[error("invalid XKS proxy configuration: {0}")]
    Config(String),
    /// The endpoint is not one this server may call: a loopback, private, link-local or
    /// metadata address (literal or resolved) not in `allowed_proxy_hosts`.
    #[error("the XKS proxy endpoint is refused: {0}")]
    Refused(String),
}

/// A KMS error as the domain returns it: AWS's `__type` and message.
pub use trent_crypto::custody::xks::KmsErrorText as KmsErrorCode;

const fn kms(code: &'static str, message: &'static str) -> KmsErrorCode {
    KmsErrorCode { code, message }
}

const MSG_UNREACHABLE: &str = "KMS cannot communicate with your external key store proxy. Verify that the XksProxyUriEndpoint and XksProxyUriPath are correct. Use your external key store proxy logs to determine why the request failed.";
const MSG_INVALID_RESPONSE: &str = "KMS cannot interpret the response it received from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator.";
const MSG_BAD_CREDENTIAL: &str = "The external key store proxy rejected the request because the specified credential is not valid. Verify that the XksProxyAuthenticationCredential is correct.";
const MSG_INVALID_CONFIGURATION: &str = "The external key store proxy rejected the request because of an invalid URI path. Verify that the XksProxyUriPath is correct.";
const MSG_REFUSED_ENDPOINT: &str = "The XksProxyUriEndpoint is not allowed: it names or resolves to a loopback, private, link-local or metadata address that this server's allowed_proxy_hosts does not list.";

impl XksError {
    /// The spec's mapping for CreateCustomKeyStore / UpdateCustomKeyStore (health check).
    pub fn for_store_management(&self) -> KmsErrorCode {
        use ProxyErrorName as N;
        match self {
            Self::Proxy {
                name: N::AuthenticationFailedException,
                ..
            } => kms(
                "XksProxyIncorrectAuthenticationCredentialException",
                MSG_BAD_CREDENTIAL,
            ),
            Self::Proxy {
                name: N::InvalidUriPathException,
                ..
            } => kms(
                "XksProxyInvalidConfigurationException",
                MSG_INVALID_CONFIGURATION,
            ),
            Self::Refused(_) => kms(
                "XksProxyInvalidConfigurationException",
                MSG_REFUSED_ENDPOINT,
            ),
            Self::Proxy {
                name: N::DependencyTimeoutException | N::ThrottlingException,
                ..
            }
            | Self::Unreachable(_)
            | Self::Tls(_)
            | Self::TimedOut
            | Self::AllEkmUnavailable
            | Self::Config(_) => kms("XksProxyUriUnreachableException", MSG_UNREACHABLE),
            Self::Proxy { .. } | Self::InvalidResponse(_) => {
                kms("XksProxyInvalidResponseException", MSG_INVALID_RESPONSE)
            }
        }
    }

    /// The `ConnectionErrorCode` a failed ConnectCustomKeyStore leaves on the store.
    pub fn connection_error_code(&self) -> &'static str {
        use ProxyErrorName as N;
        match self {
            Self::Proxy {
                name: N::AuthenticationFailedException,
                ..
            } => "INVALID_CREDENTIALS",
            Self::Proxy {
                name: N::AccessDeniedException,
                ..
            } => "XKS_PROXY_ACCESS_DENIED",
            Self::Proxy {
                name: N::InvalidUriPathException,
                ..
            }
            | Self::Config(_)
            | Self::Refused(_) => "XKS_PROXY_INVALID_CONFIGURATION",
            Self::Proxy {
                name: N::DependencyTimeoutException,
                ..
            }
            | Self::TimedOut => "XKS_PROXY_TIMED_OUT",
            Self::Tls(_) => "XKS_PROXY_INVALID_TLS_CONFIGURATION",
            Self::Unreachable(_)
            | Self::AllEkmUnavailable
            | Self::Proxy {
                name: N::ThrottlingException,
                ..
            } => "XKS_PROXY_NOT_REACHABLE",
            Self::Proxy { .. } | Self::InvalidResponse(_) => "XKS_PROXY_INVALID_RESPONSE",
        }
    }

    /// The spec's mapping for CreateKey (GetKeyMetadata).
    pub fn for_create_key(&self) -> KmsErrorCode {
        use ProxyErrorName as N;
        const STORE: &str = "CustomKeyStoreInvalidStateException";
        match self {
            Self::Proxy {
                name: N::KeyNotFoundException,
                ..
            } => kms(
                "XksKeyNotFoundException",
                "The external key store proxy rejected the request because it could not find the external key.",
            ),
            Self::Proxy {
                name: N::InvalidStateException | N::InvalidKeyUsageException,
                ..
            } => kms(
                "XksKeyInvalidConfigurationException",
                "The external key does not meet the requirements: it must be an enabled 256-bit AES key that supports encryption and decryption.",
            ),
            Self::Proxy {
                name: N::UnsupportedOperationException,
                ..
            } => kms(
                "XksKeyInvalidResponseException",
                "The external key store proxy does not support the requested operation.",
            ),
            Self::Proxy {
                name: N::AccessDeniedException,
                ..
            } => kms(
                "KMSInvalidStateException",
                "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again.",
            ),
            Self::Proxy {
                name: N::AuthenticationFailedException,
                ..
            } => kms(STORE, MSG_BAD_CREDENTIAL),
            Self::Proxy {
                name: N::InvalidUriPathException,
                ..
            } => kms(STORE, MSG_INVALID_CONFIGURATION),
            Self::Proxy {
                name: N::DependencyTimeoutException | N::ThrottlingException,
                ..
            }
            | Self::Unreachable(_)
            | Self::Tls(_)
            | Self::TimedOut
            | Self::AllEkmUnavailable
            | Self::Config(_) => kms(STORE, MSG_UNREACHABLE),
            Self::Refused(_) => kms(STORE, MSG_REFUSED_ENDPOINT),
            Self::Proxy { .. } | Self::InvalidResponse(_) => kms(STORE, MSG_INVALID_RESPONSE),
        }
    }

    /// The spec's mapping for Encrypt, Decrypt, GenerateDataKey* and ReEncrypt: always
    /// `KMSInvalidStateException`, with a message per cause.
    pub fn for_crypto(&self) -> KmsErrorCode {
        use ProxyErrorName as N;
        let message = match self {
            Self::Proxy {
                name: N::InvalidCiphertextException,
                ..
            } => {
                "The external key store proxy rejected the request because the specified ciphertext or additional authenticated data is corrupted, missing, or otherwise invalid."
            }
            Self::Proxy {
                name: N::KeyNotFoundException,
                ..
            } => {
                "The external key store proxy rejected the request because it could not find the external key."
            }
            Self::Proxy {
                name: N::InvalidStateException,
                ..
            } => {
                "The external key store proxy rejected the request because the external key is not in a valid state for this operation."
            }
            Self::Proxy {
                name: N::InvalidKeyUsageException,
                ..
            } => {
                "The external key store proxy rejected the request because the external key does not support the requested operation."
            }
            Self::Proxy {
                name: N::AccessDeniedException,
                ..
            } => {
                "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again."
            }
            Self::Proxy {
                name: N::AuthenticationFailedException,
                ..
            } => MSG_BAD_CREDENTIAL,
            Self::Proxy {
                name: N::InvalidUriPathException,
                ..
            } => MSG_INVALID_CONFIGURATION,
            Self::Proxy {
                name: N::DependencyTimeoutException | N::ThrottlingException,
                ..
            }
            | Self::Unreachable(_)
            | Self::Tls(_)
            | Self::TimedOut
            | Self::AllEkmUnavailable
            | Self::Config(_) => MSG_UNREACHABLE,
            Self::Refused(_) => MSG_REFUSED_ENDPOINT,
            Self::Proxy { .. } | Self::InvalidResponse(_) => MSG_INVALID_RESPONSE,
        };
        kms("KMSInvalidStateException", message)
    }
}

impl From<XksError> for trent_crypto::custody::xks::XksFailure {
    fn from(e: XksError) -> Self {
        Self {
            store_management: e.for_store_management(),
            create_key: e.for_create_key(),
            crypto: e.for_crypto(),
            connection_error_code: e.connection_error_code(),
            detail: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_have_the_specs_status() {
        for n in ProxyErrorName::ALL {
            assert_eq!(ProxyErrorName::parse(n.as_str()), Some(n));
        }
        assert_eq!(ProxyErrorName::KeyNotFoundException.status(), 404);
        assert_eq!(ProxyErrorName::AuthenticationFailedException.status(), 401);
        assert_eq!(ProxyErrorName::parse("Nope"), None);
    }

    #[test]
    fn spec_mapping_rows() {
        let proxy = |name| XksError::Proxy {
            name,
            message: String::new(),
        };
        use ProxyErrorName as N;
        assert_eq!(
            proxy(N::AuthenticationFailedException)
                .for_store_management()
                .code,
            "XksProxyIncorrectAuthenticationCredentialException"
        );
        assert_eq!(
            proxy(N::ValidationException).for_store_management().code,
            "XksProxyInvalidResponseException"
        );
        assert_eq!(
            XksError::TimedOut.for_store_management().code,
            "XksProxyUriUnreachableException"
        );
        assert_eq!(
            proxy(N::KeyNotFoundException).for_create_key().code,
            "XksKeyNotFoundException"
        );
        assert_eq!(
            proxy(N::InvalidKeyUsageException).for_create_key().code,
            "XksKeyInvalidConfigurationException"
        );
        assert_eq!(
            proxy(N::ValidationException).for_create_key().code,
            "CustomKeyStoreInvalidStateException"
        );
        assert_eq!(
            proxy(N::InvalidCiphertextException).for_crypto().code,
            "KMSInvalidStateException"
        );
        assert_eq!(
            proxy(N::AuthenticationFailedException).connection_error_code(),
            "INVALID_CREDENTIALS"
        );
        assert_eq!(
            XksError::Unreachable(String::new()).connection_error_code(),
            "XKS_PROXY_NOT_REACHABLE"
        );
        assert_eq!(
            XksError::Tls(String::new()).connection_error_code(),
            "XKS_PROXY_INVALID_TLS_CONFIGURATION"
        );
    }
}
