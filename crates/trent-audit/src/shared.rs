//! One audit trail for several nodes on one database (docs/audit.md, "Several nodes").
//!
//! Each node keeps its own digest-chained files (the durable record its answers wait for) and
//! a shipper ([`crate::ship`]) copies every committed batch into a [`SharedTrail`] afterwards.
//! The shared trail holds each node's batches (number, previous digest, digest, event count)
//! and their events byte for byte, each with the lookup attributes as indexed columns, so:
//!
//! - LookupEvents on any node reads every node's events from the index (newest first across
//!   nodes, [`SharedCursor`] paging);
//! - GetKeyLastUsage asks for the newest successful tracked operation on a key over all nodes;
//! - [`verify`] recomputes every node's chain from the stored events alone, and checks that
//!   each event's indexed columns say what its record says (an edited column would otherwise
//!   hide an event from a lookup without touching the chain).
//!
//! The port is this trait, so this crate knows no database: `trent-store-postgres` implements
//! it (`PgAuditTrail`), and `trent serve` plugs it in when `database` is PostgreSQL.

use async_trait::async_trait;

use crate::AuditError;
use crate::format::{BatchHasher, GENESIS, parse_digest};
use crate::read::{FoundEvent, Lookup, Summary, summarize};
use crate::usage::Usage;

/// One event of a shipped batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedEvent {
    /// Its place in the batch, from 0.
    pub line_no: u32,
    /// Its indexed fields (all empty for a line that is not a readable record: it is still
    /// stored, so the batch's digest verifies).
    pub summary: Summary,
    /// The event line as in the file, without its newline.
    pub record: Vec<u8>,
}

/// One committed batch of one node's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedBatch {
    pub batch: u64,
    /// Hex, as in the digest line.
    pub previous_digest: String,
    pub digest: String,
    /// The event count the digest line states.
    pub events: u64,
    /// The newest event time in the batch (seconds): what retention compares.
    pub newest_event_secs: i64,
    pub records: Vec<SharedEvent>,
}

/// Where a node's chain starts in the shared trail: after this batch (removed by retention,
/// here or in the node's files before it first shipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStart {
    pub batch: u64,
    pub digest: String,
}

/// A position in the shared trail's newest-first order: before this event. Opaque to clients
/// (the `NextToken`, `t2.<time>.<node>.<batch>.<line>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCursor {
    pub event_time: i64,
    pub node: String,
    pub batch: u64,
    pub line_no: u32,
}

impl SharedCursor {
    pub fn to_token(&self) -> String {
        format!(
            "t2.{}.{}.{}.{}",
            self.event_time, self.node, self.batch, self.line_no
        )
    }

    pub fn from_token(token: &str) -> Option<Self> {
        let mut parts = token.strip_prefix("t2.")?.split('.');
        let event_time = parts.next()?.parse().ok()?;
        let node = parts.next()?;
        if !is_node_id(node) {
            return None;
        }
        let batch = parts.next()?.parse().ok()?;
        let line_no = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            event_time,
            node: node.to_string(),
            batch,
            line_no,
        })
    }
}

/// Whether `text` is a node id as [`crate::ship::node_id`] makes them (and a token may carry).
pub fn is_node_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A page of a shared lookup.
#[derive(Debug, Default)]
pub struct SharedPage {
    pub events: Vec<FoundEvent>,
    pub next: Option<SharedCursor>,
}

/// The shared trail, as the shipper, the lookups and verification use it.
#[async_trait]
pub trait SharedTrail: Send + Sync {
    /// The first batch of `node` not yet in the shared trail; `None` when it holds nothing of
    /// that node.
    async fn next_batch(&self, node: &str) -> Result<Option<u64>, AuditError>;

    /// Stores `batches` (consecutive, in chain order) of `node`, in one transaction.
    /// Idempotent: a batch already stored (or removed by retention) is left as it is. `start`,
    /// on a node's first shipment, records where its chain begins.
    async fn ship(
        &self,
        node: &str,
        start: Option<&ChainStart>,
        batches: &[SharedBatch],
    ) -> Result<(), AuditError>;

    /// One page of `lookup` (its file cursor is ignored) over every node's events, newest
    /// first, from `cursor` on.
    async fn lookup(
        &self,
        lookup: &Lookup,
        cursor: Option<&SharedCursor>,
    ) -> Result<SharedPage, AuditError>;

    /// The newest successful tracked operation on `key_arn` recorded in `owner_account`.
    async fn last_usage(
        &self,
        key_arn: &str,
        owner_account: &str,
    ) -> Result<Option<Usage>, AuditError>;

    /// Removes, per node and oldest first, the batches whose newest event is older than
    /// `cutoff_secs`, recording where each remaining chain starts. Returns batches removed.
    async fn prune(&self, cutoff_secs: i64) -> Result<u64, AuditError>;

    /// Every node with batches (or a chain start) in the shared trail.
    async fn nodes(&self) -> Result<Vec<String>, AuditError>;

    /// Where `node`'s chain starts, if retention removed its beginning.
    async fn chain_start(&self, node: &str) -> Result<Option<ChainStart>, AuditError>;

    /// Up to `limit` batches of `node` numbered after `after`, in order, with their events.
    async fn batches(
        &self,
        node: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<SharedBatch>, AuditError>;
}

/// What verifying one node's chain in the shared trail found.
#[derive(Debug, Default)]
pub struct NodeReport {
    pub node: String,
    pub batches: u64,
    pub events: u64,
    /// The last stored batch's number and digest. Batches the node committed after it are not
    /// shipped yet: that is not tampering (compare with the node's files, or a head recorded
    /// earlier).
    pub head: Option<(u64, String)>,
    pub problems: Vec<String>,
}

/// Batches read per query while verifying.
const VERIFY_PAGE: usize = 256;

/// Verifies every node's chain in the shared trail: consecutive batch numbers from where the
/// chain starts, each batch chained to the one before, each batch's digest recomputed from its
/// stored events in order (a changed, removed, added or reordered event is caught), its event
/// count, and each event's indexed columns against its record.
pub async fn verify(trail: &dyn SharedTrail) -> Result<Vec<NodeReport>, AuditError> {
    let mut reports = Vec::new();
    for node in trail.nodes().await? {
        let mut report = NodeReport {
            node: node.clone(),
            ..NodeReport::default()
        };
        let (mut expected, mut previous) = match trail.chain_start(&node).await? {
            Some(start) => match parse_digest(&start.digest) {
                Some(d) => (start.batch.saturating_add(1), d),
                None => {
                    report.problems.push(format!(
                        "the chain start (batch {}) has a bad digest",
                        start.batch
                    ));
                    (start.batch.saturating_add(1), GENESIS)
                }
            },
            None => (1, GENESIS),
        };
        let mut after = expected.saturating_sub(1);
        loop {
            let page = trail.batches(&node, after, VERIFY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.batch;
            for batch in &page {
                check_batch(batch, expected, &previous, &mut report);
                report.batches += 1;
                report.events += u64::try_from(batch.records.len()).unwrap_or(u64::MAX);
                // Follow the recorded chain, so one bad batch is reported once.
                previous = parse_digest(&batch.digest).unwrap_or(previous);
                expected = batch.batch.saturating_add(1);
                report.head = Some((batch.batch, hex::encode(previous)));
            }
            if page.len() < VERIFY_PAGE {
                break;
            }
        }
        reports.push(report);
    }
    Ok(reports)
}

fn check_batch(batch: &SharedBatch, expected: u64, previous: &[u8; 32], report: &mut NodeReport) {
    let n = batch.batch;
    if n != expected {
        report.problems.push(format!(
            "batch {n} where batch {expected} was expected (a batch was removed, reordered or replayed)"
        ));
    }
    if parse_digest(&batch.previous_digest).as_ref() != Some(previous) {
        report
            .problems
            .push(format!("batch {n} does not chain to the batch before it"));
    }
    for (index, event) in batch.records.iter().enumerate() {
        if usize::try_from(event.line_no).ok() != Some(index) {
            report.problems.push(format!(
                "batch {n}: event {index} is numbered {} (an event was removed or reordered)",
                event.line_no
            ));
        }
        if summarize(&event.record).unwrap_or_default() != event.summary {
            report.problems.push(format!(
                "batch {n}, event {}: its indexed columns differ from its record (changed in the database)",
                event.line_no
            ));
        }
    }
    // Recomputed from the batch's own previous digest, so a batch whose events were changed
    // is told apart from one that does not chain.
    let own_previous = parse_digest(&batch.previous_digest).unwrap_or(*previous);
    let mut own = BatchHasher::new(&own_previous);
    for event in &batch.records {
        own.update(&event.record);
        own.update(b"\n");
    }
    if parse_digest(&batch.digest) != Some(own.finish()) {
        report.problems.push(format!(
            "batch {n} does not match its digest (an event was changed, removed, added or reordered)"
        ));
    }
    if u64::try_from(batch.records.len()).ok() != Some(batch.events) {
        report.problems.push(format!(
            "batch {n} holds {} events, its digest line said {}",
            batch.records.len(),
            batch.events
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_other_shapes() {
        let cursor = SharedCursor {
            event_time: 1_700_000_000,
            node: "node-0123abcd".into(),
            batch: 42,
            line_no: 3,
        };
        assert_eq!(
            SharedCursor::from_token(&cursor.to_token()).as_ref(),
            Some(&cursor)
        );
        for bad in [
            "t1.1.2",
            "t2.1.node.2",
            "t2.1.no de.2.3",
            "t2.x.node.2.3",
            "t2.1.node.2.3.4",
        ] {
            assert_eq!(SharedCursor::from_token(bad), None, "{bad}");
        }
    }
}
