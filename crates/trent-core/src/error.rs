//! Domain errors: one variant per AWS KMS error code a client can branch on.
//!
//! The edge turns each variant into its `__type` and HTTP status in one place; the domain only
//! chooses which error happened and an AWS-style message. Messages never contain key material,
//! plaintext or secrets.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    NotAuthorized(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    /// Deliberately detail-free: which check failed is not revealed.
    #[error("")]
    InvalidCiphertext,
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    InvalidKeyUsage(String),
    #[error("{0}")]
    InvalidMarker(String),
    /// `KMSInvalidSignatureException`: Verify found the signature invalid.
    #[error("{0}")]
    InvalidSignature(String),
    /// `KMSInvalidMacException`: VerifyMac found the MAC invalid.
    #[error("{0}")]
    InvalidMac(String),
    #[error("{0}")]
    InvalidGrantToken(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// `ThrottlingException`: a request-rate quota of the calling account was exceeded.
    #[error("{0}")]
    Throttling(String),
    #[error("{0}")]
    Tag(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    CustomKeyStoreNotFound(String),
    /// `CustomKeyStoreNameInUseException`.
    #[error("{0}")]
    CustomKeyStoreNameInUse(String),
    /// `CustomKeyStoreInvalidStateException`: the store's connection state forbids the call.
    #[error("{0}")]
    CustomKeyStoreInvalidState(String),
    /// `CustomKeyStoreHasCMKsException`.
    #[error("{0}")]
    CustomKeyStoreHasCmks(String),
    /// `CloudHsmClusterNotFoundException`: no `[[hsm_cluster]]` with that id.
    #[error("{0}")]
    CloudHsmClusterNotFound(String),
    /// `CloudHsmClusterInUseException`: the cluster backs another store.
    #[error("{0}")]
    CloudHsmClusterInUse(String),
    /// `CloudHsmClusterNotRelatedException`: a replacement cluster not related to the old.
    #[error("{0}")]
    CloudHsmClusterNotRelated(String),
    /// `CloudHsmClusterInvalidConfigurationException`: the cluster cannot serve the request
    /// (here: its token refused to generate a key).
    #[error("{0}")]
    CloudHsmClusterInvalidConfiguration(String),
    /// `IncorrectTrustAnchorException`.
    #[error("{0}")]
    IncorrectTrustAnchor(String),
    /// An external key store error whose code the XKS custodian chose, following the XKS
    /// spec's mapping (`XksProxyUriUnreachableException`, `XksKeyNotFoundException`, …).
    #[error("{message}")]
    ExternalKeyStore { code: &'static str, message: String },
    #[error("The request would have succeeded, but the DryRun option is set.")]
    DryRunOperation,
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    #[error("{0}")]
    ExpiredImportToken(String),
    #[error("{0}")]
    InvalidImportToken(String),
    /// An internal failure (storage, randomness). The detail is logged, not sent.
    #[error("{0}")]
    Internal(String),
    /// `DependencyTimeoutException` (503, "you can retry the request"): the shared database
    /// is unreachable or did not answer in time ([`crate::store::StoreError::Unavailable`]).
    /// The detail is logged, not sent.
    #[error("{0}")]
    DependencyTimeout(String),
}

impl From<trent_crypto::random::RandomError> for KmsError {
    fn from(e: trent_crypto::random::RandomError) -> Self {
        KmsError::Internal(e.to_string())
    }
}

impl From<trent_crypto::AsymmetricError> for KmsError {
    fn from(e: trent_crypto::AsymmetricError) -> Self {
        KmsError::Internal(e.to_string())
    }
}

impl From<trent_crypto::RootKeyError> for KmsError {
    fn from(e: trent_crypto::RootKeyError) -> Self {
        KmsError::Internal(e.to_string())
    }
}

pub type KmsResult<T> = Result<T, KmsError>;
