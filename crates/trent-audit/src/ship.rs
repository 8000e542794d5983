//! The shipper: copies each committed batch of this node's trail files, in chain order, into
//! the [`SharedTrail`] (docs/audit.md, "Several nodes").
//!
//! It reads the segment files rather than hooking into the writer: a batch is committed once
//! its digest line (with its newline) is in the file — the writer appends a batch and its
//! digest line in one write and answers its requests only after — so the files already say
//! exactly what may be shipped, the request path does nothing more, and a restarted node
//! resumes from what the shared trail holds. Shipping is at least once and idempotent
//! (`(node, batch)` is stored once). It runs every [`SHIP_INTERVAL`] (and on demand, before a
//! lookup, so a node sees its own calls at once — unless a shipment is already running, which
//! a lookup does not wait for), at most [`MAX_SHIP_BYTES`] of events per transaction.
//!
//! The node's id is kept in `<audit dir>/node-id`, made at the first start: a restarted node
//! continues its own chain, and the id goes with the files it names.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::AuditError;
use crate::format::{self, DigestLine, Line};
use crate::read::summarize;
use crate::shared::{ChainStart, SharedBatch, SharedEvent, SharedTrail, is_node_id};
use crate::writer::{AuditSettings, PRUNED_FILE, Pruned};

/// How often committed batches are shipped: another node's lookups see a call within about
/// this (plus the transaction).
pub const SHIP_INTERVAL: Duration = Duration::from_millis(250);
/// Event bytes per shipping transaction at most (a batch is never split; one may exceed it).
pub const MAX_SHIP_BYTES: usize = 4 << 20;
/// How often retention runs over the shared trail.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// The file holding this node's id in the audit directory.
pub const NODE_ID_FILE: &str = "node-id";

/// This trail's node id: read from `<directory>/node-id`, or made (`node-<16 hex>`, 0600).
pub fn node_id(directory: &Path) -> Result<String, AuditError> {
    let path = directory.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if is_node_id(id) {
                return Ok(id.to_string());
            }
            return Err(AuditError::Corrupt(format!(
                "{}: not a node id",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut random = [0u8; 8];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| AuditError::Random)?;
    let id = format!("node-{}", hex::encode(random));
    let tmp = directory.join(format!("{NODE_ID_FILE}.tmp"));
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(format!("{id}\n").as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(directory)?.sync_all()?;
    Ok(id)
}

/// Where the shipper is in the files.
#[derive(Default)]
struct Position {
    /// The next batch to ship; `None` until the shared trail was asked.
    next_batch: Option<u64>,
    /// The segment (by first batch) and byte offset where `next_batch` begins, once known.
    file: Option<(u64, u64)>,
    /// The shared trail holds nothing of this node yet: the first shipment says where the
    /// chain starts.
    first: bool,
}

/// Ships one node's committed batches into the shared trail.
pub struct Shipper {
    directory: PathBuf,
    node: String,
    retention_days: u32,
    trail: Arc<dyn SharedTrail>,
    position: tokio::sync::Mutex<Position>,
}

impl Shipper {
    /// The shipper of the trail in `settings.directory` (whose node id it reads or makes).
    pub fn new(
        settings: &AuditSettings,
        trail: Arc<dyn SharedTrail>,
    ) -> Result<Arc<Self>, AuditError> {
        let node = node_id(&settings.directory)?;
        Ok(Arc::new(Self {
            directory: settings.directory.clone(),
            node,
            retention_days: settings.retention_days,
            trail,
            position: tokio::sync::Mutex::new(Position::default()),
        }))
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn trail(&self) -> &Arc<dyn SharedTrail> {
        &self.trail
    }

    /// Ships every batch committed so far; the number of batches shipped. When a shipment is
    /// already running (the periodic one, or another lookup's) it returns `Ok(0)` at once
    /// instead of queueing behind it: that shipment, or the next tick, ships what is committed.
    /// So a lookup never waits on another caller's database I/O (docs/audit.md, "Several
    /// nodes").
    pub async fn ship_now(&self) -> Result<u64, AuditError> {
        match self.position.try_lock() {
            Ok(position) => self.ship_locked(position).await,
            Err(_) => Ok(0),
        }
    }

    /// Ships with the position held (waiting for it): the periodic task.
    async fn ship_waiting(&self) -> Result<u64, AuditError> {
        let position = self.position.lock().await;
        self.ship_locked(position).await
    }

    async fn ship_locked(
        &self,
        mut position: tokio::sync::MutexGuard<'_, Position>,
    ) -> Result<u64, AuditError> {
        if position.next_batch.is_none() {
            match self.trail.next_batch(&self.node).await? {
                Some(next) => position.next_batch = Some(next),
                None => {
                    position.next_batch = Some(1);
                    position.first = true;
                }
            }
        }
        let mut shipped = 0u64;
        loop {
            let next = position.next_batch.unwrap_or(1);
            let directory = self.directory.clone();
            let file = position.file;
            let first = position.first;
            let read = tokio::task::spawn_blocking(move || collect(&directory, next, file, first))
                .await
                .map_err(|_| AuditError::Unavailable)??;
            let Some(last) = read.batches.last() else {
                return Ok(shipped);
            };
            let after = last.batch.saturating_add(1);
            self.trail
                .ship(&self.node, read.start.as_ref(), &read.batches)
                .await?;
            shipped += u64::try_from(read.batches.len()).unwrap_or(u64::MAX);
            position.next_batch = Some(after);
            position.file = read.file;
            position.first = false;
        }
    }

    /// Ships every [`SHIP_INTERVAL`] and applies retention to the shared trail hourly, until
    /// the shipper is dropped.
    pub fn spawn(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SHIP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune: Option<Instant> = None;
            let mut failing = false;
            loop {
                ticks.tick().await;
                let Some(shipper) = weak.upgrade() else {
                    return;
                };
                match shipper.ship_waiting().await {
                    Ok(_) => {
                        if failing {
                            tracing::warn!(target: "trent::audit", "shipping the audit trail to the database works again");
                        }
                        failing = false;
                    }
                    Err(e) => {
                        // The local files keep every record: shipping resumes where it stopped.
                        if !failing {
                            tracing::warn!(target: "trent::audit", error = %e, "shipping the audit trail to the database failed (will retry)");
                        }
                        failing = true;
                        shipper.forget_position().await;
                    }
                }
                if shipper.retention_days > 0
                    && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_INTERVAL)
                {
                    last_prune = Some(Instant::now());
                    let keep = u64::from(shipper.retention_days).saturating_mul(86_400);
                    let now = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let cutoff = i64::try_from(now.saturating_sub(keep)).unwrap_or(i64::MAX);
                    if let Err(e) = shipper.trail.prune(cutoff).await {
                        tracing::warn!(target: "trent::audit", error = %e, "retention over the shared audit trail failed");
                    }
                }
            }
        });
    }

    /// After a failure, asks the shared trail again where to resume (a shipment may have
    /// committed though its answer was lost).
    async fn forget_position(&self) {
        *self.position.lock().await = Position::default();
    }
}

/// What one read of the files found to ship.
struct Collected {
    batches: Vec<SharedBatch>,
    /// Where the batch after the last one begins.
    file: Option<(u64, u64)>,
    start: Option<ChainStart>,
}

/// Bytes read from a segment at a time (more only when one batch does not fit).
const READ_CHUNK: usize = 1 << 20;

/// Reads the committed batches from `next` on (at most about [`MAX_SHIP_BYTES`] of events),
/// starting at `file` when known.
fn collect(
    directory: &Path,
    next: u64,
    file: Option<(u64, u64)>,
    first: bool,
) -> Result<Collected, AuditError> {
    collect_chunked(directory, next, file, first, READ_CHUNK)
}

/// [`collect`], reading the segments `chunk` bytes at a time: memory stays bounded by the
/// chunk, the batches collected (about [`MAX_SHIP_BYTES`]) and the largest batch, however
/// long the segments (a scan from the start after a failure reads them in chunks too).
fn collect_chunked(
    directory: &Path,
    next: u64,
    file: Option<(u64, u64)>,
    first: bool,
    chunk: usize,
) -> Result<Collected, AuditError> {
    let chunk = chunk.max(1);
    let segments = format::list_segments(directory)?;
    // The segment holding `next`: the known one, else the newest one starting at or before it
    // (or the oldest, when retention removed the segment holding it).
    let known = file.filter(|(segment, _)| segments.iter().any(|(s, _)| s == segment));
    let (start_index, mut offset) = match known {
        Some((segment, offset)) => (
            segments
                .iter()
                .position(|(s, _)| *s == segment)
                .unwrap_or(0),
            offset,
        ),
        None => (
            segments.iter().rposition(|(s, _)| *s <= next).unwrap_or(0),
            0,
        ),
    };
    let mut out = Collected {
        batches: Vec::new(),
        file,
        start: None,
    };
    let mut bytes = 0usize;
    for (segment, path) in segments.iter().skip(start_index) {
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            // Removed by retention while we looked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                offset = 0;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut want = chunk;
        loop {
            let mut text = Vec::new();
            f.seek(SeekFrom::Start(offset))?;
            (&mut f)
                .take(u64::try_from(want).unwrap_or(u64::MAX))
                .read_to_end(&mut text)?;
            // The read stopped at its bound, not at the end of the file.
            let bounded = text.len() >= want;
            let mut pending: Vec<&[u8]> = Vec::new();
            let mut ended_on_batch = true;
            // Bytes of this read up to and including the last complete batch.
            let mut consumed = 0usize;
            for (at, line) in format::lines(&text) {
                match line {
                    Line::Event(record) => {
                        pending.push(record);
                        ended_on_batch = false;
                    }
                    Line::Digest(digest_line) => {
                        let end = at.saturating_add(digest_line.len());
                        // Without its newline the digest line may still be arriving.
                        if text.get(end) != Some(&b'\n') {
                            ended_on_batch = false;
                            break;
                        }
                        consumed = end.saturating_add(1);
                        let records = std::mem::take(&mut pending);
                        ended_on_batch = true;
                        let d: DigestLine = serde_json::from_slice(digest_line)
                            .map_err(|e| AuditError::Corrupt(format!("{}: {e}", path.display())))?;
                        if d.batch < next {
                            continue;
                        }
                        if first && out.batches.is_empty() && d.batch > 1 {
                            out.start = chain_start(directory, &d);
                        }
                        bytes =
                            bytes.saturating_add(records.iter().map(|r| r.len()).sum::<usize>());
                        out.batches.push(shared_batch(&d, &records));
                        let after =
                            offset.saturating_add(u64::try_from(consumed).unwrap_or(u64::MAX));
                        out.file = Some((*segment, after));
                        if bytes >= MAX_SHIP_BYTES {
                            return Ok(out);
                        }
                    }
                }
            }
            if !bounded {
                if !ended_on_batch {
                    // The batch being written (or one a crash cut short): not committed yet.
                    return Ok(out);
                }
                break;
            }
            if consumed == 0 {
                // Not even one batch in the chunk: read more of it at once.
                want = want.saturating_mul(2);
            } else {
                offset = offset.saturating_add(u64::try_from(consumed).unwrap_or(u64::MAX));
                want = chunk;
            }
        }
        offset = 0;
    }
    Ok(out)
}

/// Where the chain of a node shipping for the first time begins, when its files no longer
/// start at batch 1: after what local retention removed (`pruned.json`), else the first
/// batch's own previous digest.
fn chain_start(directory: &Path, first: &DigestLine) -> Option<ChainStart> {
    let recorded = std::fs::read(directory.join(PRUNED_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Pruned>(&bytes).ok())
        .filter(|p| p.batch.saturating_add(1) == first.batch);
    Some(match recorded {
        Some(p) => ChainStart {
            batch: p.batch,
            digest: p.digest,
        },
        None => ChainStart {
            batch: first.batch.saturating_sub(1),
            digest: first.previous_digest.clone(),
        },
    })
}

fn shared_batch(d: &DigestLine, records: &[&[u8]]) -> SharedBatch {
    let records: Vec<SharedEvent> = records
        .iter()
        .enumerate()
        .map(|(index, record)| SharedEvent {
            line_no: u32::try_from(index).unwrap_or(u32::MAX),
            summary: summarize(record).unwrap_or_default(),
            record: record.to_vec(),
        })
        .collect();
    SharedBatch {
        batch: d.batch,
        previous_digest: d.previous_digest.clone(),
        digest: d.digest.clone(),
        events: d.events,
        newest_event_secs: records
            .iter()
            .map(|r| r.summary.event_time_secs)
            .max()
            .unwrap_or(0),
        records,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = node_id(dir.path()).unwrap();
        assert!(id.starts_with("node-") && is_node_id(&id), "{id}");
        assert_eq!(node_id(dir.path()).unwrap(), id);
    }

    #[tokio::test]
    async fn committed_batches_are_collected_and_the_gathering_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = crate::AuditLog::open(AuditSettings::new(dir.path().into())).unwrap();
        let line = br#"{"eventVersion":"1.11","eventTime":"2024-01-02T03:04:05Z","eventName":"Encrypt","eventSource":"kms.amazonaws.com","eventID":"e1","recipientAccountId":"111122223333"}
"#;
        // Each append sealed as a batch of its own.
        log.append(line).await.unwrap();
        log.seal().unwrap();
        log.append(line).await.unwrap();
        log.seal().unwrap();
        // The trail closed: its segment cut to its text, so a hand-made append follows it.
        drop(log);
        let got = collect(dir.path(), 1, None, true).unwrap();
        assert_eq!(got.batches.len(), 2);
        assert_eq!(got.start, None);
        let first = &got.batches[0];
        assert_eq!((first.batch, first.events, first.records.len()), (1, 1, 1));
        assert_eq!(first.newest_event_secs, 1_704_164_645);
        assert_eq!(
            first.records[0].summary.recipient_account_id,
            "111122223333"
        );
        // From the remembered position, only what follows.
        let again = collect(dir.path(), 3, got.file, false).unwrap();
        assert!(again.batches.is_empty());
        // A batch without its digest line yet is not shipped.
        let (segment, _) = got.file.unwrap();
        let path = dir.path().join(format::segment_name(segment));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line))
            .unwrap();
        assert!(
            collect(dir.path(), 3, got.file, false)
                .unwrap()
                .batches
                .is_empty()
        );
        // From batch 2 without a position: found by scanning.
        let from_two = collect(dir.path(), 2, None, false).unwrap();
        assert_eq!(from_two.batches.len(), 1);
        assert_eq!(from_two.batches[0].batch, 2);
    }

    #[tokio::test]
    async fn reading_in_small_chunks_collects_the_same_batches() {
        let dir = tempfile::tempdir().unwrap();
        let log = crate::AuditLog::open(AuditSettings::new(dir.path().into())).unwrap();
        let line = br#"{"eventVersion":"1.11","eventTime":"2024-01-02T03:04:05Z","eventName":"Encrypt","eventSource":"kms.amazonaws.com","eventID":"e1","recipientAccountId":"111122223333"}
"#;
        for _ in 0..5 {
            log.append(line).await.unwrap();
            log.seal().unwrap();
        }
        let whole = collect(dir.path(), 1, None, true).unwrap();
        assert_eq!(whole.batches.len(), 5);
        // Chunks smaller than one batch (read more at once), and a few batches at a time.
        for chunk in [1, 16, 300, 700] {
            let got = collect_chunked(dir.path(), 1, None, true, chunk).unwrap();
            let batches: Vec<u64> = got.batches.iter().map(|b| b.batch).collect();
            assert_eq!(batches, vec![1, 2, 3, 4, 5], "chunk {chunk}");
            assert_eq!(got.file, whole.file, "chunk {chunk}");
            // Skipping shipped batches in chunks, from the start of the files.
            let later = collect_chunked(dir.path(), 4, None, false, chunk).unwrap();
            let batches: Vec<u64> = later.batches.iter().map(|b| b.batch).collect();
            assert_eq!(batches, vec![4, 5], "chunk {chunk}");
            assert_eq!(later.file, whole.file, "chunk {chunk}");
        }
    }

    /// A shared trail that is never reached.
    struct Unreached;

    #[async_trait::async_trait]
    impl SharedTrail for Unreached {
        async fn next_batch(&self, _: &str) -> Result<Option<u64>, AuditError> {
            Err(AuditError::Unavailable)
        }
        async fn ship(
            &self,
            _: &str,
            _: Option<&ChainStart>,
            _: &[SharedBatch],
        ) -> Result<(), AuditError> {
            Err(AuditError::Unavailable)
        }
        async fn lookup(
            &self,
            _: &crate::read::Lookup,
            _: Option<&crate::shared::SharedCursor>,
        ) -> Result<crate::shared::SharedPage, AuditError> {
            Err(AuditError::Unavailable)
        }
        async fn last_usage(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<crate::usage::Usage>, AuditError> {
            Err(AuditError::Unavailable)
        }
        async fn prune(&self, _: i64) -> Result<u64, AuditError> {
            Err(AuditError::Unavailable)
        }
        async fn nodes(&self) -> Result<Vec<String>, AuditError> {
            Err(AuditError::Unavailable)
        }
        async fn chain_start(&self, _: &str) -> Result<Option<ChainStart>, AuditError> {
            Err(AuditError::Unavailable)
        }
        async fn batches(&self, _: &str, _: u64, _: usize) -> Result<Vec<SharedBatch>, AuditError> {
            Err(AuditError::Unavailable)
        }
    }

    #[tokio::test]
    async fn ship_now_does_not_queue_behind_a_running_shipment() {
        let dir = tempfile::tempdir().unwrap();
        let shipper =
            Shipper::new(&AuditSettings::new(dir.path().into()), Arc::new(Unreached)).unwrap();
        let running = shipper.position.lock().await;
        let answer = tokio::time::timeout(Duration::from_millis(500), shipper.ship_now()).await;
        assert!(matches!(answer, Ok(Ok(0))), "a lookup waited for the lock");
        drop(running);
        // Idle: it ships itself (and here fails, the trail being unreachable).
        assert!(shipper.ship_now().await.is_err());
    }
}
