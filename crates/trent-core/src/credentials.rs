//! The in-memory registry of access keys the SigV4 verifier consults on every request.
//!
//! Secrets live here in the clear (HMAC needs them) inside zeroizing buffers; in storage they are
//! wrapped under the root key. Lookups take a read lock and clone an `Arc`, so the hot path never
//! touches the database. Temporary (STS) credentials also carry the SHA-256 of their session
//! token and their expiry: the token itself is never stored.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

use crate::caller::Principal;

/// Whom an access key authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialIdentity {
    Root,
    User(String),
    RoleSession {
        role_name: String,
        session_name: String,
    },
}

/// What makes a credential temporary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub token_sha256: [u8; 32],
    pub expires_ms: i64,
    /// The unique id (AROA…, AIDA…, or the account id) of the role or user the session was
    /// issued for: a re-created role or user of the same name is a different principal.
    pub principal_id: String,
}

/// One access key and whom it authenticates.
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub account_id: String,
    pub identity: CredentialIdentity,
    pub session: Option<SessionInfo>,
    /// The principal this key authenticates, built on first use and reused while the
    /// account's IAM snapshot is the one it was built from (see `sts.rs`, `caller_for`).
    pub(crate) cached_principal: RwLock<Option<Arc<Principal>>>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
pub struct CredentialRegistry {
    by_access_key: RwLock<HashMap<String, Arc<Credential>>>,
}

impl CredentialRegistry {
    /// Credentials held now.
    pub fn len(&self) -> usize {
        self.by_access_key.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn lookup(&self, access_key_id: &str) -> Option<Arc<Credential>> {
        self.by_access_key.read().ok()?.get(access_key_id).cloned()
    }

    pub fn insert(&self, credential: Credential) {
        if let Ok(mut map) = self.by_access_key.write() {
            map.insert(credential.access_key_id.clone(), Arc::new(credential));
        }
    }

    pub fn remove(&self, access_key_id: &str) {
        if let Ok(mut map) = self.by_access_key.write() {
            map.remove(access_key_id);
        }
    }

    /// Drops temporary credentials that expired before `now_ms`.
    pub fn remove_expired(&self, now_ms: i64) {
        if let Ok(mut map) = self.by_access_key.write() {
            map.retain(|_, c| c.session.as_ref().is_none_or(|s| s.expires_ms > now_ms));
        }
    }
}
