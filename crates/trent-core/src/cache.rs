//! The in-memory cache of keys (with unwrapped, expanded material) and aliases.
//!
//! Encrypt/Decrypt/GenerateDataKey resolve their key here and never touch the database on a hit.
//! Every write the domain makes goes to the store first and then replaces the cache entry, so on
//! one node a change is visible to the very next request. (Several nodes on one database will
//! need cross-node invalidation; see ARCHITECTURE.md.)
//!
//! **Bounded.** At most its capacity ([`DEFAULT_KEY_CACHE_CAPACITY`]) of keys is held, plus
//! those in use by a request at the moment one more is admitted: admitting a key past it evicts
//! one no request holds, with its grants and alias list, and the next use of an evicted key
//! reads the store again. The invariant every insertion keeps, under the keys' write lock: a
//! cached key's grants are loaded and its alias list is known. Alias targets are held up to the
//! same number of names and forgotten all at once past it (a miss reads the store). A hit is
//! what it was: a read lock and an `Arc` clone.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use trent_crypto::{AsymmetricKey, HmacKey, MaterialId, SymmetricCustody};

use trent_policy::{Policy, PolicyKind};

use crate::error::{KmsError, KmsResult};
use crate::material::Material;
use crate::model::KeyRecord;

/// A key ready for use: its record, its parsed material, and what authorization reads on
/// every request (ARN, parsed key policy), computed once.
pub struct LoadedKey {
    pub record: KeyRecord,
    /// The key id as raw UUID bytes, as it appears in ciphertext blobs.
    pub uuid: [u8; 16],
    materials: HashMap<MaterialId, Arc<Material>>,
    arn: Arc<str>,
    /// The parse error if the stored policy does not parse (authorization then fails as
    /// internal, with the error in the message for the log).
    key_policy: Result<Arc<Policy>, String>,
    /// For a stand-in ([`LoadedKey::phantom`]): the `NotFoundException` message a caller
    /// allowed to use it gets.
    phantom: Option<String>,
}

impl LoadedKey {
    pub fn new(
        record: KeyRecord,
        uuid: [u8; 16],
        materials: HashMap<MaterialId, Arc<Material>>,
    ) -> Self {
        let key_policy = parse_key_policy(&record);
        Self {
            arn: Arc::from(record.arn()),
            record,
            uuid,
            materials,
            key_policy,
            phantom: None,
        }
    }

    /// A stand-in for a key of another account that does not exist (or an alias of another
    /// account that does not): `record` as a new key of that account would be, with its
    /// default policy and no material or grants. Authorization decides it like any key, so a
    /// caller without permission is denied exactly as for an existing key it may not use;
    /// a decision that would allow it is `NotFoundException` with `not_found` instead
    /// ([`crate::Kms::decide`]), so no operation ever acts on it.
    pub(crate) fn phantom(record: KeyRecord, uuid: [u8; 16], not_found: String) -> Self {
        Self {
            phantom: Some(not_found),
            ..Self::new(record, uuid, HashMap::new())
        }
    }

    /// The `NotFoundException` message of a stand-in key; `None` for a real key.
    pub(crate) fn phantom_not_found(&self) -> Option<&str> {
        self.phantom.as_deref()
    }

    /// The key's ARN.
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The key's ARN, shared (for what outlives the key's use in a request).
    pub fn shared_arn(&self) -> &Arc<str> {
        &self.arn
    }

    /// The key policy, parsed.
    pub fn key_policy(&self) -> KmsResult<&Policy> {
        match &self.key_policy {
            Ok(policy) => Ok(policy),
            Err(e) => Err(KmsError::Internal(format!(
                "stored key policy does not parse: {e}"
            ))),
        }
    }

    /// The parsed policy for `record`: reused when its text is unchanged.
    fn key_policy_for(&self, record: &KeyRecord) -> Result<Arc<Policy>, String> {
        if record.policy == self.record.policy
            && record.policy_principals == self.record.policy_principals
        {
            self.key_policy.clone()
        } else {
            parse_key_policy(record)
        }
    }

    /// How many material versions the key holds.
    pub fn material_count(&self) -> usize {
        self.materials.len()
    }

    /// Symmetric material `id`, wherever it is held; `None` if absent or not symmetric.
    pub fn material(&self, id: &MaterialId) -> Option<&dyn SymmetricCustody> {
        match self.materials.get(id).map(|m| m.as_ref()) {
            Some(Material::Symmetric(k)) => Some(k),
            Some(Material::HeldSymmetric(k)) => Some(k.as_ref()),
            _ => None,
        }
    }

    /// The asymmetric private key of the current material, if this is an asymmetric key.
    pub fn asymmetric(&self) -> Option<&AsymmetricKey> {
        match self
            .materials
            .get(&self.record.current_material)
            .map(|m| m.as_ref())
        {
            Some(Material::Asymmetric(k)) => Some(k),
            _ => None,
        }
    }

    /// The HMAC key of the current material, if this is an HMAC key.
    pub fn hmac(&self) -> Option<&HmacKey> {
        match self
            .materials
            .get(&self.record.current_material)
            .map(|m| m.as_ref())
        {
            Some(Material::Hmac(k)) => Some(k),
            _ => None,
        }
    }

    /// The same key with new metadata (material unchanged).
    pub fn with_record(&self, record: KeyRecord) -> Self {
        self.with_materials(record, self.materials.clone())
    }

    /// The same key with new metadata and one more material version (rotation, import).
    pub fn with_material(&self, record: KeyRecord, id: MaterialId, material: Material) -> Self {
        let mut materials = self.materials.clone();
        materials.insert(id, Arc::new(material));
        self.with_materials(record, materials)
    }

    /// The same key with new metadata and without material `id` (one imported material of a
    /// symmetric key deleted or expired).
    pub fn without_material(&self, record: KeyRecord, id: &MaterialId) -> Self {
        let mut materials = self.materials.clone();
        materials.remove(id);
        self.with_materials(record, materials)
    }

    /// The same key with new metadata and no material (imported material deleted or expired).
    pub fn without_materials(&self, record: KeyRecord) -> Self {
        self.with_materials(record, HashMap::new())
    }

    fn with_materials(
        &self,
        record: KeyRecord,
        materials: HashMap<MaterialId, Arc<Material>>,
    ) -> Self {
        Self {
            key_policy: self.key_policy_for(&record),
            arn: self.arn.clone(),
            record,
            uuid: self.uuid,
            materials,
            phantom: self.phantom.clone(),
        }
    }
}

/// The key policy with its users and roles bound to the unique ids stored with it
/// (`authz/bindings.rs`): computed here, once per load or policy change, never per request.
fn parse_key_policy(record: &KeyRecord) -> Result<Arc<Policy>, String> {
    crate::authz::bindings::parse_bound(
        &record.policy,
        PolicyKind::KeyPolicy,
        &record.policy_principals,
    )
    .map(Arc::new)
    .map_err(|e| e.to_string())
}

/// Alias targets by account, region and alias name: nested so a lookup by `&str` parts
/// builds no key.
type AliasTargets = HashMap<String, HashMap<String, HashMap<String, String>>>;

/// Alias targets and how many names they hold.
#[derive(Default)]
struct AliasTable {
    targets: AliasTargets,
    len: usize,
}

/// Keys cached at most, by default (and alias names): the whole of a large single-node
/// deployment's working set.
pub const DEFAULT_KEY_CACHE_CAPACITY: usize = 100_000;

/// Candidates looked at for eviction before the cache may grow by one instead.
const EVICTION_CANDIDATES: usize = 64;

pub struct KeyCache {
    capacity: usize,
    /// Whose grants a cached key must have loaded, and where an evicted key's go.
    grants: Arc<crate::grants::GrantCache>,
    keys: RwLock<HashMap<String, Arc<LoadedKey>>>,
    aliases: RwLock<AliasTable>,
    /// Every alias name of each cached key (`kms:ResourceAliases`), kept up to date by the
    /// alias operations; absent for keys not yet loaded.
    aliases_by_key: RwLock<HashMap<String, Vec<String>>>,
    /// Bumped by every removal, so a load that read a key before it was deleted can tell.
    removals: std::sync::atomic::AtomicU64,
}

impl KeyCache {
    /// A cache of at most `capacity` keys (at least 1) whose grants live in `grants`.
    pub fn new(capacity: usize, grants: Arc<crate::grants::GrantCache>) -> Self {
        Self {
            capacity: capacity.max(1),
            grants,
            keys: RwLock::default(),
            aliases: RwLock::default(),
            aliases_by_key: RwLock::default(),
            removals: Default::default(),
        }
    }

    /// Keys and alias names held now.
    pub fn sizes(&self) -> (usize, usize) {
        let keys = self.keys.read().map(|k| k.len()).unwrap_or(0);
        let aliases = self.aliases.read().map(|a| a.len).unwrap_or(0);
        (keys, aliases)
    }

    pub fn key(&self, key_id: &str) -> Option<Arc<LoadedKey>> {
        self.keys.read().ok()?.get(key_id).cloned()
    }

    /// Caches `key` (write-through after a change). A key whose grants are not loaded — it was
    /// evicted since it was read — is not cached: its next use reads the store.
    pub fn put_key(&self, key: Arc<LoadedKey>) {
        if let Ok(mut m) = self.keys.write() {
            self.admit(&mut m, key);
        }
    }

    /// Inserts `key` under the keys' write lock, keeping the bound and the invariant: a cached
    /// key has its grants loaded and its alias list known. Both are set before a key is first
    /// cached and dropped only with it (eviction, deletion), under this lock; a key missing
    /// either was evicted since it was read, and is not cached.
    fn admit(&self, m: &mut HashMap<String, Arc<LoadedKey>>, key: Arc<LoadedKey>) -> bool {
        let id = &key.record.key_id;
        let aliases_known = self.aliases_by_key.read().is_ok_and(|a| a.contains_key(id));
        if !aliases_known || !self.grants.is_loaded(id) {
            m.remove(id);
            return false;
        }
        if m.len() >= self.capacity && !m.contains_key(id) {
            self.evict_one(m);
        }
        m.insert(id.clone(), key);
        true
    }

    /// Evicts one key no request holds (the map's reference is the only one), with its
    /// grants and alias list (a load of it racing with this is refused by `admit`).
    fn evict_one(&self, m: &mut HashMap<String, Arc<LoadedKey>>) {
        let victim = m
            .iter()
            .take(EVICTION_CANDIDATES)
            .find(|(_, k)| Arc::strong_count(k) == 1)
            .map(|(id, _)| id.clone());
        let Some(victim) = victim else {
            return;
        };
        m.remove(&victim);
        if let Ok(mut a) = self.aliases_by_key.write() {
            a.remove(&victim);
        }
        self.grants.forget(&victim);
    }

    /// The removal epoch, read before loading a key from the store.
    pub fn removals(&self) -> u64 {
        self.removals.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Caches a key read from the store, unless a key was removed since `removals` (the read
    /// may predate a deletion), or an eviction dropped the grants or alias list read with it,
    /// or another load cached it first. Returns the cached key; `None` means read again.
    pub fn put_loaded_key(&self, key: Arc<LoadedKey>, removals: u64) -> Option<Arc<LoadedKey>> {
        let mut m = self.keys.write().ok()?;
        if let Some(existing) = m.get(&key.record.key_id) {
            return Some(existing.clone());
        }
        if self.removals() != removals {
            return None;
        }
        self.admit(&mut m, key.clone()).then_some(key)
    }

    pub fn remove_key(&self, key_id: &str) {
        if let Ok(mut m) = self.keys.write() {
            self.removals
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            m.remove(key_id);
        }
        if let Ok(mut m) = self.aliases_by_key.write() {
            m.remove(key_id);
        }
    }

    /// Drops every cached key of the multi-Region family `public_id` (`mrk-…`): each lists
    /// the family's Regions, which a write to any member may change. A scan, but family writes
    /// are rare (replication, rotation, primary change, deletion).
    pub fn remove_family(&self, public_id: &str) {
        let prefix = format!("{public_id}@");
        if let Ok(mut m) = self.keys.write() {
            self.removals
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            m.retain(|id, _| !id.starts_with(&prefix));
        }
        if let Ok(mut m) = self.aliases_by_key.write() {
            m.retain(|id, _| !id.starts_with(&prefix));
        }
    }

    /// Drops every cached key, alias list and alias target (the feed could not tell what
    /// changed: `feed.rs`); each is one store read away. Bumps the removal epoch, so a load
    /// that read before this cannot install what it read.
    pub fn clear(&self) {
        if let Ok(mut m) = self.keys.write() {
            self.removals
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            m.clear();
        }
        if let Ok(mut m) = self.aliases_by_key.write() {
            m.clear();
        }
        if let Ok(mut m) = self.aliases.write() {
            *m = AliasTable::default();
        }
    }

    /// Records the complete alias list of a key (when it is loaded or created).
    pub fn set_key_aliases(&self, key_id: &str, mut names: Vec<String>) {
        names.sort();
        if let Ok(mut m) = self.aliases_by_key.write() {
            m.insert(key_id.to_string(), names);
        }
    }

    /// The alias names of a key, if its list is known.
    pub fn key_aliases(&self, key_id: &str) -> Option<Vec<String>> {
        self.aliases_by_key.read().ok()?.get(key_id).cloned()
    }

    /// Adds (`add`) or removes an alias name in a key's known list.
    pub fn change_key_alias(&self, key_id: &str, name: &str, add: bool) {
        if let Ok(mut m) = self.aliases_by_key.write()
            && let Some(names) = m.get_mut(key_id)
        {
            names.retain(|n| n != name);
            if add {
                names.push(name.to_string());
                names.sort();
            }
        }
    }

    pub fn alias_target(&self, account: &str, region: &str, name: &str) -> Option<String> {
        let m = self.aliases.read().ok()?;
        m.targets.get(account)?.get(region)?.get(name).cloned()
    }

    /// Caches an alias target; past the capacity every cached alias is forgotten first
    /// (each is one store read away).
    pub fn put_alias(&self, account: &str, region: &str, name: &str, key_id: &str) {
        if let Ok(mut m) = self.aliases.write() {
            if m.len >= self.capacity {
                *m = AliasTable::default();
            }
            let fresh = m
                .targets
                .entry(account.into())
                .or_default()
                .entry(region.into())
                .or_default()
                .insert(name.into(), key_id.into())
                .is_none();
            if fresh {
                m.len += 1;
            }
        }
    }

    pub fn remove_alias(&self, account: &str, region: &str, name: &str) {
        if let Ok(mut m) = self.aliases.write() {
            let removed = m
                .targets
                .get_mut(account)
                .and_then(|r| r.get_mut(region))
                .and_then(|names| names.remove(name))
                .is_some();
            if removed {
                m.len -= 1;
            }
        }
    }
}
