//! The storage trait: what the domain needs persisted, shaped like the domain (not like SQL).
//!
//! Backends (`trent-store-sqlite`, `trent-store-postgres`, and `MemoryStore` for tests) implement
//! it; one conformance suite, `store_contract`, covers every method, racing writers included, and
//! runs against each. Every method is one atomic transaction. Methods that create or change key
//! material must be durable (fsynced) before they return.

use async_trait::async_trait;

use crate::model::GrantRow;
use crate::model::{
    AccessKeyRecord, AccountRecord, AliasRecord, Change, CustomKeyStoreRecord, IamDocument,
    ImportParams, KeyRecord, RotationRecord, SessionRecord, StoredMaterial,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// A uniqueness constraint was violated (e.g. the alias name is taken).
    #[error("already exists")]
    AlreadyExists,
    /// The record to change does not exist.
    #[error("not found")]
    NotFound,
    /// The backend failed; the message is for logs.
    #[error("storage backend failure: {0}")]
    Backend(String),
    /// The database could not be reached, or did not answer within its time limit (a shared
    /// database's server down or overloaded): the same call may succeed later. The message is
    /// for logs.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A store failure reaching an operation is internal: its detail is for logs, not callers. An
/// unreachable database is AWS's retryable `DependencyTimeoutException`.
impl From<StoreError> for crate::error::KmsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => crate::error::KmsError::DependencyTimeout(e.to_string()),
            e => crate::error::KmsError::Internal(e.to_string()),
        }
    }
}

/// Sort order and bound for listing: return up to `limit` items strictly after `after`.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub after: Option<&'a str>,
    pub limit: usize,
}

/// One IAM entity write of [`Store::write_iam_if`]: its new document (`body`; `None` deletes
/// it) and the document the change was computed from (`expected`; `None`: it did not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamWrite {
    pub account_id: String,
    pub kind: String,
    pub name: String,
    pub expected: Option<String>,
    pub body: Option<String>,
}

/// One change to a multi-Region key family, written in one transaction
/// ([`Store::write_keys`]): a new related key (ReplicateKey), new metadata for existing keys,
/// material versions and rotation records added to them (a rotation of the family, the
/// material history a new replica gets).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeysWrite<'a> {
    /// A key to create (with no material of its own; `materials` may carry its material).
    pub insert: Option<&'a KeyRecord>,
    /// Existing keys whose metadata is replaced (as [`Store::update_key`]).
    pub update: &'a [KeyRecord],
    /// Material versions to add; one a key already has is kept as stored.
    pub materials: &'a [StoredMaterial],
    /// Rotation records to add.
    pub rotations: &'a [RotationRecord],
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn accounts(&self) -> StoreResult<Vec<AccountRecord>>;
    /// Insert or leave unchanged.
    async fn put_account(&self, account: &AccountRecord) -> StoreResult<()>;
    async fn access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>>;
    /// One access key by id, active or not (the credential registry's read-through on a miss:
    /// a key made by another node).
    async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>>;
    /// Insert or replace.
    async fn put_access_key(&self, key: &AccessKeyRecord) -> StoreResult<()>;

    /// Creates a key with its first material (durably).
    async fn insert_key(&self, key: &KeyRecord, material: &StoredMaterial) -> StoreResult<()>;
    async fn key(&self, key_id: &str) -> StoreResult<Option<(KeyRecord, Vec<StoredMaterial>)>>;
    /// Replaces the metadata of an existing key.
    async fn update_key(&self, key: &KeyRecord) -> StoreResult<()>;
    /// Replaces the metadata of `key` as [`Store::update_key`] does, if the stored record is
    /// still `expected` (what the change was computed from, as [`Store::key`] read it):
    /// `Ok(false)` if another writer changed it since (read it again and retry); `NotFound`
    /// if there is no such key. A store only one process writes, its writes serialized by the
    /// domain, compares nothing.
    async fn update_key_if(&self, expected: &KeyRecord, key: &KeyRecord) -> StoreResult<bool> {
        let _ = expected;
        self.update_key(key).await.map(|()| true)
    }
    /// Key ids of `account`/`region` in id order.
    async fn list_keys(
        &self,
        account: &str,
        region: &str,
        page: Page<'_>,
    ) -> StoreResult<Vec<String>>;

    async fn insert_alias(&self, alias: &AliasRecord) -> StoreResult<()>;
    async fn alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> StoreResult<Option<AliasRecord>>;
    async fn update_alias(&self, alias: &AliasRecord) -> StoreResult<()>;
    async fn delete_alias(&self, account: &str, region: &str, name: &str) -> StoreResult<()>;
    /// Aliases of `account`/`region` in name order, optionally only those pointing at `key_id`.
    async fn list_aliases(
        &self,
        account: &str,
        region: &str,
        key_id: Option<&str>,
        page: Page<'_>,
    ) -> StoreResult<Vec<AliasRecord>>;

    /// Deletes an access key (IAM DeleteAccessKey).
    async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<()>;

    /// Every IAM entity document (loaded into memory at start).
    async fn iam_documents(&self) -> StoreResult<Vec<IamDocument>>;
    /// Insert or replace one IAM entity document.
    async fn put_iam_document(&self, doc: &IamDocument) -> StoreResult<()>;
    async fn delete_iam_document(&self, account: &str, kind: &str, name: &str) -> StoreResult<()>;
    /// Applies `writes` in one transaction if every entity they name is still as `expected`
    /// (what this node's snapshot had when it computed them): `Ok(false)`, nothing written, if
    /// another writer changed one since (read the account again and retry). A store only one
    /// process writes, its writes serialized by the domain, compares nothing and writes them
    /// in order as [`Store::put_iam_document`] / [`Store::delete_iam_document`] do.
    async fn write_iam_if(&self, writes: &[IamWrite]) -> StoreResult<bool> {
        for w in writes {
            match &w.body {
                Some(body) => {
                    self.put_iam_document(&IamDocument {
                        account_id: w.account_id.clone(),
                        kind: w.kind.clone(),
                        name: w.name.clone(),
                        body: body.clone(),
                    })
                    .await?
                }
                None => {
                    self.delete_iam_document(&w.account_id, &w.kind, &w.name)
                        .await?
                }
            }
        }
        Ok(true)
    }

    /// Temporary credentials not yet expired at `now_ms`.
    async fn sessions(&self, now_ms: i64) -> StoreResult<Vec<SessionRecord>>;
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// One session by its access key id, if it has not expired at `now_ms` (read-through).
    async fn session(&self, access_key_id: &str, now_ms: i64)
    -> StoreResult<Option<SessionRecord>>;
    /// Removes sessions that expired before `now_ms`.
    async fn delete_expired_sessions(&self, now_ms: i64) -> StoreResult<()>;

    /// Every grant of a key, retired ones included.
    async fn grants_for_key(&self, key_id: &str) -> StoreResult<Vec<GrantRow>>;
    async fn insert_grant(&self, grant: &GrantRow) -> StoreResult<()>;
    /// Marks a grant retired at `retired_ms`; `NotFound` if it is unknown or already retired.
    async fn retire_grant(&self, grant_id: &str, retired_ms: i64) -> StoreResult<()>;
    /// Active grants whose retiring principal is `principal`.
    async fn grants_by_retiring_principal(&self, principal: &str) -> StoreResult<Vec<GrantRow>>;
    /// Replaces an active grant's stored body with `grant.body` if the row is still `expected`
    /// (its body, and not retired): `Ok(false)`, nothing written, otherwise (another node
    /// changed or retired it, or it is gone). Only the body changes; the other columns are
    /// the grant's fixed ones (the start-up binding of grants, `authz/bindings.rs`).
    async fn update_grant_if(&self, expected: &GrantRow, grant: &GrantRow) -> StoreResult<bool>;

    // Key lifecycle (rotation, deletion, imported material). See `lifecycle.rs`.

    /// Creates a key that has no material yet (Origin EXTERNAL, before its first import).
    async fn insert_key_without_material(&self, key: &KeyRecord) -> StoreResult<()>;
    /// Adds a material version and replaces the key's metadata in one transaction (rotation,
    /// import). Adding a material id the key already has keeps the stored material. `rotation`
    /// is recorded in the rotation history when given.
    async fn add_material(
        &self,
        key: &KeyRecord,
        material: &StoredMaterial,
        rotation: Option<&RotationRecord>,
    ) -> StoreResult<()>;
    /// Writes `write` in one transaction: the insert first, then the updates (`NotFound` if
    /// one names no key, and nothing is written), then the materials and rotations. A
    /// multi-Region key's record, when read back ([`Store::key`]), lists its family's replica
    /// Regions: every related key (same public id) whose Region is not its primary Region.
    async fn write_keys(&self, write: &KeysWrite<'_>) -> StoreResult<()>;
    /// Rotations of `key_id`, oldest first.
    async fn rotations(&self, key_id: &str) -> StoreResult<Vec<RotationRecord>>;
    /// Deletes every material version of the key and replaces its metadata, in one transaction
    /// (imported material deleted or expired).
    async fn delete_materials(&self, key: &KeyRecord) -> StoreResult<()>;
    /// Deletes one material version of the key (absent: nothing to delete) and replaces its
    /// metadata, in one transaction (one imported material of a symmetric key deleted or
    /// expired).
    async fn delete_material(
        &self,
        key: &KeyRecord,
        material_id: &trent_crypto::MaterialId,
    ) -> StoreResult<()>;
    /// Deletes the key with its materials, rotation history, import parameters, aliases and
    /// grants (tombstones too) in one transaction; returns the aliases removed.
    async fn delete_key(&self, key_id: &str) -> StoreResult<Vec<AliasRecord>>;
    /// Ids of keys with lifecycle work due at `now_ms`: deletion date passed, imported material
    /// expired, or (Enabled keys only) automatic rotation due.
    async fn keys_due(&self, now_ms: i64) -> StoreResult<Vec<String>>;
    async fn insert_import_params(&self, params: &ImportParams) -> StoreResult<()>;
    async fn import_params(&self, token: &str) -> StoreResult<Option<ImportParams>>;
    /// Forgets import parameters that expired before `now_ms`; returns how many.
    async fn delete_expired_import_params(&self, now_ms: i64) -> StoreResult<u64>;
    /// The operator-set offset of the service clock (0 unless moved for testing).
    async fn clock_offset_ms(&self) -> StoreResult<i64>;
    async fn set_clock_offset_ms(&self, offset_ms: i64) -> StoreResult<()>;
    /// Whether the one-time start-up pass `name` has finished over this store (a row of
    /// `service_settings`, so `trent migrate` and backups carry it).
    async fn pass_done(&self, name: &str) -> StoreResult<bool>;
    /// Records that start-up pass `name` finished (`done`), or forgets it (`!done`: the pass
    /// runs again at the next start-up). Recording it twice changes nothing.
    async fn set_pass_done(&self, name: &str, done: bool) -> StoreResult<()>;

    // Custom key stores (`custom_key_stores.rs`).

    /// The custom key stores of an account in a Region, by id.
    async fn custom_key_stores(
        &self,
        account_id: &str,
        region: &str,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>>;
    /// The custom key stores of every account and Region whose `cluster_id` is `cluster_id`,
    /// by id (a CloudHSM cluster backs at most one store in the whole service).
    async fn custom_key_stores_by_cluster(
        &self,
        cluster_id: &str,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>>;
    /// Inserts a new store: `AlreadyExists` if its id, or its name in its account and Region,
    /// is taken.
    async fn insert_custom_key_store(&self, record: &CustomKeyStoreRecord) -> StoreResult<()>;
    /// Replaces the store with `record.id`: `NotFound` if absent, `AlreadyExists` if the new
    /// name is another store's.
    async fn update_custom_key_store(&self, record: &CustomKeyStoreRecord) -> StoreResult<()>;
    /// Deletes the store `id`: `NotFound` if absent.
    async fn delete_custom_key_store(&self, id: &str) -> StoreResult<()>;
    /// The ids of the keys held in custom key store `id` (in any state; a deleted key is no
    /// longer a row), in key id order.
    async fn custom_key_store_keys(&self, id: &str) -> StoreResult<Vec<String>>;
    /// The labels of token keys that custom key store `store_id` is to destroy in its token
    /// the next time it is connected (keys deleted while it was not), in label order.
    async fn pending_token_destructions(&self, store_id: &str) -> StoreResult<Vec<String>>;
    /// Records that the token key `label` of store `store_id` is to be destroyed; recording
    /// one already recorded changes nothing.
    async fn add_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
        recorded_ms: i64,
    ) -> StoreResult<()>;
    /// Forgets one pending destruction (done, or moot); absent is not an error.
    async fn remove_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
    ) -> StoreResult<()>;
    /// The Regions in which `account_id` has keys or custom key stores, sorted (what a
    /// service-linked role's deletion must look at, whichever Regions this node served).
    async fn regions_in_use(&self, account_id: &str) -> StoreResult<Vec<String>>;

    // The change feed (`feed.rs`): what other nodes on a shared database wrote. A store only
    // one process uses (SQLite, MemoryStore) has none and keeps these defaults.

    /// Whether other processes may write this store (then every node replays the feed).
    fn shared(&self) -> bool {
        false
    }
    /// Waits until another node may have written (PostgreSQL: a `NOTIFY` from the feed's
    /// trigger) or `at_most` has passed, whichever comes first.
    async fn wait_for_changes(&self, at_most: std::time::Duration) {
        tokio::time::sleep(at_most).await;
    }
    /// The newest change id (0 if none): where a starting node begins replaying.
    async fn last_change(&self) -> StoreResult<i64> {
        Ok(0)
    }
    /// Changes with an id above `after`, in id order, at most `limit`.
    async fn changes_after(&self, after: i64, limit: usize) -> StoreResult<Vec<Change>> {
        let _ = (after, limit);
        Ok(Vec::new())
    }
    /// Claims the lifecycle step of `key_id` due at `due_ms` for this node: `true` for exactly
    /// one of several nodes asking at once, for the holder asking again (its step failed and
    /// is retried), and for another node once the claim's lease of a minute ran out (its holder
    /// died mid-step). A store one process uses always says yes.
    async fn claim_step(&self, key_id: &str, due_ms: i64) -> StoreResult<bool> {
        let _ = (key_id, due_ms);
        Ok(true)
    }
    /// Forgets the changes older than `before_ms` (every node has long replayed them) with
    /// an id below every younger one's, keeping at least the newest change: the oldest kept
    /// change ([`Store::oldest_change`]) then tells a node whether it missed pruned ones.
    async fn prune_changes(&self, before_ms: i64) -> StoreResult<()> {
        let _ = before_ms;
        Ok(())
    }
    /// The id of the oldest change kept (`None` while there is none). Every pruned change has
    /// a smaller id, so a node whose last applied change is below it minus one may have missed
    /// some, and reloads every cache.
    async fn oldest_change(&self) -> StoreResult<Option<i64>> {
        Ok(None)
    }
    /// Whether a call this store stopped waiting for (its caller was answered `Unavailable`:
    /// the database did not answer in time) has finished since the last ask; asking clears it.
    /// Such a write may have committed, and the feed skips a node's own changes: the node
    /// reloads every cache, as after a gap in the feed.
    fn take_late_outcomes(&self) -> bool {
        false
    }
}
