//! [`SqliteStore`]: Trent's embedded default storage, one SQLite file in the data directory.
//!
//! - WAL journal with `synchronous = FULL`: a commit is on disk before the call returns, so a key
//!   whose CreateKey was acknowledged survives `kill -9` and power loss.
//! - Versioned migrations ([`migrations`]) run at open, inside a transaction each.
//! - One connection behind a mutex, used from Tokio's blocking pool. The hot path never reaches
//!   here (keys are cached in the domain), so a single writer connection is enough.

mod custom_key_stores;
mod lifecycle_rows;
mod migrations;
mod rows;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use trent_core::model::{
    AccessKeyRecord, AccountRecord, AliasRecord, CustomKeyStoreRecord, GrantRow, IamDocument,
    ImportParams, KeyRecord, RotationRecord, SessionRecord, StoredMaterial,
};
use trent_core::store::{KeysWrite, Page, Store, StoreError, StoreResult};

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = Connection::open(path).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("connection mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
    {
        return StoreError::AlreadyExists;
    }
    StoreError::Backend(e.to_string())
}

fn limit(page: Page<'_>) -> i64 {
    i64::try_from(page.limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for SqliteStore {
    async fn accounts(&self) -> StoreResult<Vec<AccountRecord>> {
        self.with(|c| {
            let mut st = c
                .prepare("SELECT account_id, created_ms FROM accounts ORDER BY account_id")
                .map_err(backend)?;
            let rows = st
                .query_map([], |r| {
                    Ok(AccountRecord {
                        account_id: r.get(0)?,
                        created_ms: r.get(1)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn put_account(&self, a: &AccountRecord) -> StoreResult<()> {
        let a = a.clone();
        self.with(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO accounts (account_id, created_ms) VALUES (?1, ?2)",
                params![a.account_id, a.created_ms],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>> {
        self.with(|c| {
            let mut st = c
                .prepare("SELECT access_key_id, account_id, principal_arn, wrapped_secret, active, created_ms, principal_id FROM access_keys")
                .map_err(backend)?;
            let rows = st
                .query_map([], |r| {
                    Ok(AccessKeyRecord {
                        access_key_id: r.get(0)?,
                        account_id: r.get(1)?,
                        principal_arn: r.get(2)?,
                        wrapped_secret: r.get(3)?,
                        active: r.get(4)?,
                        created_ms: r.get(5)?,
                        principal_id: r.get(6)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let id = access_key_id.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT access_key_id, account_id, principal_arn, wrapped_secret, active, created_ms, principal_id
                 FROM access_keys WHERE access_key_id = ?1",
                [id],
                |r| {
                    Ok(AccessKeyRecord {
                        access_key_id: r.get(0)?,
                        account_id: r.get(1)?,
                        principal_arn: r.get(2)?,
                        wrapped_secret: r.get(3)?,
                        active: r.get(4)?,
                        created_ms: r.get(5)?,
                        principal_id: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_access_key(&self, k: &AccessKeyRecord) -> StoreResult<()> {
        let k = k.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO access_keys (access_key_id, account_id, principal_arn, wrapped_secret, active, created_ms, principal_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (access_key_id) DO UPDATE SET account_id = ?2, principal_arn = ?3, wrapped_secret = ?4, active = ?5, principal_id = ?7",
                params![k.access_key_id, k.account_id, k.principal_arn, k.wrapped_secret, k.active, k.created_ms, k.principal_id],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn insert_key(&self, key: &KeyRecord, material: &StoredMaterial) -> StoreResult<()> {
        let key = key.clone();
        let material = material.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            rows::insert_key(&tx, &key)?;
            tx.execute(
                "INSERT INTO key_materials (key_id, material_id, wrapped, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![material.key_id, material.material_id.to_hex(), material.wrapped, material.created_ms],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn key(&self, key_id: &str) -> StoreResult<Option<(KeyRecord, Vec<StoredMaterial>)>> {
        let key_id = key_id.to_string();
        self.with(move |c| {
            let Some(record) = rows::select_key(c, &key_id)? else {
                return Ok(None);
            };
            let materials = rows::select_materials(c, &key_id)?;
            Ok(Some((record, materials)))
        })
        .await
    }

    async fn update_key(&self, key: &KeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.with(move |c| rows::update_key(c, &key)).await
    }

    async fn list_keys(
        &self,
        account: &str,
        region: &str,
        page: Page<'_>,
    ) -> StoreResult<Vec<String>> {
        let (account, region, after, limit) = (
            account.to_string(),
            region.to_string(),
            page.after.unwrap_or("").to_string(),
            limit(page),
        );
        self.with(move |c| {
            let mut st = c
                .prepare("SELECT key_id FROM keys WHERE account_id = ?1 AND region = ?2 AND key_id > ?3 ORDER BY key_id LIMIT ?4")
                .map_err(backend)?;
            let rows = st.query_map(params![account, region, after, limit], |r| r.get(0)).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn insert_alias(&self, a: &AliasRecord) -> StoreResult<()> {
        let a = a.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO aliases (account_id, region, alias_name, target_key_id, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![a.account_id, a.region, a.alias_name, a.target_key_id, a.created_ms, a.updated_ms],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> StoreResult<Option<AliasRecord>> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.with(move |c| {
            c.query_row(
                &format!(
                    "{} WHERE account_id = ?1 AND region = ?2 AND alias_name = ?3",
                    rows::SELECT_ALIAS
                ),
                params![account, region, name],
                rows::alias_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn update_alias(&self, a: &AliasRecord) -> StoreResult<()> {
        let a = a.clone();
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE aliases SET target_key_id = ?4, updated_ms = ?5 WHERE account_id = ?1 AND region = ?2 AND alias_name = ?3",
                    params![a.account_id, a.region, a.alias_name, a.target_key_id, a.updated_ms],
                )
                .map_err(backend)?;
            if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
        })
        .await
    }

    async fn delete_alias(&self, account: &str, region: &str, name: &str) -> StoreResult<()> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.with(move |c| {
            let n = c
                .execute(
                    "DELETE FROM aliases WHERE account_id = ?1 AND region = ?2 AND alias_name = ?3",
                    params![account, region, name],
                )
                .map_err(backend)?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn list_aliases(
        &self,
        account: &str,
        region: &str,
        key_id: Option<&str>,
        page: Page<'_>,
    ) -> StoreResult<Vec<AliasRecord>> {
        let (account, region, key_id, after, limit) = (
            account.to_string(),
            region.to_string(),
            key_id.map(str::to_string),
            page.after.unwrap_or("").to_string(),
            limit(page),
        );
        self.with(move |c| {
            let mut st = c
                .prepare(&format!(
                    "{} WHERE account_id = ?1 AND region = ?2 AND (?3 IS NULL OR target_key_id = ?3) AND alias_name > ?4 ORDER BY alias_name LIMIT ?5",
                    rows::SELECT_ALIAS
                ))
                .map_err(backend)?;
            let rows = st.query_map(params![account, region, key_id, after, limit], rows::alias_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn insert_key_without_material(&self, key: &KeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.with(move |c| {
            let tx = c.transaction().map_err(backend)?;
            rows::insert_key(&tx, &key)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn add_material(
        &self,
        key: &KeyRecord,
        material: &StoredMaterial,
        rotation: Option<&RotationRecord>,
    ) -> StoreResult<()> {
        let (key, material, rotation) = (key.clone(), material.clone(), rotation.cloned());
        self.with(move |c| lifecycle_rows::add_material(c, &key, &material, rotation.as_ref()))
            .await
    }

    async fn write_keys(&self, write: &KeysWrite<'_>) -> StoreResult<()> {
        let insert = write.insert.cloned();
        let update = write.update.to_vec();
        let materials = write.materials.to_vec();
        let rotations = write.rotations.to_vec();
        self.with(move |c| {
            lifecycle_rows::write_keys(
                c,
                &KeysWrite {
                    insert: insert.as_ref(),
                    update: &update,
                    materials: &materials,
                    rotations: &rotations,
                },
            )
        })
        .await
    }

    async fn rotations(&self, key_id: &str) -> StoreResult<Vec<RotationRecord>> {
        let key_id = key_id.to_string();
        self.with(move |c| lifecycle_rows::rotations(c, &key_id))
            .await
    }

    async fn delete_materials(&self, key: &KeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.with(move |c| lifecycle_rows::delete_materials(c, &key))
            .await
    }

    async fn delete_material(
        &self,
        key: &KeyRecord,
        material_id: &trent_crypto::MaterialId,
    ) -> StoreResult<()> {
        let (key, material_id) = (key.clone(), *material_id);
        self.with(move |c| lifecycle_rows::delete_material(c, &key, &material_id))
            .await
    }

    async fn delete_key(&self, key_id: &str) -> StoreResult<Vec<AliasRecord>> {
        let key_id = key_id.to_string();
        self.with(move |c| lifecycle_rows::delete_key(c, &key_id))
            .await
    }

    async fn keys_due(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        self.with(move |c| lifecycle_rows::keys_due(c, now_ms))
            .await
    }

    async fn insert_import_params(&self, params: &ImportParams) -> StoreResult<()> {
        let params = params.clone();
        self.with(move |c| lifecycle_rows::insert_import_params(c, &params))
            .await
    }

    async fn import_params(&self, token: &str) -> StoreResult<Option<ImportParams>> {
        let token = token.to_string();
        self.with(move |c| lifecycle_rows::import_params(c, &token))
            .await
    }

    async fn delete_expired_import_params(&self, now_ms: i64) -> StoreResult<u64> {
        self.with(move |c| lifecycle_rows::delete_expired_import_params(c, now_ms))
            .await
    }

    async fn clock_offset_ms(&self) -> StoreResult<i64> {
        self.with(|c| lifecycle_rows::clock_offset_ms(c)).await
    }

    async fn set_clock_offset_ms(&self, offset_ms: i64) -> StoreResult<()> {
        self.with(move |c| lifecycle_rows::set_clock_offset_ms(c, offset_ms))
            .await
    }

    async fn pass_done(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.with(move |c| lifecycle_rows::pass_done(c, &name))
            .await
    }

    async fn set_pass_done(&self, name: &str, done: bool) -> StoreResult<()> {
        let name = name.to_string();
        self.with(move |c| lifecycle_rows::set_pass_done(c, &name, done))
            .await
    }

    async fn custom_key_stores(
        &self,
        account_id: &str,
        region: &str,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>> {
        let (account_id, region) = (account_id.to_string(), region.to_string());
        self.with(move |c| custom_key_stores::list(c, &account_id, &region))
            .await
    }

    async fn regions_in_use(&self, account_id: &str) -> StoreResult<Vec<String>> {
        let account_id = account_id.to_string();
        self.with(move |c| {
            let mut st = c
                .prepare(
                    "SELECT region FROM keys WHERE account_id = ?1 \
                     UNION SELECT region FROM custom_key_stores WHERE account_id = ?1 \
                     ORDER BY region",
                )
                .map_err(backend)?;
            let rows = st.query_map([account_id], |r| r.get(0)).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn custom_key_stores_by_cluster(
        &self,
        cluster_id: &str,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>> {
        let cluster_id = cluster_id.to_string();
        self.with(move |c| custom_key_stores::by_cluster(c, &cluster_id))
            .await
    }

    async fn insert_custom_key_store(&self, record: &CustomKeyStoreRecord) -> StoreResult<()> {
        let record = record.clone();
        self.with(move |c| custom_key_stores::insert(c, &record))
            .await
    }

    async fn update_custom_key_store(&self, record: &CustomKeyStoreRecord) -> StoreResult<()> {
        let record = record.clone();
        self.with(move |c| custom_key_stores::update(c, &record))
            .await
    }

    async fn delete_custom_key_store(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        self.with(move |c| custom_key_stores::delete(c, &id)).await
    }

    async fn custom_key_store_keys(&self, id: &str) -> StoreResult<Vec<String>> {
        let id = id.to_string();
        self.with(move |c| custom_key_stores::keys(c, &id)).await
    }

    async fn pending_token_destructions(&self, store_id: &str) -> StoreResult<Vec<String>> {
        let id = store_id.to_string();
        self.with(move |c| custom_key_stores::pending_destructions(c, &id))
            .await
    }

    async fn add_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
        recorded_ms: i64,
    ) -> StoreResult<()> {
        let (id, label) = (store_id.to_string(), label.to_string());
        self.with(move |c| custom_key_stores::add_pending_destruction(c, &id, &label, recorded_ms))
            .await
    }

    async fn remove_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
    ) -> StoreResult<()> {
        let (id, label) = (store_id.to_string(), label.to_string());
        self.with(move |c| custom_key_stores::remove_pending_destruction(c, &id, &label))
            .await
    }

    async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<()> {
        let id = access_key_id.to_string();
        self.with(move |c| {
            let n = c
                .execute("DELETE FROM access_keys WHERE access_key_id = ?1", [id])
                .map_err(backend)?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn iam_documents(&self) -> StoreResult<Vec<IamDocument>> {
        self.with(|c| {
            let mut st = c
                .prepare("SELECT account_id, kind, name, body FROM iam_entities")
                .map_err(backend)?;
            let rows = st
                .query_map([], |r| {
                    Ok(IamDocument {
                        account_id: r.get(0)?,
                        kind: r.get(1)?,
                        name: r.get(2)?,
                        body: r.get(3)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn put_iam_document(&self, doc: &IamDocument) -> StoreResult<()> {
        let d = doc.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO iam_entities (account_id, kind, name, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account_id, kind, name) DO UPDATE SET body = ?4",
                params![d.account_id, d.kind, d.name, d.body],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_iam_document(&self, account: &str, kind: &str, name: &str) -> StoreResult<()> {
        let (a, k, n) = (account.to_string(), kind.to_string(), name.to_string());
        self.with(move |c| {
            let n = c
                .execute(
                    "DELETE FROM iam_entities WHERE account_id = ?1 AND kind = ?2 AND name = ?3",
                    params![a, k, n],
                )
                .map_err(backend)?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn session(
        &self,
        access_key_id: &str,
        now_ms: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        let id = access_key_id.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT access_key_id, account_id, identity, wrapped_secret, token_sha256, expires_ms, created_ms
                 FROM sessions WHERE access_key_id = ?1 AND expires_ms > ?2",
                params![id, now_ms],
                |r| {
                    Ok(SessionRecord {
                        access_key_id: r.get(0)?,
                        account_id: r.get(1)?,
                        identity: r.get(2)?,
                        wrapped_secret: r.get(3)?,
                        token_sha256: r.get(4)?,
                        expires_ms: r.get(5)?,
                        created_ms: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn sessions(&self, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.with(move |c| {
            let mut st = c
                .prepare(
                    "SELECT access_key_id, account_id, identity, wrapped_secret, token_sha256, expires_ms, created_ms
                     FROM sessions WHERE expires_ms > ?1",
                )
                .map_err(backend)?;
            let rows = st
                .query_map([now_ms], |r| {
                    Ok(SessionRecord {
                        access_key_id: r.get(0)?,
                        account_id: r.get(1)?,
                        identity: r.get(2)?,
                        wrapped_secret: r.get(3)?,
                        token_sha256: r.get(4)?,
                        expires_ms: r.get(5)?,
                        created_ms: r.get(6)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        let s = s.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO sessions (access_key_id, account_id, identity, wrapped_secret, token_sha256, expires_ms, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![s.access_key_id, s.account_id, s.identity, s.wrapped_secret, s.token_sha256, s.expires_ms, s.created_ms],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_sessions(&self, now_ms: i64) -> StoreResult<()> {
        self.with(move |c| {
            c.execute("DELETE FROM sessions WHERE expires_ms <= ?1", [now_ms])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn grants_for_key(&self, key_id: &str) -> StoreResult<Vec<GrantRow>> {
        let key_id = key_id.to_string();
        self.with(move |c| {
            let mut st = c
                .prepare("SELECT grant_id, key_id, retiring_principal, body, retired_ms FROM grants WHERE key_id = ?1")
                .map_err(backend)?;
            let rows = st.query_map([key_id], grant_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn insert_grant(&self, g: &GrantRow) -> StoreResult<()> {
        let g = g.clone();
        self.with(move |c| {
            c.execute(
                "INSERT INTO grants (grant_id, key_id, retiring_principal, body, retired_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![g.grant_id, g.key_id, g.retiring_principal, g.body, g.retired_ms],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn retire_grant(&self, grant_id: &str, retired_ms: i64) -> StoreResult<()> {
        let id = grant_id.to_string();
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE grants SET retired_ms = ?2 WHERE grant_id = ?1 AND retired_ms IS NULL",
                    params![id, retired_ms],
                )
                .map_err(backend)?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn grants_by_retiring_principal(&self, principal: &str) -> StoreResult<Vec<GrantRow>> {
        let p = principal.to_string();
        self.with(move |c| {
            let mut st = c
                .prepare(
                    "SELECT grant_id, key_id, retiring_principal, body, retired_ms FROM grants
                     WHERE retiring_principal = ?1 AND retired_ms IS NULL ORDER BY grant_id",
                )
                .map_err(backend)?;
            let rows = st.query_map([p], grant_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn update_grant_if(&self, expected: &GrantRow, grant: &GrantRow) -> StoreResult<bool> {
        let (id, expected_body, body) = (
            grant.grant_id.clone(),
            expected.body.clone(),
            grant.body.clone(),
        );
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE grants SET body = ?3 WHERE grant_id = ?1 AND body = ?2 AND retired_ms IS NULL",
                    params![id, expected_body, body],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }
}

fn grant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        grant_id: r.get(0)?,
        key_id: r.get(1)?,
        retiring_principal: r.get(2)?,
        body: r.get(3)?,
        retired_ms: r.get(4)?,
    })
}
