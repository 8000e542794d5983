//! Key custody: who holds a secret and performs operations with it, as small traits in the
//! shape of rustls's `CryptoProvider` (the domain holds trait objects, each custodian lives
//! where its dependencies do).
//!
//! Two roles:
//!
//! - [`RootCustodian`]: holds the root key that wraps every secret at rest. Today the built-in
//!   [`RootKey`] (32 bytes from `root.key`, `$TRENT_ROOT_KEY` or a configured file); the trait
//!   is what a PKCS#11 token holding the root key would implement (wrap/unwrap with a token
//!   AES-GCM key, the subkey derivation as a token HMAC).
//! - [`SymmetricCustody`]: one AES-256-GCM key version of a KMS key. Built-in material
//!   ([`SymmetricKey`], in process) implements it; so does a key generated in an HSM
//!   (`trent-custody-pkcs11`), whose bytes Trent never sees. [`HsmProvider`] and
//!   [`HsmConnection`] are the custodian of a whole AWS_CLOUDHSM-type key store: open a token,
//!   log in with the key store's PIN, generate and find keys in it.
//!
//! The traits carry no I/O themselves; implementations may (a token call is I/O), which is
//! why their operations return [`CustodyError`] with an `Unavailable` case the built-in
//! material never produces.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::material::{NONCE_BYTES, SymmetricKey};
use crate::root::{RootKey, RootKeyError};

/// Holds the root key: wraps and unwraps secrets at rest, derives purpose-bound subkeys.
pub trait RootCustodian: Send + Sync {
    /// Encrypts `secret`, binding `aad` (see [`RootKey::wrap`] for the built-in format).
    fn wrap(&self, secret: &[u8], aad: &[u8]) -> Result<Vec<u8>, RootKeyError>;
    /// Decrypts what [`RootCustodian::wrap`] produced with the same `aad`.
    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, RootKeyError>;
    /// A symmetric key derived for one purpose, the same on every node sharing the root key.
    /// Callers derive once and keep the result (it is on no request path).
    fn derive_subkey(&self, label: &str) -> Result<SymmetricKey, RootKeyError>;
}

impl RootCustodian for RootKey {
    fn wrap(&self, secret: &[u8], aad: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        RootKey::wrap(self, secret, aad)
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, RootKeyError> {
        RootKey::unwrap(self, wrapped, aad)
    }

    fn derive_subkey(&self, label: &str) -> Result<SymmetricKey, RootKeyError> {
        RootKey::derive_subkey(self, label)
    }
}

/// Why a custodian could not perform an operation. Carries no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustodyError {
    /// The ciphertext or its AAD failed authentication.
    #[error("ciphertext failed authentication")]
    Authentication,
    /// The plaintext is beyond what the key can seal.
    #[error("the plaintext is too large to seal")]
    TooLarge,
    /// The custodian cannot be reached now (token removed, session closed, store
    /// disconnected); the operation may work later.
    #[error("the key custodian is unavailable")]
    Unavailable,
    /// Any other failure, described for the operator's log (never a PIN or key bytes).
    #[error("key custodian failure: {0}")]
    Failed(String),
}

/// One AES-256-GCM key, wherever it is held. The nonce is chosen by the caller (Trent's blob
/// format carries it), so every custodian produces the same ciphertext format.
pub trait SymmetricCustody: Send + Sync {
    /// Appends `plaintext` sealed (ciphertext then 16-byte tag) to `out`; on error `out` is
    /// left as it was.
    fn seal_append(
        &self,
        nonce: [u8; NONCE_BYTES],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CustodyError>;

    /// Opens ciphertext-then-tag sealed with `nonce` and `aad`.
    fn open(
        &self,
        nonce: [u8; NONCE_BYTES],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError>;
}

impl SymmetricCustody for SymmetricKey {
    fn seal_append(
        &self,
        nonce: [u8; NONCE_BYTES],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CustodyError> {
        SymmetricKey::seal_append(self, nonce, aad, plaintext, out)
            .map_err(|_| CustodyError::TooLarge)
    }

    fn open(
        &self,
        nonce: [u8; NONCE_BYTES],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        SymmetricKey::open(self, nonce, aad, sealed).ok_or(CustodyError::Authentication)
    }
}

/// Where an HSM cluster's token is: what the operator declared in `[[hsm_cluster]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmTokenLocation {
    /// Path of the PKCS#11 module (shared library).
    pub module: std::path::PathBuf,
    /// The token's label; the slot is found by it (SoftHSM2 assigns random-looking slot ids).
    pub token_label: String,
}

/// Why connecting to an HSM failed, in the terms of AWS's `ConnectionErrorCode`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HsmConnectError {
    /// The PIN was refused (`INVALID_CREDENTIALS`).
    #[error("the token refused the key store password")]
    InvalidCredentials,
    /// The module could not be loaded or the token is not there (`CLUSTER_NOT_FOUND`).
    #[error("the HSM cluster's token was not found: {0}")]
    ClusterNotFound(String),
    /// Any other failure talking to the token (`NETWORK_ERRORS`).
    #[error("the HSM could not be reached: {0}")]
    Network(String),
    /// The token's user is already logged in, and not by a live connection that proved
    /// this password (`USER_LOGGED_IN`).
    #[error("the token's user is already logged in by another application")]
    UserLoggedIn,
}

/// The custodian of AWS_CLOUDHSM-type key stores: opens a token and logs in.
pub trait HsmProvider: Send + Sync {
    /// Opens the token at `location` and logs in as its user with `pin`. The PIN is only
    /// passed on to the token, never kept in errors.
    fn connect(
        &self,
        location: &HsmTokenLocation,
        pin: &str,
    ) -> Result<Arc<dyn HsmConnection>, HsmConnectError>;
}

/// A logged-in connection to one token. Keys it returns stay usable while it lives.
pub trait HsmConnection: Send + Sync {
    /// Generates a non-extractable, sensitive AES-256 key labelled `label` in the token.
    fn generate_aes_key(&self, label: &str) -> Result<Arc<dyn SymmetricCustody>, CustodyError>;
    /// The AES key labelled `label`, if the token holds one.
    fn find_aes_key(&self, label: &str) -> Result<Option<Arc<dyn SymmetricCustody>>, CustodyError>;
    /// Destroys the AES keys labelled `label`; `false` if the token held none.
    fn destroy_aes_key(&self, label: &str) -> Result<bool, CustodyError>;
    /// `len` random bytes from the token's generator.
    fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, CustodyError>;
    /// Logs out and closes the token's sessions; keys handed out stop working.
    fn close(&self);
}

/// The custodian of EXTERNAL_KEY_STORE-type key stores (an XKS proxy) and their outer blob.
pub mod xks;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_key_through_the_trait_round_trips_and_authenticates() {
        let key = SymmetricKey::generate().unwrap();
        let custody: &dyn SymmetricCustody = &key;
        let mut out = vec![9u8];
        custody
            .seal_append([3; 12], b"aad", b"hello", &mut out)
            .unwrap();
        let sealed = out.get(1..).unwrap();
        assert_eq!(
            custody.open([3; 12], b"aad", sealed).unwrap().as_slice(),
            b"hello"
        );
        assert_eq!(
            custody.open([3; 12], b"other", sealed).err(),
            Some(CustodyError::Authentication)
        );
    }

    #[test]
    fn builtin_root_through_the_trait_matches_the_concrete_key() {
        let (root, bytes) = RootKey::generate().unwrap();
        let custodian: Arc<dyn RootCustodian> = Arc::new(RootKey::from_bytes(&bytes).unwrap());
        let w = custodian.wrap(b"s", b"a").unwrap();
        assert_eq!(root.unwrap(&w, b"a").unwrap().as_slice(), b"s");
        assert!(custodian.unwrap(&w, b"b").is_err());
    }
}
