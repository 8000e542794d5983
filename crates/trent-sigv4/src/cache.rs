//! A bounded, thread-safe cache of derived signing keys, so the hot path does one HMAC per
//! request instead of five.
//!
//! A signing key depends on the secret as well as on (access key id, date, region, service).
//! The cache key therefore includes a *fingerprint of the secret*, so a rotated or replaced
//! secret for the same access key id never hits a stale entry, with no versioning protocol
//! between caller and cache. The fingerprint is HMAC-SHA256 of the secret under a random key
//! made per cache, so what sits in memory cannot be checked against guesses outside this
//! process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::{hmac, rand};

use crate::{ParsedSignature, SigningKey};

#[derive(Hash, PartialEq, Eq)]
struct CacheKey {
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
    secret_fingerprint: [u8; 32],
}

/// Derived signing keys keyed by (access key id, scope date, region, service, fingerprint of the
/// secret). When an insert would exceed `max_entries`, the whole cache is cleared: keys are
/// cheap to re-derive and date-scoped, so a crude bound beats LRU bookkeeping here.
pub struct SigningKeyCache {
    max_entries: usize,
    fingerprint_key: hmac::Key,
    entries: Mutex<HashMap<CacheKey, Arc<SigningKey>>>,
}

impl SigningKeyCache {
    /// A cache holding at most `max_entries` keys; `0` disables caching (every call derives).
    pub fn new(max_entries: usize) -> Self {
        let fingerprint_key = match rand::generate::<[u8; 32]>(&rand::SystemRandom::new()) {
            Ok(random) => hmac::Key::new(hmac::HMAC_SHA256, &random.expose()),
            // Without randomness the fingerprint is still collision-resistant, which is all
            // correctness needs; it only loses being unlinkable to the secret.
            Err(_) => hmac::Key::new(hmac::HMAC_SHA256, b"trent-sigv4 signing-key cache"),
        };
        SigningKeyCache {
            max_entries,
            fingerprint_key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The signing key for `secret_access_key` and `parsed`'s credential scope, derived on a
    /// miss. The derivation runs outside the lock.
    pub fn get_or_derive(
        &self,
        secret_access_key: &str,
        parsed: &ParsedSignature,
    ) -> Arc<SigningKey> {
        let derive = || {
            Arc::new(SigningKey::derive(
                secret_access_key,
                &parsed.scope_date,
                &parsed.region,
                &parsed.service,
            ))
        };
        if self.max_entries == 0 {
            return derive();
        }
        let mut secret_fingerprint = [0u8; 32];
        let tag = hmac::sign(&self.fingerprint_key, secret_access_key.as_bytes());
        secret_fingerprint.copy_from_slice(tag.as_ref());
        let cache_key = CacheKey {
            access_key_id: parsed.access_key_id.clone(),
            scope_date: parsed.scope_date.clone(),
            region: parsed.region.clone(),
            service: parsed.service.clone(),
            secret_fingerprint,
        };
        if let Some(key) = self.lock().get(&cache_key) {
            return Arc::clone(key);
        }
        let key = derive();
        let mut entries = self.lock();
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(cache_key, Arc::clone(&key));
        key
    }

    /// How many keys are cached now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds no keys.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops every cached key (for example after an access key is deleted).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Arc<SigningKey>>> {
        // A panic while holding the lock cannot leave the map inconsistent (each operation is a
        // single HashMap call), so a poisoned lock is safe to keep using.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("max_entries", &self.max_entries)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
