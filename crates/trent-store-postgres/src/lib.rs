//! [`PostgresStore`]: the `Store` trait on PostgreSQL, for several Trent nodes sharing one
//! database (issue 12; the embedded SQLite store stays the default).
//!
//! - A `deadpool-postgres` pool of `tokio-postgres` connections (no TLS yet: run it on a
//!   trusted network or a local socket). There is no process-wide lock: every method is one
//!   statement or one database transaction, so writers on several connections (or several
//!   nodes) are serialized by PostgreSQL's row locks and constraints, never by this process.
//! - Multi-row changes (a key with its first material, a rotation, deleting a key with its
//!   aliases, grants, materials, rotations and import parameters) are one transaction each;
//!   those that change a key lock its row first, so concurrent changes to one key queue
//!   instead of deadlocking.
//! - Constraint violations (unique and foreign keys) are [`StoreError::AlreadyExists`], as
//!   SQLite reports them; everything else is [`StoreError::Backend`].
//! - Versioned migrations ([`migrations`], the same history as SQLite's) run at
//!   [`PostgresStore::connect`]; a newer schema is refused.
//! - [`test_cluster`]: a private PostgreSQL server for tests.
//! - [`audit_trail`]: [`PgAuditTrail`], the shared audit trail of several nodes (the
//!   `trent_audit::shared::SharedTrail` port; its own small pool).
//!
//! - Losing the database: no call waits on it for more than seconds (the pool's wait and
//!   connect timeouts, `statement_timeout`/`lock_timeout`, TCP keepalives and
//!   `TCP_USER_TIMEOUT`); failures to reach it are [`StoreError::Unavailable`] (the client's
//!   retryable `DependencyTimeoutException`). The pool drops closed connections and opens new
//!   ones, and the `LISTEN` connection reconnects every second, so a node recovers by itself.
//! - A frozen server (stopped, not gone: no error ever arrives) cannot hold a caller either:
//!   `bounded.rs` answers each call within [`CALL_TIMEOUT`] and lets the call finish on its
//!   own, telling the change feed when a write finished too late for its caller.

pub mod audit_trail;
mod bounded;
mod migrations;
mod rows;
pub mod test_cluster;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use trent_core::model::{
    AccessKeyRecord, AccountRecord, AliasRecord, Change, GrantRow, IamDocument, ImportParams,
    KeyRecord, RotationRecord, SessionRecord, StoredMaterial,
};
use trent_core::store::{IamWrite, KeysWrite, Page, Store, StoreError, StoreResult};
use trent_crypto::spec::WireEnum;

pub use audit_trail::PgAuditTrail;
pub use bounded::{CALL_TIMEOUT, PostgresStore};
pub use migrations::latest_version as latest_schema_version;

use rows::{
    ACCESS_KEY_COLUMNS, ALIAS_COLUMNS, GRANT_COLUMNS, IMPORT_COLUMNS, KEY_COLUMNS, SESSION_COLUMNS,
    all,
};

/// Connections in the pool at most.
const POOL_SIZE: usize = 8;
/// How long a call waits for a connection (or to open one) before failing.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// The server cancels a statement (or a wait for a row lock) running longer than this, so a
/// request never waits on the database for longer than about `POOL_TIMEOUT` plus this.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection whose sent data the server has not acknowledged for this long (a server or
/// network gone silent, where no error ever arrives) is closed by the kernel: its call fails
/// instead of hanging, and the pool opens a new connection for the next one.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// The store's work on the database; [`PostgresStore`] bounds each call in time.
pub(crate) struct Db {
    pool: Pool,
    /// This handle's `application_name` on every connection: the change feed's rows carry it,
    /// so a node knows its own changes (its caches already have them).
    origin: String,
    /// Woken by a `trent_changes` notification (`LISTEN` on a connection of its own).
    changed: Arc<tokio::sync::Notify>,
    listener: tokio::task::AbortHandle,
}

impl Drop for Db {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Keeps one connection listening on `trent_changes` and wakes `changed` on each notification
/// (and after each reconnect, since notifications sent while disconnected are lost: the feed
/// then polls at once). Reconnects every second while the server is unreachable.
async fn listen(config: tokio_postgres::Config, changed: Arc<tokio::sync::Notify>) {
    use tokio_postgres::AsyncMessage;
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
            let notified = changed.clone();
            let drive = async move {
                while let Some(Ok(message)) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    if let AsyncMessage::Notification(_) = message {
                        notified.notify_one();
                    }
                }
            };
            tokio::pin!(drive);
            let listening = tokio::select! {
                r = client.batch_execute("LISTEN trent_changes") => r.is_ok(),
                () = &mut drive => false,
            };
            if listening {
                changed.notify_one();
                drive.await;
            }
            drop(client);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Db {
    /// Connects to `url` (`postgres://user@host:port/db`, or the key=value form), migrates the
    /// schema (refusing a newer one) and returns the store.
    pub(crate) async fn connect(url: &str) -> StoreResult<Self> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_TIMEOUT);
        }
        bound_waits(&mut config);
        let origin = trent_core::random_id("trent-", 16)
            .map_err(|e| StoreError::Backend(format!("no node id: {e}")))?;
        config.application_name(&origin);
        let listen_config = config.clone();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))?;
        let changed = Arc::new(tokio::sync::Notify::new());
        let listener = tokio::spawn(listen(listen_config, changed.clone())).abort_handle();
        let store = Self {
            pool,
            origin,
            changed,
            listener,
        };
        let mut client = store.client().await?;
        migrations::migrate(&mut client).await?;
        drop(client);
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        // Every way of not getting a connection (the server refusing or not answering, the
        // pool's wait running out) is the database being unavailable: retry later.
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("no PostgreSQL connection: {e}")))
    }

    /// Runs one statement and returns the number of rows it changed.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let client = self.client().await?;
        let st = client.prepare_cached(sql).await.map_err(db)?;
        client.execute(&st, params).await.map_err(db)
    }

    /// Asks the server a trivial question: `Ok` once it answers (`bounded.rs`'s probe).
    pub(crate) async fn ping(&self) -> StoreResult<()> {
        self.query("SELECT 1", &[]).await.map(|_| ())
    }

    /// Runs one statement that must change a row: `NotFound` if it changed none.
    async fn execute_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<()> {
        found(self.execute(sql, params).await?)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Vec<tokio_postgres::Row>> {
        let client = self.client().await?;
        let st = client.prepare_cached(sql).await.map_err(db)?;
        client.query(&st, params).await.map_err(db)
    }
}

/// The `service_settings` row recording that start-up pass `name` finished (as SQLite's).
fn pass_setting(name: &str) -> String {
    format!("pass_done:{name}")
}

/// Bounds how long the server may keep a call waiting (`statement_timeout`, `lock_timeout`,
/// unless the URL's `options` set them) and how long a silent connection lives (TCP keepalives
/// and `TCP_USER_TIMEOUT`, unless the URL sets them): losing the database makes calls fail
/// within seconds, never hang.
fn bound_waits(config: &mut tokio_postgres::Config) {
    let ms = STATEMENT_TIMEOUT.as_millis();
    let mut options = config.get_options().unwrap_or_default().to_string();
    for setting in ["statement_timeout", "lock_timeout"] {
        if !options.contains(setting) {
            options = format!("{options} -c {setting}={ms}")
                .trim_start()
                .to_string();
        }
    }
    config.options(options);
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if config.get_keepalives() && config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        // The default idle time (two hours) would notice a dead idle connection far too late.
        config.keepalives_idle(Duration::from_secs(5));
        config.keepalives_interval(Duration::from_secs(2));
        config.keepalives_retries(3);
    }
}

/// A database error as a store error: constraint violations (SQLSTATE class 23) are
/// `AlreadyExists`, as with SQLite; a lost connection, a server shutting down or refusing
/// connections, and a statement or lock wait cancelled by its timeout are `Unavailable`.
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection failed (closed, I/O error, timed out).
        return StoreError::Unavailable(e.to_string());
    };
    let code = code.code();
    if code.starts_with("23") {
        return StoreError::AlreadyExists;
    }
    // 08: connection exception; 53: insufficient resources (too many connections); 57P0x:
    // server shutting down, crashed or starting; 57014: statement_timeout; 55P03: lock_timeout.
    if code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P0")
        || code == "57014"
        || code == "55P03"
    {
        return StoreError::Unavailable(e.to_string());
    }
    StoreError::Backend(e.to_string())
}

fn found(changed: u64) -> StoreResult<()> {
    if changed == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn limit(page: Page<'_>) -> i64 {
    i64::try_from(page.limit).unwrap_or(i64::MAX)
}

const UPDATE_KEY: &str = "UPDATE keys SET description = $2, key_state = $3, policy = $4, \
     tags = $5, current_material_id = $6, rotation_period_days = $7, next_rotation_ms = $8, \
     deletion_ms = $9, pending_window_days = $10, expiration_model = $11, valid_to_ms = $12, \
     primary_region = $13, transition_ms = $14, imported_materials = $15, \
     policy_principals = $16 WHERE key_id = $1";

/// Replaces what `update_key` may change (as SQLite: not the identity, spec, usage, origin,
/// region, creation date or multi-Region flag).
async fn update_key_in(c: &impl tokio_postgres::GenericClient, k: &KeyRecord) -> StoreResult<()> {
    let l = &k.lifecycle;
    let n = c
        .execute(
            UPDATE_KEY,
            &[
                &k.key_id,
                &k.description,
                &k.state.as_str(),
                &k.policy,
                &rows::tags_to_json(&k.tags),
                &k.current_material.to_hex(),
                &l.rotation_period_days,
                &l.next_rotation_ms,
                &l.deletion_ms,
                &l.pending_window_days,
                &l.expiration_model.map(WireEnum::as_str),
                &l.valid_to_ms,
                &l.primary_region,
                &l.transition_ms,
                &trent_core::lifecycle::encode_imported_materials(&l.imported_materials),
                &trent_core::model::encode_principal_bindings(&k.policy_principals),
            ],
        )
        .await
        .map_err(db)?;
    found(n)
}

async fn insert_key_in(c: &impl tokio_postgres::GenericClient, k: &KeyRecord) -> StoreResult<()> {
    let l = &k.lifecycle;
    c.execute(
        &format!(
            "INSERT INTO keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
        ),
        &[
            &k.key_id,
            &k.account_id,
            &k.region,
            &k.created_ms,
            &k.description,
            &k.key_spec.as_str(),
            &k.key_usage.as_str(),
            &k.origin.as_str(),
            &k.state.as_str(),
            &k.policy,
            &rows::tags_to_json(&k.tags),
            &k.current_material.to_hex(),
            &k.multi_region,
            &l.rotation_period_days,
            &l.next_rotation_ms,
            &l.deletion_ms,
            &l.pending_window_days,
            &l.expiration_model.map(WireEnum::as_str),
            &l.valid_to_ms,
            &k.multi_region.then(|| k.public_id()),
            &l.primary_region,
            &l.transition_ms,
            &trent_core::lifecycle::encode_imported_materials(&l.imported_materials),
            &k.custody.custom_key_store_id(),
            &trent_core::model::encode_principal_bindings(&k.policy_principals),
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// The Regions of `record`'s multi-Region family other than its primary's, sorted.
async fn replica_regions(
    c: &impl tokio_postgres::GenericClient,
    record: &KeyRecord,
) -> StoreResult<Vec<String>> {
    if !record.multi_region {
        return Ok(Vec::new());
    }
    let rows = c
        .query(
            "SELECT region FROM keys WHERE family_id = $1 ORDER BY region",
            &[&record.public_id()],
        )
        .await
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let region: String = row.try_get(0).map_err(db)?;
        if Some(&region) != record.lifecycle.primary_region.as_ref() {
            out.push(region);
        }
    }
    Ok(out)
}

/// Locks a key's row for the rest of the transaction; `NotFound` if there is none.
async fn lock_key(c: &impl tokio_postgres::GenericClient, key_id: &str) -> StoreResult<()> {
    let rows = c
        .query(
            "SELECT 1 FROM keys WHERE key_id = $1 FOR UPDATE",
            &[&key_id],
        )
        .await
        .map_err(db)?;
    found(u64::try_from(rows.len()).unwrap_or(u64::MAX))
}

#[async_trait]
impl Store for Db {
    async fn accounts(&self) -> StoreResult<Vec<AccountRecord>> {
        let rows = self
            .query(
                "SELECT account_id, created_ms FROM accounts ORDER BY account_id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AccountRecord {
                    account_id: r.try_get(0).map_err(db)?,
                    created_ms: r.try_get(1).map_err(db)?,
                })
            })
            .collect()
    }

    async fn put_account(&self, a: &AccountRecord) -> StoreResult<()> {
        self.execute(
            "INSERT INTO accounts (account_id, created_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&a.account_id, &a.created_ms],
        )
        .await?;
        Ok(())
    }

    async fn access_keys(&self) -> StoreResult<Vec<AccessKeyRecord>> {
        let sql = format!("SELECT {ACCESS_KEY_COLUMNS} FROM access_keys ORDER BY access_key_id");
        all(self.query(&sql, &[]).await?, rows::access_key)
    }

    async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let sql = format!("SELECT {ACCESS_KEY_COLUMNS} FROM access_keys WHERE access_key_id = $1");
        let rows = self.query(&sql, &[&access_key_id]).await?;
        rows.first().map(rows::access_key).transpose()
    }

    async fn put_access_key(&self, k: &AccessKeyRecord) -> StoreResult<()> {
        self.execute(
            &format!(
                "INSERT INTO access_keys ({ACCESS_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (access_key_id) DO UPDATE SET account_id = $2, principal_arn = $3, \
                 wrapped_secret = $4, active = $5, principal_id = $7"
            ),
            &[
                &k.access_key_id,
                &k.account_id,
                &k.principal_arn,
                &k.wrapped_secret,
                &k.active,
                &k.created_ms,
                &k.principal_id,
            ],
        )
        .await?;
        Ok(())
    }

    async fn insert_key(&self, key: &KeyRecord, m: &StoredMaterial) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        insert_key_in(&*tx, key).await?;
        tx.execute(
            "INSERT INTO key_materials (key_id, material_id, wrapped, created_ms) VALUES ($1, $2, $3, $4)",
            &[&m.key_id, &m.material_id.to_hex(), &m.wrapped, &m.created_ms],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn key(&self, key_id: &str) -> StoreResult<Option<(KeyRecord, Vec<StoredMaterial>)>> {
        // One snapshot for the key and its materials.
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let Some(row) = tx
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM keys WHERE key_id = $1"),
                &[&key_id],
            )
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let mut record = rows::key(&row)?;
        record.lifecycle.replica_regions = replica_regions(&*tx, &record).await?;
        let materials = tx
            .query(
                "SELECT key_id, material_id, wrapped, created_ms FROM key_materials \
                 WHERE key_id = $1 ORDER BY created_ms, material_id",
                &[&key_id],
            )
            .await
            .map_err(db)?;
        let materials = all(materials, rows::material)?;
        tx.commit().await.map_err(db)?;
        Ok(Some((record, materials)))
    }

    async fn update_key_if(&self, expected: &KeyRecord, key: &KeyRecord) -> StoreResult<bool> {
        // The row locked, read as `key` reads it, compared, written: one transaction, so a
        // concurrent change by another node is either before (then `false`) or after.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let Some(row) = tx
            .query_opt(
                &format!("SELECT {KEY_COLUMNS} FROM keys WHERE key_id = $1 FOR UPDATE"),
                &[&key.key_id],
            )
            .await
            .map_err(db)?
        else {
            return Err(StoreError::NotFound);
        };
        let mut stored = rows::key(&row)?;
        stored.lifecycle.replica_regions = replica_regions(&*tx, &stored).await?;
        if stored != *expected {
            return Ok(false);
        }
        update_key_in(&*tx, key).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn update_key(&self, key: &KeyRecord) -> StoreResult<()> {
        let client = self.client().await?;
        update_key_in(&**client, key).await
    }

    async fn list_keys(
        &self,
        account: &str,
        region: &str,
        page: Page<'_>,
    ) -> StoreResult<Vec<String>> {
        let after = page.after.unwrap_or("");
        let rows = self
            .query(
                "SELECT key_id FROM keys WHERE account_id = $1 AND region = $2 AND key_id > $3 \
                 ORDER BY key_id LIMIT $4",
                &[&account, &region, &after, &limit(page)],
            )
            .await?;
        rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
    }

    async fn insert_alias(&self, a: &AliasRecord) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO aliases ({ALIAS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[
                &a.account_id,
                &a.region,
                &a.alias_name,
                &a.target_key_id,
                &a.created_ms,
                &a.updated_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> StoreResult<Option<AliasRecord>> {
        let rows = self
            .query(
                &format!(
                    "SELECT {ALIAS_COLUMNS} FROM aliases \
                     WHERE account_id = $1 AND region = $2 AND alias_name = $3"
                ),
                &[&account, &region, &name],
            )
            .await?;
        rows.first().map(rows::alias).transpose()
    }

    async fn update_alias(&self, a: &AliasRecord) -> StoreResult<()> {
        self.execute_one(
            "UPDATE aliases SET target_key_id = $4, updated_ms = $5 \
             WHERE account_id = $1 AND region = $2 AND alias_name = $3",
            &[
                &a.account_id,
                &a.region,
                &a.alias_name,
                &a.target_key_id,
                &a.updated_ms,
            ],
        )
        .await
    }

    async fn delete_alias(&self, account: &str, region: &str, name: &str) -> StoreResult<()> {
        self.execute_one(
            "DELETE FROM aliases WHERE account_id = $1 AND region = $2 AND alias_name = $3",
            &[&account, &region, &name],
        )
        .await
    }

    async fn list_aliases(
        &self,
        account: &str,
        region: &str,
        key_id: Option<&str>,
        page: Page<'_>,
    ) -> StoreResult<Vec<AliasRecord>> {
        let after = page.after.unwrap_or("");
        let rows = self
            .query(
                &format!(
                    "SELECT {ALIAS_COLUMNS} FROM aliases WHERE account_id = $1 AND region = $2 \
                     AND ($3::text IS NULL OR target_key_id = $3) AND alias_name > $4 \
                     ORDER BY alias_name LIMIT $5"
                ),
                &[&account, &region, &key_id, &after, &limit(page)],
            )
            .await?;
        all(rows, rows::alias)
    }

    async fn delete_access_key(&self, access_key_id: &str) -> StoreResult<()> {
        self.execute_one(
            "DELETE FROM access_keys WHERE access_key_id = $1",
            &[&access_key_id],
        )
        .await
    }

    async fn iam_documents(&self) -> StoreResult<Vec<IamDocument>> {
        let rows = self
            .query(
                "SELECT account_id, kind, name, body FROM iam_entities \
                 ORDER BY account_id, kind, name",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(IamDocument {
                    account_id: r.try_get(0).map_err(db)?,
                    kind: r.try_get(1).map_err(db)?,
                    name: r.try_get(2).map_err(db)?,
                    body: r.try_get(3).map_err(db)?,
                })
            })
            .collect()
    }

    async fn put_iam_document(&self, d: &IamDocument) -> StoreResult<()> {
        self.execute(
            "INSERT INTO iam_entities (account_id, kind, name, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, kind, name) DO UPDATE SET body = $4",
            &[&d.account_id, &d.kind, &d.name, &d.body],
        )
        .await?;
        Ok(())
    }

    async fn delete_iam_document(&self, account: &str, kind: &str, name: &str) -> StoreResult<()> {
        self.execute_one(
            "DELETE FROM iam_entities WHERE account_id = $1 AND kind = $2 AND name = $3",
            &[&account, &kind, &name],
        )
        .await
    }

    async fn write_iam_if(&self, writes: &[IamWrite]) -> StoreResult<bool> {
        // Each entity's row locked (or, for one expected absent, created) and compared before
        // anything is written, in one transaction: a concurrent change by another node is
        // either before (then `false`) or waits for this one. Locked in a fixed order so two
        // such transactions cannot deadlock.
        let mut order: Vec<&IamWrite> = writes.iter().collect();
        order.sort_by(|a, b| {
            (&a.account_id, &a.kind, &a.name).cmp(&(&b.account_id, &b.kind, &b.name))
        });
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        for w in order {
            let stored: Option<String> = tx
                .query_opt(
                    "SELECT body FROM iam_entities \
                     WHERE account_id = $1 AND kind = $2 AND name = $3 FOR UPDATE",
                    &[&w.account_id, &w.kind, &w.name],
                )
                .await
                .map_err(db)?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(db)?;
            if stored != w.expected {
                return Ok(false);
            }
            if let (None, Some(body)) = (&w.expected, &w.body) {
                // Absent: inserting it now is what holds it against a concurrent creation.
                let n = tx
                    .execute(
                        "INSERT INTO iam_entities (account_id, kind, name, body) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, kind, name) DO NOTHING",
                        &[&w.account_id, &w.kind, &w.name, body],
                    )
                    .await
                    .map_err(db)?;
                if n == 0 {
                    return Ok(false);
                }
            }
        }
        for w in writes {
            match (&w.expected, &w.body) {
                (Some(_), Some(body)) => {
                    tx.execute(
                        "UPDATE iam_entities SET body = $4 \
                         WHERE account_id = $1 AND kind = $2 AND name = $3",
                        &[&w.account_id, &w.kind, &w.name, body],
                    )
                    .await
                    .map_err(db)?;
                }
                (Some(_), None) => {
                    tx.execute(
                        "DELETE FROM iam_entities \
                         WHERE account_id = $1 AND kind = $2 AND name = $3",
                        &[&w.account_id, &w.kind, &w.name],
                    )
                    .await
                    .map_err(db)?;
                }
                // Inserted above, or (deleting what is absent) nothing to do.
                (None, _) => {}
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn sessions(&self, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE expires_ms > $1 \
             ORDER BY expires_ms, access_key_id"
        );
        all(self.query(&sql, &[&now_ms]).await?, rows::session)
    }

    async fn session(
        &self,
        access_key_id: &str,
        now_ms: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE access_key_id = $1 AND expires_ms > $2"
        );
        let rows = self.query(&sql, &[&access_key_id, &now_ms]).await?;
        rows.first().map(rows::session).transpose()
    }

    async fn insert_session(&self, s: &SessionRecord) -> StoreResult<()> {
        self.execute(
            &format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            &[
                &s.access_key_id,
                &s.account_id,
                &s.identity,
                &s.wrapped_secret,
                &s.token_sha256,
                &s.expires_ms,
                &s.created_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now_ms: i64) -> StoreResult<()> {
        self.execute("DELETE FROM sessions WHERE expires_ms <= $1", &[&now_ms])
            .await?;
        Ok(())
    }

    async fn grants_for_key(&self, key_id: &str) -> StoreResult<Vec<GrantRow>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE key_id = $1 ORDER BY grant_id");
        all(self.query(&sql, &[&key_id]).await?, rows::grant)
    }

    async fn insert_grant(&self, g: &GrantRow) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[
                &g.grant_id,
                &g.key_id,
                &g.retiring_principal,
                &g.body,
                &g.retired_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn retire_grant(&self, grant_id: &str, retired_ms: i64) -> StoreResult<()> {
        // Under READ COMMITTED a second retirer waits for the first's row lock, then sees
        // `retired_ms` set and changes nothing: exactly one succeeds.
        self.execute_one(
            "UPDATE grants SET retired_ms = $2 WHERE grant_id = $1 AND retired_ms IS NULL",
            &[&grant_id, &retired_ms],
        )
        .await
    }

    async fn grants_by_retiring_principal(&self, principal: &str) -> StoreResult<Vec<GrantRow>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE retiring_principal = $1 \
             AND retired_ms IS NULL ORDER BY grant_id"
        );
        all(self.query(&sql, &[&principal]).await?, rows::grant)
    }

    async fn update_grant_if(&self, expected: &GrantRow, grant: &GrantRow) -> StoreResult<bool> {
        // One statement: the row is compared and written under its lock, so of two nodes
        // binding the same grant at once the second changes nothing.
        let n = self
            .execute(
                "UPDATE grants SET body = $3 WHERE grant_id = $1 AND body = $2 \
                 AND retired_ms IS NULL",
                &[&grant.grant_id, &expected.body, &grant.body],
            )
            .await?;
        Ok(n == 1)
    }

    async fn insert_key_without_material(&self, key: &KeyRecord) -> StoreResult<()> {
        let client = self.client().await?;
        insert_key_in(&**client, key).await
    }

    async fn add_material(
        &self,
        key: &KeyRecord,
        m: &StoredMaterial,
        rotation: Option<&RotationRecord>,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // The material's key first (missing: the foreign key's answer, as SQLite inserts the
        // material first), then the key being changed if it is another; so concurrent changes
        // of one key queue on its row lock.
        lock_key(&*tx, &m.key_id).await.map_err(|e| match e {
            StoreError::NotFound => StoreError::AlreadyExists,
            e => e,
        })?;
        if m.key_id != key.key_id {
            lock_key(&*tx, &key.key_id).await?;
        }
        tx.execute(
            "INSERT INTO key_materials (key_id, material_id, wrapped, created_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (key_id, material_id) DO NOTHING",
            &[
                &m.key_id,
                &m.material_id.to_hex(),
                &m.wrapped,
                &m.created_ms,
            ],
        )
        .await
        .map_err(db)?;
        if let Some(r) = rotation {
            tx.execute(
                "INSERT INTO key_rotations (key_id, material_id, rotation_type, rotation_ms) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    &r.key_id,
                    &r.material_id.to_hex(),
                    &r.rotation_type.as_str(),
                    &r.rotation_ms,
                ],
            )
            .await
            .map_err(db)?;
        }
        update_key_in(&*tx, key).await?;
        tx.commit().await.map_err(db)
    }

    async fn write_keys(&self, w: &KeysWrite<'_>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        if let Some(k) = w.insert {
            insert_key_in(&*tx, k).await?;
        }
        // Rows locked in key id order, so two family writes never wait on each other in a
        // cycle; a missing one is NotFound, as SQLite's update.
        let mut locked: Vec<&str> = w.update.iter().map(|k| k.key_id.as_str()).collect();
        locked.sort_unstable();
        locked.dedup();
        for id in locked {
            if Some(id) != w.insert.map(|k| k.key_id.as_str()) {
                lock_key(&*tx, id).await?;
            }
        }
        for k in w.update {
            update_key_in(&*tx, k).await?;
        }
        for m in w.materials {
            tx.execute(
                "INSERT INTO key_materials (key_id, material_id, wrapped, created_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (key_id, material_id) DO NOTHING",
                &[
                    &m.key_id,
                    &m.material_id.to_hex(),
                    &m.wrapped,
                    &m.created_ms,
                ],
            )
            .await
            .map_err(db)?;
        }
        for r in w.rotations {
            tx.execute(
                "INSERT INTO key_rotations (key_id, material_id, rotation_type, rotation_ms) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    &r.key_id,
                    &r.material_id.to_hex(),
                    &r.rotation_type.as_str(),
                    &r.rotation_ms,
                ],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn rotations(&self, key_id: &str) -> StoreResult<Vec<RotationRecord>> {
        let rows = self
            .query(
                "SELECT key_id, material_id, rotation_type, rotation_ms FROM key_rotations \
                 WHERE key_id = $1 ORDER BY rotation_ms, material_id",
                &[&key_id],
            )
            .await?;
        all(rows, rows::rotation)
    }

    async fn delete_materials(&self, key: &KeyRecord) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        lock_key(&*tx, &key.key_id).await?;
        tx.execute(
            "DELETE FROM key_materials WHERE key_id = $1",
            &[&key.key_id],
        )
        .await
        .map_err(db)?;
        update_key_in(&*tx, key).await?;
        tx.commit().await.map_err(db)
    }

    async fn delete_material(
        &self,
        key: &KeyRecord,
        material_id: &trent_crypto::MaterialId,
    ) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        lock_key(&*tx, &key.key_id).await?;
        tx.execute(
            "DELETE FROM key_materials WHERE key_id = $1 AND material_id = $2",
            &[&key.key_id, &material_id.to_hex()],
        )
        .await
        .map_err(db)?;
        update_key_in(&*tx, key).await?;
        tx.commit().await.map_err(db)
    }

    async fn delete_key(&self, key_id: &str) -> StoreResult<Vec<AliasRecord>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        // The key's row first: a concurrent CreateAlias/CreateGrant on it (whose foreign-key
        // check needs a share lock on that row) waits, then fails as for a missing key; a
        // concurrent deletion waits, then finds nothing.
        lock_key(&*tx, key_id).await?;
        let aliases = tx
            .query(
                &format!("DELETE FROM aliases WHERE target_key_id = $1 RETURNING {ALIAS_COLUMNS}"),
                &[&key_id],
            )
            .await
            .map_err(db)?;
        let mut aliases = all(aliases, rows::alias)?;
        aliases.sort_by(|a, b| a.alias_name.cmp(&b.alias_name));
        // Grants (tombstones included) go with the key.
        for table in ["grants", "import_params", "key_rotations", "key_materials"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE key_id = $1"),
                &[&key_id],
            )
            .await
            .map_err(db)?;
        }
        let n = tx
            .execute("DELETE FROM keys WHERE key_id = $1", &[&key_id])
            .await
            .map_err(db)?;
        found(n)?;
        tx.commit().await.map_err(db)?;
        Ok(aliases)
    }

    async fn keys_due(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        let rows = self
            .query(
                "SELECT key_id FROM keys WHERE deletion_ms <= $1 OR valid_to_ms <= $1 \
                 OR transition_ms <= $1 OR (next_rotation_ms <= $1 AND key_state = 'Enabled') ORDER BY key_id",
                &[&now_ms],
            )
            .await?;
        rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
    }

    async fn insert_import_params(&self, p: &ImportParams) -> StoreResult<()> {
        self.execute(
            &format!(
                "INSERT INTO import_params ({IMPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            &[
                &p.token,
                &p.key_id,
                &p.wrapping_algorithm.as_str(),
                &p.wrapping_key_spec.as_str(),
                &p.wrapped_private_key,
                &p.created_ms,
                &p.expires_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn import_params(&self, token: &str) -> StoreResult<Option<ImportParams>> {
        let rows = self
            .query(
                &format!("SELECT {IMPORT_COLUMNS} FROM import_params WHERE token = $1"),
                &[&token],
            )
            .await?;
        rows.first().map(rows::import_params).transpose()
    }

    async fn delete_expired_import_params(&self, now_ms: i64) -> StoreResult<u64> {
        self.execute(
            "DELETE FROM import_params WHERE expires_ms <= $1",
            &[&now_ms],
        )
        .await
    }

    async fn clock_offset_ms(&self) -> StoreResult<i64> {
        let rows = self
            .query(
                "SELECT value FROM service_settings WHERE name = 'clock_offset_ms'",
                &[],
            )
            .await?;
        match rows.first() {
            Some(r) => r.try_get(0).map_err(db),
            None => Ok(0),
        }
    }

    fn shared(&self) -> bool {
        true
    }

    async fn wait_for_changes(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.changed.notified()).await;
    }

    async fn last_change(&self) -> StoreResult<i64> {
        let rows = self
            .query("SELECT COALESCE(MAX(id), 0) FROM changes", &[])
            .await?;
        match rows.first() {
            Some(r) => r.try_get(0).map_err(db),
            None => Ok(0),
        }
    }

    async fn changes_after(&self, after: i64, limit: usize) -> StoreResult<Vec<Change>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT id, source, account_id, region, key_id, name, origin FROM changes \
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let origin: Option<String> = r.try_get(6).map_err(db)?;
                Ok(Change {
                    id: r.try_get(0).map_err(db)?,
                    source: r.try_get(1).map_err(db)?,
                    account_id: r.try_get(2).map_err(db)?,
                    region: r.try_get(3).map_err(db)?,
                    key_id: r.try_get(4).map_err(db)?,
                    name: r.try_get(5).map_err(db)?,
                    own: origin.as_deref() == Some(self.origin.as_str()),
                })
            })
            .collect()
    }

    async fn claim_step(&self, key_id: &str, due_ms: i64) -> StoreResult<bool> {
        // One row per key: a claim of another due date, or one past its lease, is taken over;
        // of racing inserts one wins and the others see its row and change nothing.
        let changed = self
            .execute(
                "INSERT INTO step_claims (key_id, due_ms, node, claimed_at) \
                 VALUES ($1, $2, $3, clock_timestamp()) \
                 ON CONFLICT (key_id) DO UPDATE SET due_ms = EXCLUDED.due_ms, \
                 node = EXCLUDED.node, claimed_at = EXCLUDED.claimed_at \
                 WHERE step_claims.due_ms <> EXCLUDED.due_ms OR step_claims.node = EXCLUDED.node \
                 OR step_claims.claimed_at < clock_timestamp() - interval '1 minute'",
                &[&key_id, &due_ms, &self.origin],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn prune_changes(&self, before_ms: i64) -> StoreResult<()> {
        // By id, below the first young change (the newest change stays even when old): what
        // is kept is every id from the oldest kept one on, which tells a node whether it
        // missed any (`feed.rs`).
        self.execute(
            "DELETE FROM changes WHERE id < COALESCE(\
             (SELECT MIN(id) FROM changes WHERE at_ms >= $1), (SELECT MAX(id) FROM changes))",
            &[&before_ms],
        )
        .await?;
        Ok(())
    }

    async fn oldest_change(&self) -> StoreResult<Option<i64>> {
        let rows = self.query("SELECT MIN(id) FROM changes", &[]).await?;
        match rows.first() {
            Some(r) => r.try_get(0).map_err(db),
            None => Ok(None),
        }
    }

    async fn set_clock_offset_ms(&self, offset_ms: i64) -> StoreResult<()> {
        self.execute(
            "INSERT INTO service_settings (name, value) VALUES ('clock_offset_ms', $1) \
             ON CONFLICT (name) DO UPDATE SET value = $1",
            &[&offset_ms],
        )
        .await?;
        Ok(())
    }

    async fn pass_done(&self, name: &str) -> StoreResult<bool> {
        let rows = self
            .query(
                "SELECT value FROM service_settings WHERE name = $1",
                &[&pass_setting(name)],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn set_pass_done(&self, name: &str, done: bool) -> StoreResult<()> {
        let sql = if done {
            "INSERT INTO service_settings (name, value) VALUES ($1, 1) ON CONFLICT (name) DO NOTHING"
        } else {
            "DELETE FROM service_settings WHERE name = $1"
        };
        self.execute(sql, &[&pass_setting(name)]).await?;
        Ok(())
    }

    async fn custom_key_stores(
        &self,
        account_id: &str,
        region: &str,
    ) -> StoreResult<Vec<trent_core::model::CustomKeyStoreRecord>> {
        let rows = self
            .query(
                "SELECT account_id, region, id, name, store_type, cluster_id, \
                 trust_anchor_certificate, wrapped_password, connection_state, \
                 connection_error_code, created_ms FROM custom_key_stores \
                 WHERE account_id = $1 AND region = $2 ORDER BY id",
                &[&account_id, &region],
            )
            .await?;
        rows.iter().map(rows::custom_key_store).collect()
    }

    async fn custom_key_stores_by_cluster(
        &self,
        cluster_id: &str,
    ) -> StoreResult<Vec<trent_core::model::CustomKeyStoreRecord>> {
        let rows = self
            .query(
                "SELECT account_id, region, id, name, store_type, cluster_id, \
                 trust_anchor_certificate, wrapped_password, connection_state, \
                 connection_error_code, created_ms FROM custom_key_stores \
                 WHERE cluster_id = $1 ORDER BY id",
                &[&cluster_id],
            )
            .await?;
        rows.iter().map(rows::custom_key_store).collect()
    }

    async fn regions_in_use(&self, account_id: &str) -> StoreResult<Vec<String>> {
        let rows = self
            .query(
                "SELECT region FROM keys WHERE account_id = $1 \
                 UNION SELECT region FROM custom_key_stores WHERE account_id = $1 \
                 ORDER BY region",
                &[&account_id],
            )
            .await?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(db))
            .collect()
    }

    async fn insert_custom_key_store(
        &self,
        r: &trent_core::model::CustomKeyStoreRecord,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO custom_key_stores (account_id, region, id, name, store_type, cluster_id, \
             trust_anchor_certificate, wrapped_password, connection_state, \
             connection_error_code, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &r.account_id,
                &r.region,
                &r.id,
                &r.name,
                &r.store_type,
                &r.cluster_id,
                &r.trust_anchor_certificate,
                &r.wrapped_password,
                &r.connection_state,
                &r.connection_error_code,
                &r.created_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn update_custom_key_store(
        &self,
        r: &trent_core::model::CustomKeyStoreRecord,
    ) -> StoreResult<()> {
        self.execute_one(
            "UPDATE custom_key_stores SET name = $2, cluster_id = $3, \
             trust_anchor_certificate = $4, wrapped_password = $5, connection_state = $6, \
             connection_error_code = $7 WHERE id = $1",
            &[
                &r.id,
                &r.name,
                &r.cluster_id,
                &r.trust_anchor_certificate,
                &r.wrapped_password,
                &r.connection_state,
                &r.connection_error_code,
            ],
        )
        .await
    }

    async fn delete_custom_key_store(&self, id: &str) -> StoreResult<()> {
        self.execute_one("DELETE FROM custom_key_stores WHERE id = $1", &[&id])
            .await
    }

    async fn custom_key_store_keys(&self, id: &str) -> StoreResult<Vec<String>> {
        let rows = self
            .query(
                "SELECT key_id FROM keys WHERE custom_key_store_id = $1 ORDER BY key_id",
                &[&id],
            )
            .await?;
        rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
    }

    async fn pending_token_destructions(&self, store_id: &str) -> StoreResult<Vec<String>> {
        let rows = self
            .query(
                "SELECT label FROM pending_token_destructions WHERE custom_key_store_id = $1 \
                 ORDER BY label",
                &[&store_id],
            )
            .await?;
        rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
    }

    async fn add_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
        recorded_ms: i64,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO pending_token_destructions (custom_key_store_id, label, recorded_ms) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&store_id, &label, &recorded_ms],
        )
        .await?;
        Ok(())
    }

    async fn remove_pending_token_destruction(
        &self,
        store_id: &str,
        label: &str,
    ) -> StoreResult<()> {
        self.execute(
            "DELETE FROM pending_token_destructions WHERE custom_key_store_id = $1 AND label = $2",
            &[&store_id, &label],
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_bounded_unless_the_url_bounds_them_itself() {
        let mut config = tokio_postgres::Config::from_str("postgres://u@h/db").unwrap();
        bound_waits(&mut config);
        assert_eq!(
            config.get_options(),
            Some("-c statement_timeout=5000 -c lock_timeout=5000")
        );
        assert_eq!(config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(5));

        let mut config = tokio_postgres::Config::from_str(
            "postgres://u@h/db?options=-c%20statement_timeout%3D60000&keepalives_idle=30",
        )
        .unwrap();
        bound_waits(&mut config);
        assert_eq!(
            config.get_options(),
            Some("-c statement_timeout=60000 -c lock_timeout=5000")
        );
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(30));
    }
}
