//! Each key's grants in memory: by grant id (tombstones included), and the active ones indexed
//! by grantee principal and operation, so finding the grant that allows a call costs the same
//! on a key with one grant as on a key with 50,000.
//!
//! A key's grants are loaded with the key and written through by the grant operations; a load
//! that raced with a change is detected by an epoch and redone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::model::{Grant, GrantOperation};
use crate::model::GrantRow;

/// The state of one grant as this node knows it.
#[derive(Clone)]
pub(crate) enum Known {
    Active(Arc<Grant>),
    Retired,
}

/// Active grants of one grantee, one list per operation.
#[derive(Default)]
struct ByOperation([Vec<Arc<Grant>>; GrantOperation::ALL.len()]);

/// One key's grants.
#[derive(Default)]
struct KeyGrants {
    known: HashMap<String, Known>,
    /// How many are active (the quota is checked against the count, never by scanning).
    active: usize,
    by_grantee: HashMap<String, ByOperation>,
}

impl KeyGrants {
    fn insert(&mut self, grant_id: &str, known: Known) {
        if let Known::Active(g) = &known {
            let lists = self
                .by_grantee
                .entry(g.grantee_principal.clone())
                .or_default();
            for op in &g.operations {
                if let Some(list) = lists.0.get_mut(op.index()) {
                    list.push(g.clone());
                }
            }
            self.active += 1;
        }
        if let Some(Known::Active(old)) = self.known.insert(grant_id.to_string(), known) {
            self.unindex(&old);
            self.active -= 1;
        }
    }

    fn unindex(&mut self, grant: &Grant) {
        let Some(lists) = self.by_grantee.get_mut(&grant.grantee_principal) else {
            return;
        };
        for op in &grant.operations {
            if let Some(list) = lists.0.get_mut(op.index())
                && let Some(at) = list.iter().position(|g| std::ptr::eq(&**g, grant))
            {
                list.swap_remove(at);
            }
        }
        if lists.0.iter().all(Vec::is_empty) {
            self.by_grantee.remove(&grant.grantee_principal);
        }
    }
}

/// Grants by key id. Each key's grants sit behind their own lock, so a change touches one
/// entry instead of copying the key's grant set.
#[derive(Default)]
pub struct GrantCache {
    by_key: RwLock<HashMap<String, Arc<RwLock<KeyGrants>>>>,
    /// Bumped by every grant change, so a load that raced with one can tell.
    epoch: AtomicU64,
}

impl GrantCache {
    /// Keys whose grants are held now.
    pub fn keys_cached(&self) -> usize {
        self.by_key.read().map(|k| k.len()).unwrap_or(0)
    }

    fn entry(&self, key_id: &str) -> Option<Arc<RwLock<KeyGrants>>> {
        self.by_key.read().ok()?.get(key_id).cloned()
    }

    /// The first active grant on `key_id` to one of `grantees` for `operation` that `accept`
    /// accepts. Only those grantees' grants for that operation are looked at.
    pub(crate) fn find(
        &self,
        key_id: &str,
        grantees: &[&str],
        operation: GrantOperation,
        mut accept: impl FnMut(&Grant) -> bool,
    ) -> Option<Arc<Grant>> {
        let entry = self.entry(key_id)?;
        let grants = entry.read().ok()?;
        grantees.iter().find_map(|grantee| {
            grants
                .by_grantee
                .get(*grantee)?
                .0
                .get(operation.index())?
                .iter()
                .find(|g| accept(g))
                .cloned()
        })
    }

    pub(crate) fn known(&self, key_id: &str, grant_id: &str) -> Option<Known> {
        let entry = self.entry(key_id)?;
        let grants = entry.read().ok()?;
        grants.known.get(grant_id).cloned()
    }

    pub(crate) fn active_count(&self, key_id: &str) -> usize {
        self.entry(key_id)
            .and_then(|e| e.read().ok().map(|g| g.active))
            .unwrap_or(0)
    }

    /// Every active grant of the key (for listing; never on the request path).
    pub(crate) fn active(&self, key_id: &str) -> Vec<Arc<Grant>> {
        let Some(entry) = self.entry(key_id) else {
            return Vec::new();
        };
        let Ok(grants) = entry.read() else {
            return Vec::new();
        };
        grants
            .known
            .values()
            .filter_map(|k| match k {
                Known::Active(g) => Some(g.clone()),
                Known::Retired => None,
            })
            .collect()
    }

    /// Drops a deleted key's grants.
    pub(crate) fn forget(&self, key_id: &str) {
        if let Ok(mut m) = self.by_key.write() {
            m.remove(key_id);
        }
    }

    /// Drops a key's grants because another node changed them: the next use reads the store.
    /// Bumps the epoch (under the write lock) so a load already reading cannot install rows
    /// older than the change.
    pub(crate) fn invalidate(&self, key_id: &str) {
        if let Ok(mut m) = self.by_key.write() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            m.remove(key_id);
        }
    }

    /// Drops every key's grants (the feed could not tell which changed), bumping the epoch as
    /// [`GrantCache::invalidate`] does.
    pub(crate) fn invalidate_all(&self) {
        if let Ok(mut m) = self.by_key.write() {
            self.epoch.fetch_add(1, Ordering::SeqCst);
            m.clear();
        }
    }

    pub(crate) fn is_loaded(&self, key_id: &str) -> bool {
        self.by_key.read().is_ok_and(|m| m.contains_key(key_id))
    }

    /// The update epoch; read it before reading grant rows from the store and pass it to
    /// [`GrantCache::load`].
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Installs a key's grants read from the store, unless another load got there first or a
    /// grant changed since `epoch` (the rows may then be stale). Returns whether the caller may
    /// stop: `false` means read the rows again.
    pub(crate) fn load(&self, key_id: &str, rows: Vec<GrantRow>, epoch: u64) -> bool {
        let mut grants = KeyGrants::default();
        for row in rows {
            let known = match (row.retired_ms, serde_json::from_str::<Grant>(&row.body)) {
                (None, Ok(g)) => Known::Active(Arc::new(g)),
                _ => Known::Retired,
            };
            grants.insert(&row.grant_id, known);
        }
        let Ok(mut m) = self.by_key.write() else {
            return true;
        };
        if m.contains_key(key_id) {
            return true;
        }
        if self.epoch() != epoch {
            return false;
        }
        m.insert(key_id.to_string(), Arc::new(RwLock::new(grants)));
        true
    }

    /// Marks a just-created key as having no grants (nothing can be stale for it).
    pub(crate) fn init_new_key(&self, key_id: &str) {
        if let Ok(mut m) = self.by_key.write() {
            m.entry(key_id.to_string()).or_default();
        }
    }

    /// Records a grant change. Keys whose grants are not loaded are left alone: their next
    /// load reads the store, which already has the change.
    pub(crate) fn update(&self, key_id: &str, grant_id: &str, known: Known) {
        // Under the map's write lock, so a concurrent load either sees the new epoch or is
        // already installed (and is then updated here).
        let Ok(m) = self.by_key.write() else { return };
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let Some(entry) = m.get(key_id).cloned() else {
            return;
        };
        drop(m);
        if let Ok(mut g) = entry.write() {
            g.insert(grant_id, known);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str, grantee: &str, operations: Vec<GrantOperation>) -> Known {
        Known::Active(Arc::new(Grant {
            v: 1,
            grant_id: id.into(),
            key_id: "k".into(),
            key_account: "111122223333".into(),
            key_region: "us-east-1".into(),
            name: None,
            grantee_principal: grantee.into(),
            retiring_principal: None,
            grantee_service_principal: None,
            retiring_service_principal: None,
            grantee_principal_id: None,
            retiring_principal_id: None,
            operations,
            constraints: None,
            issuing_account: "111122223333".into(),
            created_ms: 0,
        }))
    }

    fn encrypt_grant(id: &str) -> Known {
        grant(id, "111122223333", vec![GrantOperation::Encrypt])
    }

    #[test]
    fn the_active_count_follows_creation_retirement_and_reloads() {
        let cache = GrantCache::default();
        assert!(cache.load("k", Vec::new(), cache.epoch()));
        cache.update("k", "g1", encrypt_grant("g1"));
        cache.update("k", "g2", encrypt_grant("g2"));
        cache.update("k", "g2", encrypt_grant("g2"));
        assert_eq!(
            cache.active_count("k"),
            2,
            "re-adding an active grant does not double count"
        );
        cache.update("k", "g1", Known::Retired);
        cache.update("k", "g1", Known::Retired);
        assert_eq!(cache.active_count("k"), 1);
        assert!(matches!(cache.known("k", "g1"), Some(Known::Retired)));
        assert_eq!(cache.active("k").len(), 1);
        assert_eq!(cache.active_count("other"), 0);
    }

    #[test]
    fn the_index_finds_grants_by_grantee_and_operation_and_forgets_retired_ones() {
        let cache = GrantCache::default();
        cache.init_new_key("k");
        let alice = "arn:aws:iam::111122223333:user/alice";
        cache.update(
            "k",
            "g1",
            grant(
                "g1",
                alice,
                vec![GrantOperation::Decrypt, GrantOperation::Encrypt],
            ),
        );
        cache.update(
            "k",
            "g2",
            grant(
                "g2",
                "arn:aws:iam::111122223333:user/bob",
                vec![GrantOperation::Sign],
            ),
        );
        let find = |grantees: &[&str], op| cache.find("k", grantees, op, |_| true);
        assert_eq!(
            find(&[alice], GrantOperation::Encrypt).map(|g| g.grant_id.clone()),
            Some("g1".to_string())
        );
        assert!(
            find(&[alice], GrantOperation::Sign).is_none(),
            "bob's grant"
        );
        assert!(find(&["111122223333"], GrantOperation::Encrypt).is_none());
        assert!(
            cache
                .find("k", &[alice], GrantOperation::Encrypt, |g| g.grant_id
                    != "g1")
                .is_none(),
            "the filter decides"
        );
        cache.update("k", "g1", Known::Retired);
        assert!(find(&[alice], GrantOperation::Decrypt).is_none());
        assert!(find(&[alice], GrantOperation::Encrypt).is_none());
        assert!(
            find(
                &["arn:aws:iam::111122223333:user/bob"],
                GrantOperation::Sign
            )
            .is_some()
        );
    }

    #[test]
    fn a_load_that_raced_with_a_change_is_not_installed() {
        let cache = GrantCache::default();
        cache.init_new_key("other");
        let before = cache.epoch();
        cache.update("other", "g", Known::Retired); // any change bumps the epoch
        assert!(
            !cache.load("k", Vec::new(), before),
            "stale rows must be re-read"
        );
        assert!(!cache.is_loaded("k"));
        assert!(cache.load("k", Vec::new(), cache.epoch()));
        assert!(cache.is_loaded("k"));
        // Changes to keys that are not loaded are not recorded (the store has them).
        cache.update("unloaded", "g", encrypt_grant("g"));
        assert!(!cache.is_loaded("unloaded"));
    }
}
