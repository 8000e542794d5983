//! The in-memory registry of access keys the SigV4 verifier consults on every request.
//!
//! Secrets live here in the clear (HMAC needs them) inside zeroizing buffers; in storage they are
//! wrapped under the root key. Lookups take a read lock and clone an `Arc`, so the hot path never
//! touches the database. Temporary (STS) credentials also carry the SHA-256 of their session
//! token and their expiry: the token itself is never stored.
//!
//! A miss is looked up in the store once (`Kms::find_credential`, read-through: a key or
//! session another node made) and cached. Ids the store does not know are remembered for
//! [`MISS_TTL`] in a bounded negative cache, and at most [`MAX_CONCURRENT_LOOKUPS`] lookups run
//! at once, so a flood of random access key ids costs at most one store read per id per
//! `MISS_TTL`, never more than a few at a time, and bounded memory. The registry itself holds
//! at most about [`MAX_HELD_CREDENTIALS`]: past it, temporary credentials are dropped (they
//! are read through again on use), so issuing sessions without end cannot grow memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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
    /// An integrated service's credentials (service principal name); never stored, derived
    /// from the root key at start-up (`integrated_services.rs`).
    Service(String),
}

/// What makes a credential temporary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub token_sha256: [u8; 32],
    pub expires_ms: i64,
    /// When the session was issued (CloudTrail's `sessionContext.attributes.creationDate`).
    pub created_ms: i64,
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
    /// A long-term user key's user unique id (AIDA…): the key authenticates only that user,
    /// never a re-created user of the same name. `None` for root and service keys, sessions
    /// (their `SessionInfo` carries it) and legacy keys not yet bound.
    pub user_id: Option<String>,
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

/// How long an access key id the store did not know is answered "unknown" without asking again.
pub const MISS_TTL: Duration = Duration::from_secs(1);
/// At most this many unknown ids are remembered at once.
pub const MISS_CAPACITY: usize = 4096;
/// Read-through lookups running at once (the others wait).
pub const MAX_CONCURRENT_LOOKUPS: usize = 4;
/// Credentials held in memory past which temporary ones are dropped to make room (STS issues
/// sessions without limit; a dropped one is read from the store again on its next use).
pub const MAX_HELD_CREDENTIALS: usize = 200_000;

pub struct CredentialRegistry {
    by_access_key: RwLock<HashMap<String, Arc<Credential>>>,
    /// [`MAX_HELD_CREDENTIALS`], smaller in tests.
    capacity: usize,
    /// Ids the store did not know, and when it said so.
    misses: Mutex<HashMap<String, Instant>>,
    pub(crate) lookups: tokio::sync::Semaphore,
}

impl Default for CredentialRegistry {
    fn default() -> Self {
        Self {
            by_access_key: RwLock::default(),
            capacity: MAX_HELD_CREDENTIALS,
            misses: Mutex::default(),
            lookups: tokio::sync::Semaphore::new(MAX_CONCURRENT_LOOKUPS),
        }
    }
}

impl CredentialRegistry {
    /// A registry holding about `capacity` credentials (see [`MAX_HELD_CREDENTIALS`]).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(8),
            ..Self::default()
        }
    }

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
        self.insert_shared(Arc::new(credential));
    }

    pub(crate) fn insert_shared(&self, credential: Arc<Credential>) {
        if let Ok(mut misses) = self.misses.lock() {
            misses.remove(&credential.access_key_id);
        }
        if let Ok(mut map) = self.by_access_key.write() {
            if map.len() >= self.capacity && !map.contains_key(&credential.access_key_id) {
                // An eighth of the capacity in sessions goes at once, so that this pass over
                // the map is paid once per that many inserts. Long-term keys always stay.
                let mut room = self.capacity / 8;
                map.retain(|_, c| {
                    let drop = room > 0 && c.session.is_some();
                    room -= usize::from(drop);
                    !drop
                });
            }
            map.insert(credential.access_key_id.clone(), credential);
        }
    }

    /// Whether the store said it did not know `access_key_id` less than [`MISS_TTL`] ago.
    pub fn recently_missed(&self, access_key_id: &str) -> bool {
        self.misses
            .lock()
            .ok()
            .and_then(|m| m.get(access_key_id).map(|at| at.elapsed() < MISS_TTL))
            .unwrap_or(false)
    }

    /// Remembers that the store did not know `access_key_id`. When full, expired entries go
    /// first; if none has expired the id is not remembered (the lookup bound still holds).
    pub fn note_miss(&self, access_key_id: &str) {
        let Ok(mut misses) = self.misses.lock() else {
            return;
        };
        if misses.len() >= MISS_CAPACITY {
            misses.retain(|_, at| at.elapsed() < MISS_TTL);
        }
        if misses.len() < MISS_CAPACITY {
            misses.insert(access_key_id.to_string(), Instant::now());
        }
    }

    /// Unknown ids remembered now (at most [`MISS_CAPACITY`]).
    pub fn misses_held(&self) -> usize {
        self.misses.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn remove(&self, access_key_id: &str) {
        if let Ok(mut map) = self.by_access_key.write() {
            map.remove(access_key_id);
        }
    }

    /// Forgets `access_key_id` entirely, known or missed: another node changed it, so the next
    /// request reads it from the store again.
    pub fn forget(&self, access_key_id: &str) {
        if let Ok(mut misses) = self.misses.lock() {
            misses.remove(access_key_id);
        }
        self.remove(access_key_id);
    }

    /// Forgets every credential read from the store, and every remembered miss (the feed could
    /// not tell which changed): each is read through again on its next use. Integrated
    /// services' credentials stay: they are derived from the root key, never stored.
    pub fn forget_stored(&self) {
        if let Ok(mut misses) = self.misses.lock() {
            misses.clear();
        }
        if let Ok(mut map) = self.by_access_key.write() {
            map.retain(|_, c| matches!(c.identity, CredentialIdentity::Service(_)));
        }
    }

    /// Drops temporary credentials that expired before `now_ms`.
    pub fn remove_expired(&self, now_ms: i64) {
        if let Ok(mut map) = self.by_access_key.write() {
            map.retain(|_, c| c.session.as_ref().is_none_or(|s| s.expires_ms > now_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(id: &str, temporary: bool) -> Credential {
        Credential {
            access_key_id: id.into(),
            secret_access_key: Zeroizing::new("secret".into()),
            account_id: "111122223333".into(),
            identity: CredentialIdentity::Root,
            session: temporary.then(|| SessionInfo {
                token_sha256: [0; 32],
                expires_ms: i64::MAX,
                principal_id: "111122223333".into(),
                created_ms: 0,
            }),
            user_id: None,
            cached_principal: Default::default(),
        }
    }

    #[test]
    fn sessions_are_dropped_past_the_capacity_and_long_term_keys_stay() {
        let registry = CredentialRegistry::with_capacity(16);
        for i in 0..4 {
            registry.insert(credential(&format!("AKIA{i}"), false));
        }
        for i in 0..1000 {
            registry.insert(credential(&format!("ASIA{i}"), true));
            assert!(registry.len() <= 16, "{} held", registry.len());
        }
        for i in 0..4 {
            assert!(registry.lookup(&format!("AKIA{i}")).is_some());
        }
        assert!(registry.lookup("ASIA999").is_some(), "the newest is held");
    }
}
