//! The tables of a [`MemoryStore`](super::MemoryStore): plain ordered maps, with the
//! rowid-like sequence numbers that reproduce SQLite's row order.

use std::collections::BTreeMap;

use trent_crypto::MaterialId;

use crate::model::{
    AccessKeyRecord, AccountRecord, AliasRecord, CustomKeyStoreRecord, GrantRow, IamDocument,
    ImportParams, KeyRecord, RotationRecord, SessionRecord, StoredMaterial,
};
use crate::store::{StoreError, StoreResult};

/// A row with the sequence number SQLite's `rowid` would give it: where a query has no
/// `ORDER BY`, SQLite returns rows in rowid order, which for live rows is insertion order.
#[derive(Clone)]
pub(super) struct Seq<T> {
    pub(super) seq: u64,
    pub(super) row: T,
}

/// An alias's primary key: (account, region, name).
pub(super) type AliasKey = (String, String, String);
/// An IAM document's primary key: (account, kind, name).
pub(super) type IamKey = (String, String, String);

#[derive(Default)]
pub(super) struct State {
    /// The next rowid-like sequence number (shared by all tables; only its order matters).
    pub(super) next_seq: u64,
    pub(super) accounts: BTreeMap<String, AccountRecord>,
    pub(super) access_keys: BTreeMap<String, Seq<AccessKeyRecord>>,
    pub(super) keys: BTreeMap<String, KeyRecord>,
    /// Materials by (key id, material id).
    pub(super) materials: BTreeMap<(String, MaterialId), StoredMaterial>,
    pub(super) aliases: BTreeMap<AliasKey, Seq<AliasRecord>>,
    pub(super) iam: BTreeMap<IamKey, Seq<IamDocument>>,
    pub(super) sessions: BTreeMap<String, Seq<SessionRecord>>,
    pub(super) grants: BTreeMap<String, Seq<GrantRow>>,
    /// Rotations by (key id, material id).
    pub(super) rotations: BTreeMap<(String, MaterialId), RotationRecord>,
    pub(super) import_params: BTreeMap<String, ImportParams>,
    pub(super) clock_offset_ms: Option<i64>,
    /// The one-time start-up passes finished (`Store::pass_done`).
    pub(super) passes_done: std::collections::BTreeSet<String>,
    /// Custom key stores by id.
    pub(super) custom_key_stores: BTreeMap<String, CustomKeyStoreRecord>,
    /// Token keys to destroy at a store's next connect, by (store id, label).
    pub(super) pending_token_destructions: BTreeMap<(String, String), i64>,
}

impl State {
    pub(super) fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        s
    }

    /// The foreign-key check SQLite makes on rows that reference a key.
    pub(super) fn require_key(&self, key_id: &str) -> StoreResult<()> {
        if self.keys.contains_key(key_id) {
            Ok(())
        } else {
            Err(StoreError::AlreadyExists)
        }
    }

    /// `rows::update_key`: replaces the mutable columns of an existing key. The key's identity
    /// and creation-time facts (account, region, created, spec, usage, origin, multi-Region) are
    /// not columns an update writes, so they stay as inserted.
    pub(super) fn update_key(&mut self, key: &KeyRecord) -> StoreResult<()> {
        let stored = self.keys.get_mut(&key.key_id).ok_or(StoreError::NotFound)?;
        stored.description.clone_from(&key.description);
        stored.state = key.state;
        stored.policy.clone_from(&key.policy);
        stored.policy_principals.clone_from(&key.policy_principals);
        stored.tags.clone_from(&key.tags);
        stored.current_material = key.current_material;
        stored.lifecycle = key.lifecycle.clone();
        Ok(())
    }

    /// The replica Regions of `key`'s multi-Region family, as the SQL stores derive them:
    /// the Regions of the related keys (same public id) other than the primary's, sorted.
    pub(super) fn replica_regions(&self, key: &KeyRecord) -> Vec<String> {
        if !key.multi_region {
            return Vec::new();
        }
        let family = key.public_id();
        let mut regions: Vec<String> = self
            .keys
            .values()
            .filter(|k| k.multi_region && k.public_id() == family)
            .filter(|k| Some(&k.region) != key.lifecycle.primary_region.as_ref())
            .map(|k| k.region.clone())
            .collect();
        regions.sort();
        regions
    }

    /// Inserts a new key row (after the account foreign-key check).
    pub(super) fn insert_key(&mut self, key: &KeyRecord) -> StoreResult<()> {
        if self.keys.contains_key(&key.key_id) || !self.accounts.contains_key(&key.account_id) {
            return Err(StoreError::AlreadyExists);
        }
        self.keys.insert(key.key_id.clone(), key.clone());
        Ok(())
    }
}
