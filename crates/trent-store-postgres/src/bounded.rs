//! [`PostgresStore`]: every call on the database answers within [`CALL_TIMEOUT`], even when
//! the server is frozen (its processes stopped, a network that drops packets silently), where
//! the server's own time limits never fire and a call holding a connection would wait for ever.
//!
//! - Each call runs in a task of its own; its caller waits at most [`CALL_TIMEOUT`] and is then
//!   answered [`StoreError::Unavailable`] (the client's retryable `DependencyTimeoutException`).
//!   The task is not cancelled: dropping a call mid-flight could leave its write committed with
//!   nobody told (a `COMMIT` already sent is carried out when the server wakes up). It finishes
//!   or fails by itself, and a write that finishes after its caller was answered sets a flag
//!   ([`Store::take_late_outcomes`]): the node's change feed skips the node's own changes, so
//!   it reloads every cache instead, and the write, if it committed, is seen there too.
//! - After a call ran out of time, every call fails at once until a probe (a background task
//!   asking `SELECT 1` until the server answers) clears the stall, so calls that queue on one
//!   another (the domain's write lock) do not wait [`CALL_TIMEOUT`] each.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use trent_core::model::{
    AccessKeyRecord, AccountRecord, AliasRecord, Change, CustomKeyStoreRecord, GrantRow,
    IamDocument, ImportParams, KeyRecord, RotationRecord, SessionRecord, StoredMaterial,
};
use trent_core::store::{IamWrite, KeysWrite, Page, Store, StoreError, StoreResult};
use trent_crypto::MaterialId;

use crate::Db;

/// How long a caller waits for one store call before it is answered `Unavailable`: above the
/// server's own statement and lock timeouts and the pool's wait (5 s each), so a server that
/// answers at all answers first.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(6);

/// The PostgreSQL store (see the crate's documentation), its calls bounded in time.
pub struct PostgresStore {
    db: Arc<Db>,
    guard: Arc<Guard>,
}

struct Guard {
    /// A call ran out of time and the probe has not seen the server answer since.
    stalled: AtomicBool,
    /// A write finished after its caller was answered (cleared by `take_late_outcomes`).
    late: AtomicBool,
}

/// How long the probe waits between questions the server failed (rather than ignored).
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Asks the server until it answers, then clears the stall. A question it ignores is not
/// dropped (the server may be frozen: the answer comes when it resumes).
async fn probe(db: Arc<Db>, guard: Arc<Guard>) {
    while let Err(StoreError::Unavailable(_)) = db.ping().await {
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    guard.stalled.store(false, Ordering::SeqCst);
    tracing::warn!("PostgreSQL answers again");
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`, or the key=value form), migrates the
    /// schema (refusing a newer one) and returns the store.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let db = Db::connect(url).await?;
        Ok(Self {
            db: Arc::new(db),
            guard: Arc::new(Guard {
                stalled: AtomicBool::new(false),
                late: AtomicBool::new(false),
            }),
        })
    }

    /// Runs `work` (a call that changes nothing: a late answer is simply dropped) within
    /// [`CALL_TIMEOUT`].
    async fn read<T, F>(&self, work: impl FnOnce(Arc<Db>) -> F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Future<Output = StoreResult<T>> + Send + 'static,
    {
        self.bounded(false, work(self.db.clone())).await
    }

    /// Runs `work` (a write) within [`CALL_TIMEOUT`]; if it finishes later, says so.
    async fn write<T, F>(&self, work: impl FnOnce(Arc<Db>) -> F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Future<Output = StoreResult<T>> + Send + 'static,
    {
        self.bounded(true, work(self.db.clone())).await
    }

    async fn bounded<T, F>(&self, writes: bool, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Future<Output = StoreResult<T>> + Send + 'static,
    {
        if self.guard.stalled.load(Ordering::SeqCst) {
            return Err(not_answering());
        }
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let guard = self.guard.clone();
        tokio::spawn(async move {
            let result = work.await;
            // The caller stopped waiting: nobody learns this outcome but the feed.
            if tx.send(result).is_err() && writes {
                guard.late.store(true, Ordering::SeqCst);
            }
        });
        match tokio::time::timeout(CALL_TIMEOUT, &mut rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Backend("a store call's task failed".into())),
            Err(_) => {
                // Closed first, so the task either sent before (its answer is used) or learns
                // it is late: never both, never neither.
                rx.close();
                if let Ok(result) = rx.try_recv() {
                    return result;
                }
                if !self.guard.stalled.swap(true, Ordering::SeqCst) {
                    tracing::warn!("PostgreSQL did not answer in time; probing it");
                    tokio::spawn(probe(self.db.clone(), self.guard.clone()));
                }
                Err(StoreError::Unavailable(format!(
                    "PostgreSQL did not answer within {CALL_TIMEOUT:?}"
                )))
            }
        }
    }
}

fn not_answering() -> StoreError {
    StoreError::Unavailable("PostgreSQL is not answering (probing it)".into())
}

fn owned_page(page: Page<'_>) -> (Option<String>, usize) {
    (page.after.map(str::to_string), page.limit)
}

fn page(after: &Option<String>, limit: usize) -> Page<'_> {
    Page {
        after: after.as_deref(),
        limit,
    }
}

/// Every method hands its arguments (owned) to [`Db`]'s through `read` (a call whose late
/// outcome no cache depends on) or `write`; a new `Store` method needs its line here.
#[async_trait]
impl Store for PostgresStore {
    async fn accounts(&self) -> StoreResult<Vec<AccountRecord>> {
        self.read(|db| async move { db.accounts().await }).await
    }

    async fn put_account(&self, account: &AccountRecord) -> StoreResult<()> {
        let account = account.clone();
        self.write(|db| async move { db.put_account(&account).await })
            .await
    }

    async fn access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>> {
        self.read(|db| async move { db.access_keys().await }).await
    }

    async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let id = access_key_id.to_string();
        self.read(|db| async move { db.access_key(&id).await })
            .await
    }

    async fn put_access_key(&self, key: &AccessKeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.write(|db| async move { db.put_access_key(&key).await })
            .await
    }

    async fn insert_key(&self, key: &KeyRecord, material: &StoredMaterial) -> StoreResult<()> {
        let (key, material) = (key.clone(), material.clone());
        self.write(|db| async move { db.insert_key(&key, &material).await })
            .await
    }

    async fn key(&self, key_id: &str) -> StoreResult<Option<(KeyRecord, Vec<StoredMaterial>)>> {
        let id = key_id.to_string();
        self.read(|db| async move { db.key(&id).await }).await
    }

    async fn update_key(&self, key: &KeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.write(|db| async move { db.update_key(&key).await })
            .await
    }

    async fn update_key_if(&self, expected: &KeyRecord, key: &KeyRecord) -> StoreResult<bool> {
        let (expected, key) = (expected.clone(), key.clone());
        self.write(|db| async move { db.update_key_if(&expected, &key).await })
            .await
    }

    async fn list_keys(
        &self,
        account: &str,
        region: &str,
        page_: Page<'_>,
    ) -> StoreResult<Vec<String>> {
        let (account, region, (after, limit)) =
            (account.to_string(), region.to_string(), owned_page(page_));
        self.read(|db| async move { db.list_keys(&account, &region, page(&after, limit)).await })
            .await
    }

    async fn insert_alias(&self, alias: &AliasRecord) -> StoreResult<()> {
        let alias = alias.clone();
        self.write(|db| async move { db.insert_alias(&alias).await })
            .await
    }

    async fn alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> StoreResult<Option<AliasRecord>> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.read(|db| async move { db.alias(&account, &region, &name).await })
            .await
    }

    async fn update_alias(&self, alias: &AliasRecord) -> StoreResult<()> {
        let alias = alias.clone();
        self.write(|db| async move { db.update_alias(&alias).await })
            .await
    }

    async fn delete_alias(&self, account: &str, region: &str, name: &str) -> StoreResult<()> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.write(|db| async move { db.delete_alias(&account, &region, &name).await })
            .await
    }

    async fn list_aliases(
        &self,
        account: &str,
        region: &str,
        key_id: Option<&str>,
        page_: Page<'_>,
    ) -> StoreResult<Vec<AliasRecord>> {
        let (account, region, key_id, (after, limit)) = (
            account.to_string(),
            region.to_string(),
            key_id.map(str::to_string),
            owned_page(page_),
        );
        self.read(|db| async move {
            db.list_aliases(&account, &region, key_id.as_deref(), page(&after, limit))
                .await
        })
        .await
    }

    async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<()> {
        let id = access_key_id.to_string();
        self.write(|db| async move { db.delete_access_key(&id).await })
            .await
    }

    async fn iam_documents(&self) -> StoreResult<Vec<IamDocument>> {
        self.read(|db| async move { db.iam_documents().await })
            .await
    }

    async fn put_iam_document(&self, doc: &IamDocument) -> StoreResult<()> {
        let doc = doc.clone();
        self.write(|db| async move { db.put_iam_document(&doc).await })
            .await
    }

    async fn delete_iam_document(&self, account: &str, kind: &str, name: &str) -> StoreResult<()> {
        let (account, kind, name) = (account.to_string(), kind.to_string(), name.to_string());
        self.write(|db| async move { db.delete_iam_document(&account, &kind, &name).await })
            .await
    }

    async fn write_iam_if(&self, writes: &[IamWrite]) -> StoreResult<bool> {
        let writes = writes.to_vec();
        self.write(|db| async move { db.write_iam_if(&writes).await })
            .await
    }

    async fn sessions(&self, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.read(|db| async move { db.sessions(now_ms).await })
            .await
    }

    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let session = session.clone();
        self.write(|db| async move { db.insert_session(&session).await })
            .await
    }

    async fn session(
        &self,
        access_key_id: &str,
        now_ms: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        let id = access_key_id.to_string();
        self.read(|db| async move { db.session(&id, now_ms).await })
            .await
    }

    async fn delete_expired_sessions(&self, now_ms: i64) -> StoreResult<()> {
        self.write(|db| async move { db.delete_expired_sessions(now_ms).await })
            .await
    }

    async fn grants_for_key(&self, key_id: &str) -> StoreResult<Vec<GrantRow>> {
        let id = key_id.to_string();
        self.read(|db| async move { db.grants_for_key(&id).await })
            .await
    }

    async fn insert_grant(&self, grant: &GrantRow) -> StoreResult<()> {
        let grant = grant.clone();
        self.write(|db| async move { db.insert_grant(&grant).await })
            .await
    }

    async fn retire_grant(&self, grant_id: &str, retired_ms: i64) -> StoreResult<()> {
        let id = grant_id.to_string();
        self.write(|db| async move { db.retire_grant(&id, retired_ms).await })
            .await
    }

    async fn update_grant_if(&self, expected: &GrantRow, grant: &GrantRow) -> StoreResult<bool> {
        let (expected, grant) = (expected.clone(), grant.clone());
        self.write(|db| async move { db.update_grant_if(&expected, &grant).await })
            .await
    }

    async fn grants_by_retiring_principal(&self, principal: &str) -> StoreResult<Vec<GrantRow>> {
        let principal = principal.to_string();
        self.read(|db| async move { db.grants_by_retiring_principal(&principal).await })
            .await
    }

    async fn insert_key_without_material(&self, key: &KeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.write(|db| async move { db.insert_key_without_material(&key).await })
            .await
    }

    async fn add_material(
        &self,
        key: &KeyRecord,
        material: &StoredMaterial,
        rotation: Option<&RotationRecord>,
    ) -> StoreResult<()> {
        let (key, material, rotation) = (key.clone(), material.clone(), rotation.cloned());
        self.write(|db| async move { db.add_material(&key, &material, rotation.as_ref()).await })
            .await
    }

    async fn write_keys(&self, write: &KeysWrite<'_>) -> StoreResult<()> {
        let insert = write.insert.cloned();
        let update = write.update.to_vec();
        let materials = write.materials.to_vec();
        let rotations = write.rotations.to_vec();
        self.write(|db| async move {
            db.write_keys(&KeysWrite {
                insert: insert.as_ref(),
                update: &update,
                materials: &materials,
                rotations: &rotations,
            })
            .await
        })
        .await
    }

    async fn rotations(&self, key_id: &str) -> StoreResult<Vec<RotationRecord>> {
        let id = key_id.to_string();
        self.read(|db| async move { db.rotations(&id).await }).await
    }

    async fn delete_materials(&self, key: &KeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.write(|db| async move { db.delete_materials(&key).await })
            .await
    }

    async fn delete_material(&self, key: &KeyRecord, material_id: &MaterialId) -> StoreResult<()> {
        let (key, material_id) = (key.clone(), *material_id);
        self.write(|db| async move { db.delete_material(&key, &material_id).await })
            .await
    }

    async fn custom_key_store_keys(&self, id: &str) -> StoreResult<Vec<String>> {
        let id = id.to_string();
        self.read(|db| async move { db.custom_key_store_keys(&id).await })
            .await
    }

    async fn pending_token_destructions(&self, store_id: &str) -> StoreResult<Vec<String>> {
        let id = store_id.to_string();
        self.read(|db| async move { db.pending_token_destructions(&id).await })
            .await
    }

    async fn add_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
        recorded_ms: i64,
    ) -> StoreResult<()> {
        let (id, label) = (store_id.to_string(), label.to_string());
        self.write(|db| async move {
            db.add_pending_token_destruction(&id, &label, recorded_ms)
                .await
        })
        .await
    }

    async fn remove_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
    ) -> StoreResult<()> {
        let (id, label) = (store_id.to_string(), label.to_string());
        self.write(|db| async move { db.remove_pending_token_destruction(&id, &label).await })
            .await
    }

    async fn regions_in_use(&self, account_id: &str) -> StoreResult<Vec<String>> {
        let account = account_id.to_string();
        self.read(|db| async move { db.regions_in_use(&account).await })
            .await
    }

    async fn delete_key(&self, key_id: &str) -> StoreResult<Vec<AliasRecord>> {
        let id = key_id.to_string();
        self.write(|db| async move { db.delete_key(&id).await })
            .await
    }

    async fn keys_due(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        self.read(|db| async move { db.keys_due(now_ms).await })
            .await
    }

    async fn insert_import_params(&self, params: &ImportParams) -> StoreResult<()> {
        let params = params.clone();
        self.write(|db| async move { db.insert_import_params(&params).await })
            .await
    }

    async fn import_params(&self, token: &str) -> StoreResult<Option<ImportParams>> {
        let token = token.to_string();
        self.read(|db| async move { db.import_params(&token).await })
            .await
    }

    async fn delete_expired_import_params(&self, now_ms: i64) -> StoreResult<u64> {
        self.write(|db| async move { db.delete_expired_import_params(now_ms).await })
            .await
    }

    async fn clock_offset_ms(&self) -> StoreResult<i64> {
        self.read(|db| async move { db.clock_offset_ms().await })
            .await
    }

    async fn set_clock_offset_ms(&self, offset_ms: i64) -> StoreResult<()> {
        self.write(|db| async move { db.set_clock_offset_ms(offset_ms).await })
            .await
    }

    async fn pass_done(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.read(|db| async move { db.pass_done(&name).await })
            .await
    }

    async fn set_pass_done(&self, name: &str, done: bool) -> StoreResult<()> {
        let name = name.to_string();
        self.write(|db| async move { db.set_pass_done(&name, done).await })
            .await
    }

    async fn custom_key_stores(
        &self,
        account_id: &str,
        region: &str,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>> {
        let (account, region) = (account_id.to_string(), region.to_string());
        self.read(|db| async move { db.custom_key_stores(&account, &region).await })
            .await
    }

    async fn custom_key_stores_by_cluster(
        &self,
        cluster_id: &str,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>> {
        let cluster_id = cluster_id.to_string();
        self.read(|db| async move { db.custom_key_stores_by_cluster(&cluster_id).await })
            .await
    }

    async fn insert_custom_key_store(&self, record: &CustomKeyStoreRecord) -> StoreResult<()> {
        let record = record.clone();
        self.write(|db| async move { db.insert_custom_key_store(&record).await })
            .await
    }

    async fn update_custom_key_store(&self, record: &CustomKeyStoreRecord) -> StoreResult<()> {
        let record = record.clone();
        self.write(|db| async move { db.update_custom_key_store(&record).await })
            .await
    }

    async fn delete_custom_key_store(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.write(|db| async move { db.delete_custom_key_store(&id).await })
            .await
    }

    fn shared(&self) -> bool {
        true
    }

    async fn wait_for_changes(&self, at_most: Duration) {
        self.db.wait_for_changes(at_most).await;
    }

    async fn last_change(&self) -> StoreResult<i64> {
        self.read(|db| async move { db.last_change().await }).await
    }

    async fn changes_after(&self, after: i64, limit: usize) -> StoreResult<Vec<Change>> {
        self.read(|db| async move { db.changes_after(after, limit).await })
            .await
    }

    async fn claim_step(&self, key_id: &str, due_ms: i64) -> StoreResult<bool> {
        // A claim caches nothing: one taken late is taken over when its lease runs out.
        let id = key_id.to_string();
        self.read(|db| async move { db.claim_step(&id, due_ms).await })
            .await
    }

    async fn prune_changes(&self, before_ms: i64) -> StoreResult<()> {
        // Pruned late or not, the next round reads `pruned_through`.
        self.read(|db| async move { db.prune_changes(before_ms).await })
            .await
    }

    async fn oldest_change(&self) -> StoreResult<Option<i64>> {
        self.read(|db| async move { db.oldest_change().await })
            .await
    }

    fn take_late_outcomes(&self) -> bool {
        self.guard.late.swap(false, Ordering::SeqCst)
    }
}
