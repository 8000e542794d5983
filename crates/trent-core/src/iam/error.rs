//! IAM and STS errors: one variant per AWS error code (the edge maps them to XML and statuses).

use crate::error::KmsError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IamError {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    InvalidInput(String),
    /// A Query request that does not follow the protocol (a parameter given twice, a bad list
    /// member index): AWS's common `InvalidQueryParameter` (400).
    #[error("{0}")]
    InvalidQueryParameter(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    UnmodifiableEntity(String),
    #[error("{0}")]
    PolicyNotAttachable(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    ExpiredToken(String),
    #[error("{0}")]
    ServiceFailure(String),
}

pub type IamResult<T> = Result<T, IamError>;

impl From<StoreError> for IamError {
    fn from(e: StoreError) -> Self {
        IamError::ServiceFailure(e.to_string())
    }
}

impl From<KmsError> for IamError {
    fn from(e: KmsError) -> Self {
        IamError::ServiceFailure(e.to_string())
    }
}

impl From<trent_crypto::RootKeyError> for IamError {
    fn from(e: trent_crypto::RootKeyError) -> Self {
        IamError::ServiceFailure(e.to_string())
    }
}

impl From<trent_crypto::random::RandomError> for IamError {
    fn from(e: trent_crypto::random::RandomError) -> Self {
        IamError::ServiceFailure(e.to_string())
    }
}
