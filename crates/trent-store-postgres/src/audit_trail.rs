//! [`PgAuditTrail`]: `trent_audit::shared::SharedTrail` on PostgreSQL — every node's shipped
//! audit batches in one database (migration 11: `audit_batches`, `audit_events`,
//! `audit_pruned`; docs/audit.md, "Several nodes").
//!
//! A pool of its own (two connections), so shipping and lookups never take a connection the
//! store's request path is waiting for; the same time bounds as the store's connections.
//! Lookups are keyset queries over `(recipient_account_id[, attribute], event_time DESC,
//! node_id DESC, batch DESC, line_no DESC)` indexes: a page reads its rows and no more.

use std::str::FromStr;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use trent_audit::AuditError;
use trent_audit::read::{Attribute, FoundEvent, Lookup, Summary};
use trent_audit::shared::{
    ChainStart, SharedBatch, SharedCursor, SharedEvent, SharedPage, SharedTrail,
};
use trent_audit::usage::{TRACKED_OPERATIONS, Usage};

use crate::{POOL_TIMEOUT, bound_waits};

/// The schema version that created the shared trail's tables.
const AUDIT_SCHEMA_VERSION: i64 = 11;
/// Connections of the trail's own pool.
const POOL_SIZE: usize = 2;
/// The advisory lock retention holds, so two nodes pruning at once do not interleave.
const PRUNE_LOCK: i64 = 0x0074_7265_6e74_6175;

/// The shared audit trail on PostgreSQL.
pub struct PgAuditTrail {
    pool: Pool,
}

fn failed(e: impl std::fmt::Display) -> AuditError {
    AuditError::Shared(e.to_string())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl PgAuditTrail {
    /// Connects to `url` and checks that its schema has the trail's tables (a node of this
    /// version migrates the database at start; this never migrates).
    pub async fn connect(url: &str) -> Result<Self, AuditError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| failed(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_TIMEOUT);
        }
        bound_waits(&mut config);
        config.application_name("trent-audit");
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
            .map_err(|e| failed(format!("cannot build the connection pool: {e}")))?;
        let trail = Self { pool };
        let client = trail.client().await?;
        let version: i64 = client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .await
            .map_err(failed)?
            .try_get(0)
            .map_err(failed)?;
        if version < AUDIT_SCHEMA_VERSION {
            return Err(failed(format!(
                "the database's schema is version {version}; the shared audit trail needs \
                 {AUDIT_SCHEMA_VERSION} (start a node of this Trent on it once: it migrates)"
            )));
        }
        drop(client);
        Ok(trail)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, AuditError> {
        self.pool
            .get()
            .await
            .map_err(|e| failed(format!("no PostgreSQL connection: {e}")))
    }
}

/// The column an attribute filters on.
fn column(attribute: Attribute) -> &'static str {
    match attribute {
        Attribute::EventId => "event_id",
        Attribute::EventName => "event_name",
        Attribute::ReadOnly => "read_only",
        Attribute::Username => "username",
        Attribute::ResourceType => "resource_type",
        Attribute::ResourceName => "resource_name",
        Attribute::EventSource => "event_source",
        Attribute::AccessKeyId => "access_key_id",
    }
}

const EVENT_COLUMNS: &str = "node_id, batch, line_no, recipient_account_id, event_time, \
     event_id, event_name, event_source, read_only, username, access_key_id, resource_type, \
     resource_name, error_code, request_id, record";

fn summary_of(row: &tokio_postgres::Row) -> Result<Summary, AuditError> {
    Ok(Summary {
        recipient_account_id: row.try_get("recipient_account_id").map_err(failed)?,
        event_time_secs: row.try_get("event_time").map_err(failed)?,
        event_id: row.try_get("event_id").map_err(failed)?,
        event_name: row.try_get("event_name").map_err(failed)?,
        event_source: row.try_get("event_source").map_err(failed)?,
        read_only: row.try_get("read_only").map_err(failed)?,
        username: row.try_get("username").map_err(failed)?,
        access_key_id: row.try_get("access_key_id").map_err(failed)?,
        resource_type: row.try_get("resource_type").map_err(failed)?,
        resource_name: row.try_get("resource_name").map_err(failed)?,
        error_code: row.try_get("error_code").map_err(failed)?,
        request_id: row.try_get("request_id").map_err(failed)?,
    })
}

#[async_trait]
impl SharedTrail for PgAuditTrail {
    async fn next_batch(&self, node: &str) -> Result<Option<u64>, AuditError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT GREATEST(
                    (SELECT MAX(batch) FROM audit_batches WHERE node_id = $1),
                    (SELECT batch FROM audit_pruned WHERE node_id = $1))",
                &[&node],
            )
            .await
            .map_err(failed)?;
        let last: Option<i64> = row.try_get(0).map_err(failed)?;
        Ok(last.map(|b| to_u64(b).saturating_add(1)))
    }

    async fn ship(
        &self,
        node: &str,
        start: Option<&ChainStart>,
        batches: &[SharedBatch],
    ) -> Result<(), AuditError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(failed)?;
        if let Some(start) = start {
            tx.execute(
                "INSERT INTO audit_pruned (node_id, batch, digest) VALUES ($1, $2, $3)
                 ON CONFLICT (node_id) DO NOTHING",
                &[&node, &to_i64(start.batch), &start.digest],
            )
            .await
            .map_err(failed)?;
        }
        let numbers: Vec<i64> = batches.iter().map(|b| to_i64(b.batch)).collect();
        let previous: Vec<&str> = batches.iter().map(|b| b.previous_digest.as_str()).collect();
        let digests: Vec<&str> = batches.iter().map(|b| b.digest.as_str()).collect();
        let counts: Vec<i64> = batches.iter().map(|b| to_i64(b.events)).collect();
        let newest: Vec<i64> = batches.iter().map(|b| b.newest_event_secs).collect();
        // A batch already stored is kept as stored; one retention removed is not put back.
        tx.execute(
            "INSERT INTO audit_batches
                 (node_id, batch, previous_digest, digest, events, newest_event_secs)
             SELECT $1, u.batch, u.previous_digest, u.digest, u.events, u.newest
             FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[])
                 AS u(batch, previous_digest, digest, events, newest)
             WHERE NOT EXISTS (
                 SELECT 1 FROM audit_pruned p WHERE p.node_id = $1 AND p.batch >= u.batch)
             ON CONFLICT (node_id, batch) DO NOTHING",
            &[&node, &numbers, &previous, &digests, &counts, &newest],
        )
        .await
        .map_err(failed)?;
        let events: Vec<(&SharedBatch, &SharedEvent)> = batches
            .iter()
            .flat_map(|b| b.records.iter().map(move |e| (b, e)))
            .collect();
        let of = |f: fn(&Summary) -> Option<&str>| -> Vec<Option<&str>> {
            events.iter().map(|(_, e)| f(&e.summary)).collect()
        };
        let batch_of: Vec<i64> = events.iter().map(|(b, _)| to_i64(b.batch)).collect();
        let line_no: Vec<i32> = events
            .iter()
            .map(|(_, e)| i32::try_from(e.line_no).unwrap_or(i32::MAX))
            .collect();
        let recipient: Vec<&str> = events
            .iter()
            .map(|(_, e)| e.summary.recipient_account_id.as_str())
            .collect();
        let time: Vec<i64> = events
            .iter()
            .map(|(_, e)| e.summary.event_time_secs)
            .collect();
        let event_id: Vec<&str> = events
            .iter()
            .map(|(_, e)| e.summary.event_id.as_str())
            .collect();
        let event_name: Vec<&str> = events
            .iter()
            .map(|(_, e)| e.summary.event_name.as_str())
            .collect();
        let event_source: Vec<&str> = events
            .iter()
            .map(|(_, e)| e.summary.event_source.as_str())
            .collect();
        let read_only: Vec<Option<bool>> =
            events.iter().map(|(_, e)| e.summary.read_only).collect();
        let username = of(|s| s.username.as_deref());
        let access_key_id = of(|s| s.access_key_id.as_deref());
        let resource_type = of(|s| s.resource_type.as_deref());
        let resource_name = of(|s| s.resource_name.as_deref());
        let error_code = of(|s| s.error_code.as_deref());
        let request_id = of(|s| s.request_id.as_deref());
        let record: Vec<&[u8]> = events.iter().map(|(_, e)| e.record.as_slice()).collect();
        tx.execute(
            "INSERT INTO audit_events (node_id, batch, line_no, recipient_account_id, event_time,
                 event_id, event_name, event_source, read_only, username, access_key_id,
                 resource_type, resource_name, error_code, request_id, record)
             SELECT $1, u.* FROM UNNEST($2::BIGINT[], $3::INT[], $4::TEXT[], $5::BIGINT[],
                 $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BOOLEAN[], $10::TEXT[], $11::TEXT[],
                 $12::TEXT[], $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::BYTEA[])
                 AS u(batch, line_no, recipient_account_id, event_time, event_id, event_name,
                      event_source, read_only, username, access_key_id, resource_type,
                      resource_name, error_code, request_id, record)
             WHERE EXISTS (
                 SELECT 1 FROM audit_batches b WHERE b.node_id = $1 AND b.batch = u.batch)
             ON CONFLICT (node_id, batch, line_no) DO NOTHING",
            &[
                &node,
                &batch_of,
                &line_no,
                &recipient,
                &time,
                &event_id,
                &event_name,
                &event_source,
                &read_only,
                &username,
                &access_key_id,
                &resource_type,
                &resource_name,
                &error_code,
                &request_id,
                &record,
            ],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)
    }

    async fn lookup(
        &self,
        lookup: &Lookup,
        cursor: Option<&SharedCursor>,
    ) -> Result<SharedPage, AuditError> {
        let mut sql =
            format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE recipient_account_id = $1");
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(lookup.account.clone())];
        if let Some((attribute, value)) = &lookup.attribute {
            if *attribute == Attribute::ReadOnly {
                let flag = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    // Matches no record, as in the files.
                    _ => return Ok(SharedPage::default()),
                };
                params.push(Box::new(flag));
            } else {
                params.push(Box::new(value.clone()));
            }
            sql.push_str(&format!(" AND {} = ${}", column(*attribute), params.len()));
        }
        if let Some(start) = lookup.start_secs {
            params.push(Box::new(start));
            sql.push_str(&format!(" AND event_time >= ${}", params.len()));
        }
        if let Some(end) = lookup.end_secs {
            params.push(Box::new(end));
            sql.push_str(&format!(" AND event_time <= ${}", params.len()));
        }
        if let Some(c) = cursor {
            let n = params.len();
            params.push(Box::new(c.event_time));
            params.push(Box::new(c.node.clone()));
            params.push(Box::new(to_i64(c.batch)));
            params.push(Box::new(i32::try_from(c.line_no).unwrap_or(i32::MAX)));
            sql.push_str(&format!(
                " AND (event_time, node_id, batch, line_no) < (${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4
            ));
        }
        let limit = i64::try_from(lookup.max_results).unwrap_or(50);
        params.push(Box::new(limit.saturating_add(1)));
        sql.push_str(&format!(
            " ORDER BY event_time DESC, node_id DESC, batch DESC, line_no DESC LIMIT ${}",
            params.len()
        ));
        let client = self.client().await?;
        let statement = client.prepare_cached(&sql).await.map_err(failed)?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
        let rows = client.query(&statement, &refs).await.map_err(failed)?;
        let mut page = SharedPage::default();
        for row in rows.iter().take(lookup.max_results) {
            let summary = summary_of(row)?;
            let record: Vec<u8> = row.try_get("record").map_err(failed)?;
            let node: String = row.try_get("node_id").map_err(failed)?;
            let batch: i64 = row.try_get("batch").map_err(failed)?;
            let line_no: i32 = row.try_get("line_no").map_err(failed)?;
            page.next = Some(SharedCursor {
                event_time: summary.event_time_secs,
                node,
                batch: to_u64(batch),
                line_no: u32::try_from(line_no).unwrap_or(0),
            });
            let resources = match (summary.resource_type, summary.resource_name) {
                (Some(t), Some(n)) => vec![(t, n)],
                _ => Vec::new(),
            };
            page.events.push(FoundEvent {
                event_id: summary.event_id,
                event_name: summary.event_name,
                read_only: summary.read_only,
                access_key_id: summary.access_key_id,
                event_time_secs: summary.event_time_secs,
                event_source: summary.event_source,
                username: summary.username,
                resources,
                record: String::from_utf8_lossy(&record).into_owned(),
            });
        }
        if rows.len() <= lookup.max_results {
            page.next = None;
        }
        Ok(page)
    }

    async fn last_usage(
        &self,
        key_arn: &str,
        owner_account: &str,
    ) -> Result<Option<Usage>, AuditError> {
        let client = self.client().await?;
        let operations: Vec<&str> = TRACKED_OPERATIONS.to_vec();
        let row = client
            .query_opt(
                "SELECT event_name, event_time, event_id, request_id FROM audit_events
                 WHERE resource_name = $1 AND recipient_account_id = $2
                   AND event_source = 'kms.amazonaws.com' AND error_code IS NULL
                   AND event_name = ANY($3)
                 ORDER BY event_time DESC, node_id DESC, batch DESC, line_no DESC LIMIT 1",
                &[&key_arn, &owner_account, &operations],
            )
            .await
            .map_err(failed)?;
        let Some(row) = row else { return Ok(None) };
        let time: i64 = row.try_get("event_time").map_err(failed)?;
        Ok(Some(Usage {
            operation: row.try_get("event_name").map_err(failed)?,
            time_ms: time.saturating_mul(1000),
            event_id: row.try_get("event_id").map_err(failed)?,
            request_id: row.try_get("request_id").map_err(failed)?,
        }))
    }

    async fn prune(&self, cutoff_secs: i64) -> Result<u64, AuditError> {
        let nodes = self.nodes().await?;
        let mut client = self.client().await?;
        let mut removed = 0u64;
        for node in nodes {
            let tx = client.transaction().await.map_err(failed)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PRUNE_LOCK])
                .await
                .map_err(failed)?;
            // The last batch of the old run at the chain's start: every batch up to it is past
            // retention, the one after it (if any) is not.
            let row = tx
                .query_one(
                    "SELECT MAX(batch) FROM audit_batches
                     WHERE node_id = $1 AND newest_event_secs < $2
                       AND batch < COALESCE((SELECT MIN(batch) FROM audit_batches
                                             WHERE node_id = $1 AND newest_event_secs >= $2),
                                            9223372036854775807)",
                    &[&node, &cutoff_secs],
                )
                .await
                .map_err(failed)?;
            let last: Option<i64> = row.try_get(0).map_err(failed)?;
            let Some(last) = last else {
                tx.commit().await.map_err(failed)?;
                continue;
            };
            tx.execute(
                "INSERT INTO audit_pruned (node_id, batch, digest)
                 SELECT node_id, batch, digest FROM audit_batches WHERE node_id = $1 AND batch = $2
                 ON CONFLICT (node_id) DO UPDATE SET batch = EXCLUDED.batch, digest = EXCLUDED.digest",
                &[&node, &last],
            )
            .await
            .map_err(failed)?;
            let gone = tx
                .execute(
                    "DELETE FROM audit_batches WHERE node_id = $1 AND batch <= $2",
                    &[&node, &last],
                )
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            removed = removed.saturating_add(gone);
        }
        Ok(removed)
    }

    async fn nodes(&self) -> Result<Vec<String>, AuditError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT node_id FROM audit_batches GROUP BY node_id
                 UNION SELECT node_id FROM audit_pruned ORDER BY 1",
                &[],
            )
            .await
            .map_err(failed)?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(failed))
            .collect()
    }

    async fn chain_start(&self, node: &str) -> Result<Option<ChainStart>, AuditError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT batch, digest FROM audit_pruned WHERE node_id = $1",
                &[&node],
            )
            .await
            .map_err(failed)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ChainStart {
            batch: to_u64(row.try_get("batch").map_err(failed)?),
            digest: row.try_get("digest").map_err(failed)?,
        }))
    }

    async fn batches(
        &self,
        node: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SharedBatch>, AuditError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT batch, previous_digest, digest, events, newest_event_secs
                 FROM audit_batches WHERE node_id = $1 AND batch > $2 ORDER BY batch LIMIT $3",
                &[&node, &to_i64(after), &limit],
            )
            .await
            .map_err(failed)?;
        let mut batches = Vec::with_capacity(rows.len());
        for row in &rows {
            batches.push(SharedBatch {
                batch: to_u64(row.try_get("batch").map_err(failed)?),
                previous_digest: row.try_get("previous_digest").map_err(failed)?,
                digest: row.try_get("digest").map_err(failed)?,
                events: to_u64(row.try_get("events").map_err(failed)?),
                newest_event_secs: row.try_get("newest_event_secs").map_err(failed)?,
                records: Vec::new(),
            });
        }
        let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
            return Ok(batches);
        };
        let events = client
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM audit_events
                     WHERE node_id = $1 AND batch >= $2 AND batch <= $3 ORDER BY batch, line_no"
                ),
                &[&node, &to_i64(first.batch), &to_i64(last.batch)],
            )
            .await
            .map_err(failed)?;
        let mut index = 0usize;
        for row in &events {
            let batch = to_u64(row.try_get("batch").map_err(failed)?);
            while batches.get(index).is_some_and(|b| b.batch < batch) {
                index += 1;
            }
            let Some(target) = batches.get_mut(index).filter(|b| b.batch == batch) else {
                continue;
            };
            let line_no: i32 = row.try_get("line_no").map_err(failed)?;
            target.records.push(SharedEvent {
                line_no: u32::try_from(line_no).unwrap_or(u32::MAX),
                summary: summary_of(row)?,
                record: row.try_get("record").map_err(failed)?,
            });
        }
        Ok(batches)
    }
}
