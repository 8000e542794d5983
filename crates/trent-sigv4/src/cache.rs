//! A bounded, thread-safe cache of derived signing keys, so the hot path does one HMAC per
//! request instead of five.
//!
//! A signing key depends on the secret as well as on (access key id, date, region, service).
//! Entries are filed by access key id under the *owner* of the secret — the server's
//! credential object, held by the entry — and are used only while the caller presents that
//! same owner (`Arc::ptr_eq`). A rotated or replaced secret comes with a new owner, so it never
//! meets a stale key; and because the entry keeps its owner alive, the owner's address cannot
//! be reused by another credential while the entry exists. A hit therefore costs a read lock,
//! one map probe by `&str` and a pointer comparison: no HMAC, no copy, no exclusive lock.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::{ParsedSignature, SigningKey};

/// The keys of one access key id: its owner and one key per scope seen (a client uses one or
/// two: today's and, around midnight UTC, yesterday's).
struct Entry<T> {
    owner: Arc<T>,
    keys: Vec<(Scope, Arc<SigningKey>)>,
}

/// A credential scope less the access key id.
#[derive(PartialEq, Eq)]
struct Scope {
    date: String,
    region: String,
    service: String,
}

impl Scope {
    fn matches(&self, parsed: &ParsedSignature<'_>) -> bool {
        self.date == parsed.scope_date
            && self.region == parsed.region
            && self.service == parsed.service
    }
}

/// Scopes kept per access key id; more (a client cycling regions) replace the oldest.
const SCOPES_PER_KEY: usize = 4;

/// Derived signing keys by access key id and scope, for secrets owned by `T` values. When an
/// insert would exceed `max_entries` access key ids, the whole cache is cleared: keys are
/// cheap to re-derive and date-scoped, so a crude bound beats LRU bookkeeping here.
pub struct SigningKeyCache<T> {
    max_entries: usize,
    entries: RwLock<HashMap<String, Entry<T>>>,
}

impl<T> SigningKeyCache<T> {
    /// A cache for at most `max_entries` access key ids; `0` disables caching (every call
    /// derives).
    pub fn new(max_entries: usize) -> Self {
        SigningKeyCache {
            max_entries,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The signing key for `secret_access_key` (owned by `owner`) and `parsed`'s credential
    /// scope, derived on a miss. The derivation runs outside the lock.
    pub fn get_or_derive(
        &self,
        owner: &Arc<T>,
        secret_access_key: &str,
        parsed: &ParsedSignature<'_>,
    ) -> Arc<SigningKey> {
        if self.max_entries > 0
            && let Some(key) = self.lookup(owner, parsed)
        {
            return key;
        }
        let key = Arc::new(SigningKey::derive(
            secret_access_key,
            &parsed.scope_date,
            &parsed.region,
            &parsed.service,
        ));
        if self.max_entries == 0 {
            return key;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let stale = entries
            .get(&*parsed.access_key_id)
            .is_some_and(|e| !Arc::ptr_eq(&e.owner, owner));
        if stale {
            entries.remove(&*parsed.access_key_id);
        }
        if !entries.contains_key(&*parsed.access_key_id) && entries.len() >= self.max_entries {
            entries.clear();
        }
        let entry = entries
            .entry(parsed.access_key_id.clone().into_owned())
            .or_insert_with(|| Entry {
                owner: Arc::clone(owner),
                keys: Vec::new(),
            });
        if !entry.keys.iter().any(|(scope, _)| scope.matches(parsed)) {
            if entry.keys.len() >= SCOPES_PER_KEY {
                entry.keys.remove(0);
            }
            let scope = Scope {
                date: parsed.scope_date.clone().into_owned(),
                region: parsed.region.clone().into_owned(),
                service: parsed.service.clone().into_owned(),
            };
            entry.keys.push((scope, Arc::clone(&key)));
        }
        key
    }

    fn lookup(&self, owner: &Arc<T>, parsed: &ParsedSignature<'_>) -> Option<Arc<SigningKey>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(&*parsed.access_key_id)?;
        if !Arc::ptr_eq(&entry.owner, owner) {
            return None;
        }
        entry
            .keys
            .iter()
            .find(|(scope, _)| scope.matches(parsed))
            .map(|(_, key)| Arc::clone(key))
    }

    /// How many signing keys are cached now.
    pub fn len(&self) -> usize {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.values().map(|e| e.keys.len()).sum()
    }

    /// Whether the cache holds no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every cached key (for example after an access key is deleted).
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl<T> std::fmt::Debug for SigningKeyCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("max_entries", &self.max_entries)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
