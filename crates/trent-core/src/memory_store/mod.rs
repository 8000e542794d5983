//! [`MemoryStore`]: a [`Store`] kept entirely in memory, for domain tests that should need no
//! sockets, no files and no SQL, and as a second engine the store contract is checked against.
//!
//! It behaves like `trent-store-sqlite`'s `SqliteStore` as far as a caller can observe:
//!
//! - the same errors: a duplicate primary key *or a reference to a missing parent row* (the
//!   SQLite schema's foreign keys: a key's account, an access key's account, an alias's, a
//!   grant's, a material's, a rotation's and an import's key) is [`StoreError::AlreadyExists`],
//!   as SQLite reports both as constraint violations; changing or deleting a missing row is
//!   [`StoreError::NotFound`];
//! - the same order of list results: sorted where SQLite's queries say `ORDER BY`, and where they
//!   do not, the order SQLite's plan yields (insertion order; sessions by expiry, then insertion;
//!   materials by creation time, then material id);
//! - the same paging (`Page::after` is exclusive, `limit` caps the page);
//! - every method is one atomic step: all checks happen before anything changes, under one lock.
//!
//! Nothing is durable: dropping the last handle forgets everything. Share one `Arc<MemoryStore>`
//! between several `Kms` values to model a restart or a second node over the same database.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use trent_crypto::spec::KeyState;

use crate::model::{
    AccessKeyRecord, AccountRecord, AliasRecord, CustomKeyStoreRecord, GrantRow, IamDocument,
    ImportParams, KeyRecord, RotationRecord, SessionRecord, StoredMaterial,
};
use crate::store::{KeysWrite, Page, Store, StoreError, StoreResult};

mod state;

use state::{Seq, State};

/// An in-memory [`Store`]. See the module documentation.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The state. A panic elsewhere cannot leave it half-changed (every method checks before
    /// it writes), so a poisoned lock is safe to take over.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Rows of `rows` in sequence order.
fn in_seq_order<'a, T: Clone + 'a>(rows: impl Iterator<Item = &'a Seq<T>>) -> Vec<T> {
    let mut rows: Vec<&Seq<T>> = rows.collect();
    rows.sort_by_key(|r| r.seq);
    rows.into_iter().map(|r| r.row.clone()).collect()
}

/// Whether `name` comes after the page's exclusive start (`None` is the empty string, as in
/// SQLite's `> ''`).
fn after(page: Page<'_>, name: &str) -> bool {
    name > page.after.unwrap_or("")
}

#[async_trait]
impl Store for MemoryStore {
    async fn accounts(&self) -> StoreResult<Vec<AccountRecord>> {
        Ok(self.state().accounts.values().cloned().collect())
    }

    async fn put_account(&self, account: &AccountRecord) -> StoreResult<()> {
        self.state()
            .accounts
            .entry(account.account_id.clone())
            .or_insert_with(|| account.clone());
        Ok(())
    }

    async fn access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>> {
        Ok(in_seq_order(self.state().access_keys.values()))
    }

    async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        Ok(self
            .state()
            .access_keys
            .get(access_key_id)
            .map(|r| r.row.clone()))
    }

    async fn put_access_key(&self, key: &AccessKeyRecord) -> StoreResult<()> {
        let mut s = self.state();
        if !s.accounts.contains_key(&key.account_id) {
            return Err(StoreError::AlreadyExists);
        }
        if let Some(existing) = s.access_keys.get_mut(&key.access_key_id) {
            // ON CONFLICT DO UPDATE: the row (and its creation time) stays.
            let created_ms = existing.row.created_ms;
            existing.row = AccessKeyRecord {
                created_ms,
                ..key.clone()
            };
            return Ok(());
        }
        let seq = s.seq();
        s.access_keys.insert(
            key.access_key_id.clone(),
            Seq {
                seq,
                row: key.clone(),
            },
        );
        Ok(())
    }

    async fn insert_key(&self, key: &KeyRecord, material: &StoredMaterial) -> StoreResult<()> {
        let mut s = self.state();
        if s.keys.contains_key(&key.key_id) || !s.accounts.contains_key(&key.account_id) {
            return Err(StoreError::AlreadyExists);
        }
        // The material row references its own key id, which must exist once the key is in.
        let material_key_exists =
            material.key_id == key.key_id || s.keys.contains_key(&material.key_id);
        let material_pk = (material.key_id.clone(), material.material_id);
        if !material_key_exists || s.materials.contains_key(&material_pk) {
            return Err(StoreError::AlreadyExists);
        }
        s.insert_key(key)?;
        s.materials.insert(material_pk, material.clone());
        Ok(())
    }

    async fn key(&self, key_id: &str) -> StoreResult<Option<(KeyRecord, Vec<StoredMaterial>)>> {
        let s = self.state();
        let Some(record) = s.keys.get(key_id) else {
            return Ok(None);
        };
        // ORDER BY created_ms over the (key_id, material_id) index: ties stay in material id
        // order (the map's order; byte order of an id is the order of its hex form).
        let mut materials: Vec<StoredMaterial> = s
            .materials
            .iter()
            .filter(|((k, _), _)| k == key_id)
            .map(|(_, m)| m.clone())
            .collect();
        materials.sort_by_key(|m| m.created_ms);
        let mut record = record.clone();
        record.lifecycle.replica_regions = s.replica_regions(&record);
        Ok(Some((record, materials)))
    }

    async fn update_key(&self, key: &KeyRecord) -> StoreResult<()> {
        self.state().update_key(key)
    }

    async fn list_keys(
        &self,
        account: &str,
        region: &str,
        page: Page<'_>,
    ) -> StoreResult<Vec<String>> {
        Ok(self
            .state()
            .keys
            .values()
            .filter(|k| k.account_id == account && k.region == region && after(page, &k.key_id))
            .take(page.limit)
            .map(|k| k.key_id.clone())
            .collect())
    }

    async fn insert_alias(&self, alias: &AliasRecord) -> StoreResult<()> {
        let mut s = self.state();
        let pk = (
            alias.account_id.clone(),
            alias.region.clone(),
            alias.alias_name.clone(),
        );
        if s.aliases.contains_key(&pk) {
            return Err(StoreError::AlreadyExists);
        }
        s.require_key(&alias.target_key_id)?;
        let seq = s.seq();
        s.aliases.insert(
            pk,
            Seq {
                seq,
                row: alias.clone(),
            },
        );
        Ok(())
    }

    async fn alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> StoreResult<Option<AliasRecord>> {
        let pk = (account.to_string(), region.to_string(), name.to_string());
        Ok(self.state().aliases.get(&pk).map(|a| a.row.clone()))
    }

    async fn update_alias(&self, alias: &AliasRecord) -> StoreResult<()> {
        let mut s = self.state();
        let pk = (
            alias.account_id.clone(),
            alias.region.clone(),
            alias.alias_name.clone(),
        );
        if !s.aliases.contains_key(&pk) {
            return Err(StoreError::NotFound);
        }
        s.require_key(&alias.target_key_id)?;
        if let Some(stored) = s.aliases.get_mut(&pk) {
            stored.row.target_key_id.clone_from(&alias.target_key_id);
            stored.row.updated_ms = alias.updated_ms;
        }
        Ok(())
    }

    async fn delete_alias(&self, account: &str, region: &str, name: &str) -> StoreResult<()> {
        let pk = (account.to_string(), region.to_string(), name.to_string());
        match self.state().aliases.remove(&pk) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    async fn list_aliases(
        &self,
        account: &str,
        region: &str,
        key_id: Option<&str>,
        page: Page<'_>,
    ) -> StoreResult<Vec<AliasRecord>> {
        // The map is ordered by (account, region, name), so this is name order.
        Ok(self
            .state()
            .aliases
            .values()
            .map(|a| &a.row)
            .filter(|a| {
                a.account_id == account
                    && a.region == region
                    && key_id.is_none_or(|k| a.target_key_id == k)
                    && after(page, &a.alias_name)
            })
            .take(page.limit)
            .cloned()
            .collect())
    }

    async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<()> {
        match self.state().access_keys.remove(access_key_id) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    async fn iam_documents(&self) -> StoreResult<Vec<IamDocument>> {
        Ok(in_seq_order(self.state().iam.values()))
    }

    async fn put_iam_document(&self, doc: &IamDocument) -> StoreResult<()> {
        let mut s = self.state();
        let pk = (doc.account_id.clone(), doc.kind.clone(), doc.name.clone());
        if let Some(existing) = s.iam.get_mut(&pk) {
            existing.row.body.clone_from(&doc.body);
            return Ok(());
        }
        let seq = s.seq();
        s.iam.insert(
            pk,
            Seq {
                seq,
                row: doc.clone(),
            },
        );
        Ok(())
    }

    async fn delete_iam_document(&self, account: &str, kind: &str, name: &str) -> StoreResult<()> {
        let pk = (account.to_string(), kind.to_string(), name.to_string());
        match self.state().iam.remove(&pk) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    async fn sessions(&self, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        let s = self.state();
        // SQLite answers from the expiry index: by expiry, then rowid.
        let mut live: Vec<&Seq<SessionRecord>> = s
            .sessions
            .values()
            .filter(|r| r.row.expires_ms > now_ms)
            .collect();
        live.sort_by_key(|r| (r.row.expires_ms, r.seq));
        Ok(live.into_iter().map(|r| r.row.clone()).collect())
    }

    async fn session(
        &self,
        access_key_id: &str,
        now_ms: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        Ok(self
            .state()
            .sessions
            .get(access_key_id)
            .filter(|r| r.row.expires_ms > now_ms)
            .map(|r| r.row.clone()))
    }

    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let mut s = self.state();
        if s.sessions.contains_key(&session.access_key_id) {
            return Err(StoreError::AlreadyExists);
        }
        let seq = s.seq();
        s.sessions.insert(
            session.access_key_id.clone(),
            Seq {
                seq,
                row: session.clone(),
            },
        );
        Ok(())
    }

    async fn delete_expired_sessions(&self, now_ms: i64) -> StoreResult<()> {
        self.state()
            .sessions
            .retain(|_, r| r.row.expires_ms > now_ms);
        Ok(())
    }

    async fn grants_for_key(&self, key_id: &str) -> StoreResult<Vec<GrantRow>> {
        Ok(in_seq_order(
            self.state()
                .grants
                .values()
                .filter(|g| g.row.key_id == key_id),
        ))
    }

    async fn insert_grant(&self, grant: &GrantRow) -> StoreResult<()> {
        let mut s = self.state();
        if s.grants.contains_key(&grant.grant_id) {
            return Err(StoreError::AlreadyExists);
        }
        s.require_key(&grant.key_id)?;
        let seq = s.seq();
        s.grants.insert(
            grant.grant_id.clone(),
            Seq {
                seq,
                row: grant.clone(),
            },
        );
        Ok(())
    }

    async fn retire_grant(&self, grant_id: &str, retired_ms: i64) -> StoreResult<()> {
        match self.state().grants.get_mut(grant_id) {
            Some(g) if g.row.retired_ms.is_none() => {
                g.row.retired_ms = Some(retired_ms);
                Ok(())
            }
            _ => Err(StoreError::NotFound),
        }
    }

    async fn grants_by_retiring_principal(&self, principal: &str) -> StoreResult<Vec<GrantRow>> {
        // The map is ordered by grant id, as the query's ORDER BY.
        Ok(self
            .state()
            .grants
            .values()
            .map(|g| &g.row)
            .filter(|g| {
                g.retiring_principal.as_deref() == Some(principal) && g.retired_ms.is_none()
            })
            .cloned()
            .collect())
    }

    async fn update_grant_if(&self, expected: &GrantRow, grant: &GrantRow) -> StoreResult<bool> {
        match self.state().grants.get_mut(&grant.grant_id) {
            Some(g) if g.row.body == expected.body && g.row.retired_ms.is_none() => {
                g.row.body.clone_from(&grant.body);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn insert_key_without_material(&self, key: &KeyRecord) -> StoreResult<()> {
        self.state().insert_key(key)
    }

    async fn add_material(
        &self,
        key: &KeyRecord,
        material: &StoredMaterial,
        rotation: Option<&RotationRecord>,
    ) -> StoreResult<()> {
        let mut s = self.state();
        // Checked in the order SQLite's transaction runs its statements; nothing changes unless
        // all pass.
        s.require_key(&material.key_id)?;
        if let Some(r) = rotation {
            s.require_key(&r.key_id)?;
            if s.rotations.contains_key(&(r.key_id.clone(), r.material_id)) {
                return Err(StoreError::AlreadyExists);
            }
        }
        if !s.keys.contains_key(&key.key_id) {
            return Err(StoreError::NotFound);
        }
        // INSERT OR IGNORE: an existing material id keeps its stored material.
        s.materials
            .entry((material.key_id.clone(), material.material_id))
            .or_insert_with(|| material.clone());
        if let Some(r) = rotation {
            s.rotations
                .insert((r.key_id.clone(), r.material_id), r.clone());
        }
        s.update_key(key)
    }

    async fn write_keys(&self, write: &KeysWrite<'_>) -> StoreResult<()> {
        let mut s = self.state();
        // Checked in the order SQLite's transaction runs its statements; nothing changes unless
        // all pass.
        let inserted = write.insert.map(|k| k.key_id.as_str());
        if let Some(k) = write.insert
            && (s.keys.contains_key(&k.key_id) || !s.accounts.contains_key(&k.account_id))
        {
            return Err(StoreError::AlreadyExists);
        }
        let exists = |s: &State, id: &str| Some(id) == inserted || s.keys.contains_key(id);
        if write.update.iter().any(|k| !exists(&s, &k.key_id)) {
            return Err(StoreError::NotFound);
        }
        if write.materials.iter().any(|m| !exists(&s, &m.key_id))
            || write.rotations.iter().any(|r| {
                !exists(&s, &r.key_id)
                    || s.rotations.contains_key(&(r.key_id.clone(), r.material_id))
            })
        {
            return Err(StoreError::AlreadyExists);
        }
        if let Some(k) = write.insert {
            s.insert_key(k)?;
        }
        for k in write.update {
            s.update_key(k)?;
        }
        for m in write.materials {
            s.materials
                .entry((m.key_id.clone(), m.material_id))
                .or_insert_with(|| m.clone());
        }
        for r in write.rotations {
            s.rotations
                .insert((r.key_id.clone(), r.material_id), r.clone());
        }
        Ok(())
    }

    async fn rotations(&self, key_id: &str) -> StoreResult<Vec<RotationRecord>> {
        let mut out: Vec<RotationRecord> = self
            .state()
            .rotations
            .values()
            .filter(|r| r.key_id == key_id)
            .cloned()
            .collect();
        // ORDER BY rotation_ms, material_id (hex, whose order is the ids' byte order).
        out.sort_by_key(|r| (r.rotation_ms, r.material_id));
        Ok(out)
    }

    async fn delete_materials(&self, key: &KeyRecord) -> StoreResult<()> {
        let mut s = self.state();
        if !s.keys.contains_key(&key.key_id) {
            return Err(StoreError::NotFound);
        }
        s.materials.retain(|(k, _), _| *k != key.key_id);
        s.update_key(key)
    }

    async fn delete_material(
        &self,
        key: &KeyRecord,
        material_id: &trent_crypto::MaterialId,
    ) -> StoreResult<()> {
        let mut s = self.state();
        if !s.keys.contains_key(&key.key_id) {
            return Err(StoreError::NotFound);
        }
        s.materials.remove(&(key.key_id.clone(), *material_id));
        s.update_key(key)
    }

    async fn delete_key(&self, key_id: &str) -> StoreResult<Vec<AliasRecord>> {
        let mut s = self.state();
        if !s.keys.contains_key(key_id) {
            return Err(StoreError::NotFound);
        }
        // A full scan of `aliases` in SQLite: rowid order.
        let removed = in_seq_order(s.aliases.values().filter(|a| a.row.target_key_id == key_id));
        s.aliases.retain(|_, a| a.row.target_key_id != key_id);
        // Grants (tombstones included) go with the key.
        s.grants.retain(|_, g| g.row.key_id != key_id);
        s.import_params.retain(|_, p| p.key_id != key_id);
        s.rotations.retain(|(k, _), _| k != key_id);
        s.materials.retain(|(k, _), _| k != key_id);
        s.keys.remove(key_id);
        Ok(removed)
    }

    async fn keys_due(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        let due = |t: Option<i64>| t.is_some_and(|t| t <= now_ms);
        Ok(self
            .state()
            .keys
            .values()
            .filter(|k| {
                let l = &k.lifecycle;
                due(l.deletion_ms)
                    || due(l.valid_to_ms)
                    || due(l.transition_ms)
                    || (due(l.next_rotation_ms) && k.state == KeyState::Enabled)
            })
            .map(|k| k.key_id.clone())
            .collect())
    }

    async fn insert_import_params(&self, params: &ImportParams) -> StoreResult<()> {
        let mut s = self.state();
        if s.import_params.contains_key(&params.token) {
            return Err(StoreError::AlreadyExists);
        }
        s.require_key(&params.key_id)?;
        s.import_params.insert(params.token.clone(), params.clone());
        Ok(())
    }

    async fn import_params(&self, token: &str) -> StoreResult<Option<ImportParams>> {
        Ok(self.state().import_params.get(token).cloned())
    }

    async fn delete_expired_import_params(&self, now_ms: i64) -> StoreResult<u64> {
        let mut s = self.state();
        let before = s.import_params.len();
        s.import_params.retain(|_, p| p.expires_ms > now_ms);
        let removed = before.saturating_sub(s.import_params.len());
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }

    async fn clock_offset_ms(&self) -> StoreResult<i64> {
        Ok(self.state().clock_offset_ms.unwrap_or(0))
    }

    async fn set_clock_offset_ms(&self, offset_ms: i64) -> StoreResult<()> {
        self.state().clock_offset_ms = Some(offset_ms);
        Ok(())
    }

    async fn pass_done(&self, name: &str) -> StoreResult<bool> {
        Ok(self.state().passes_done.contains(name))
    }

    async fn set_pass_done(&self, name: &str, done: bool) -> StoreResult<()> {
        let mut s = self.state();
        if done {
            s.passes_done.insert(name.to_string());
        } else {
            s.passes_done.remove(name);
        }
        Ok(())
    }

    async fn custom_key_stores(
        &self,
        account_id: &str,
        region: &str,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>> {
        Ok(self
            .state()
            .custom_key_stores
            .values()
            .filter(|r| r.account_id == account_id && r.region == region)
            .cloned()
            .collect())
    }

    async fn custom_key_stores_by_cluster(
        &self,
        cluster_id: &str,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>> {
        Ok(self
            .state()
            .custom_key_stores
            .values()
            .filter(|r| r.cluster_id == cluster_id)
            .cloned()
            .collect())
    }

    async fn regions_in_use(&self, account_id: &str) -> StoreResult<Vec<String>> {
        let s = self.state();
        let regions: std::collections::BTreeSet<String> = s
            .keys
            .values()
            .filter(|k| k.account_id == account_id)
            .map(|k| k.region.clone())
            .chain(
                s.custom_key_stores
                    .values()
                    .filter(|r| r.account_id == account_id)
                    .map(|r| r.region.clone()),
            )
            .collect();
        Ok(regions.into_iter().collect())
    }

    async fn insert_custom_key_store(&self, record: &CustomKeyStoreRecord) -> StoreResult<()> {
        let mut s = self.state();
        if s.custom_key_stores.contains_key(&record.id) || name_taken(&s, record) {
            return Err(StoreError::AlreadyExists);
        }
        s.custom_key_stores
            .insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn update_custom_key_store(&self, record: &CustomKeyStoreRecord) -> StoreResult<()> {
        let mut s = self.state();
        if !s.custom_key_stores.contains_key(&record.id) {
            return Err(StoreError::NotFound);
        }
        if name_taken(&s, record) {
            return Err(StoreError::AlreadyExists);
        }
        s.custom_key_stores
            .insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn delete_custom_key_store(&self, id: &str) -> StoreResult<()> {
        match self.state().custom_key_stores.remove(id) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        }
    }

    async fn custom_key_store_keys(&self, id: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .state()
            .keys
            .values()
            .filter(|k| k.custody.custom_key_store_id() == Some(id))
            .map(|k| k.key_id.clone())
            .collect())
    }

    async fn pending_token_destructions(&self, store_id: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .state()
            .pending_token_destructions
            .keys()
            .filter(|(s, _)| s == store_id)
            .map(|(_, label)| label.clone())
            .collect())
    }

    async fn add_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
        recorded_ms: i64,
    ) -> StoreResult<()> {
        self.state()
            .pending_token_destructions
            .entry((store_id.to_string(), label.to_string()))
            .or_insert(recorded_ms);
        Ok(())
    }

    async fn remove_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
    ) -> StoreResult<()> {
        self.state()
            .pending_token_destructions
            .remove(&(store_id.to_string(), label.to_string()));
        Ok(())
    }
}

/// The unique (account, Region, name) constraint of custom key stores, as SQL's.
fn name_taken(s: &State, record: &CustomKeyStoreRecord) -> bool {
    s.custom_key_stores.values().any(|r| {
        r.id != record.id
            && r.account_id == record.account_id
            && r.region == record.region
            && r.name == record.name
    })
}
