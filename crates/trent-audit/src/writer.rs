//! The appending side: a bounded queue the request path pushes events onto, and one writer
//! thread that group-commits them.
//!
//! The writer takes whatever is queued (up to [`MAX_BATCH_EVENTS`] / [`MAX_BATCH_BYTES`]),
//! appends it and its digest line, calls `fdatasync` once, and only then tells every request
//! in the batch that its event is durable. While one batch is being synced the next one
//! gathers, so under load many requests share one sync and none waits for a write of its own.
//!
//! At open, events after the last digest line of the newest segment (a batch a crash cut
//! short) are cut off: no response was sent for them, since a response waits for its batch's
//! digest to be synced.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::AuditError;
use crate::format::{self, BatchHasher, DigestLine, GENESIS, Line};

/// Events in one batch at most.
pub const MAX_BATCH_EVENTS: usize = 4096;
/// Bytes of events in one batch at most (a batch may exceed it by its last entry).
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Entries queued for the writer at most; past it a request waits for room (backpressure).
const QUEUE_CAPACITY: usize = 16_384;
/// `Durability::Write`: the least time from one sync's start to the next.
const SYNC_SPACING: Duration = Duration::from_millis(5);
/// How often the writer looks for segments past retention.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// The file recording the last batch removed by retention, so `verify` knows where the
/// remaining chain must start.
pub const PRUNED_FILE: &str = "pruned.json";

/// When a request's answer may go: what its record has survived by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After `fdatasync` of its batch: survives a power loss or kernel crash.
    Sync,
    /// After its batch is written to the file (the kernel's page cache), with the sync right
    /// after: survives the process being killed (kill -9) or crashing; a power loss or kernel
    /// crash may lose the batches written since the last completed sync.
    Write,
}

/// Where and how the trail is kept.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub directory: PathBuf,
    pub durability: Durability,
    /// Days a segment is kept after its last write; 0 keeps everything.
    pub retention_days: u32,
    /// A segment is closed and a new one begun once it reaches this size.
    pub segment_bytes: u64,
}

impl AuditSettings {
    pub fn new(directory: PathBuf) -> Self {
        Self {
            directory,
            // The guarantee is kill -9; `Sync` (power loss too) halves Encrypt
            // throughput on a ~2 ms-flush disk (docs/audit.md, "The guarantee").
            durability: Durability::Write,
            retention_days: 90,
            segment_bytes: 64 << 20,
        }
    }
}

/// One request's events (one line each, newline-terminated) and who waits for them.
struct Pending {
    lines: Vec<u8>,
    done: oneshot::Sender<bool>,
}

/// The open trail. Cheap to share; dropping the last handle lets the writer finish what is
/// queued and stop.
pub struct AuditLog {
    sender: mpsc::Sender<Pending>,
    ids: EventIds,
    /// Set when a write could not be undone: every later append fails (fail closed).
    broken: Arc<AtomicBool>,
    durable_batches: Arc<AtomicU64>,
}

impl AuditLog {
    /// Opens (or creates) the trail in `settings.directory` and starts its writer thread.
    pub fn open(settings: AuditSettings) -> Result<Self, AuditError> {
        create_private_dir(&settings.directory)?;
        let state = WriterState::open(&settings)?;
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let broken = Arc::new(AtomicBool::new(false));
        let durable_batches = Arc::new(AtomicU64::new(0));
        let syncer = match settings.durability {
            Durability::Write => Some(
                Syncer::start(broken.clone(), durable_batches.clone()).map_err(AuditError::Io)?,
            ),
            Durability::Sync => None,
        };
        let writer = Writer {
            settings,
            state,
            receiver,
            broken: broken.clone(),
            durable_batches: durable_batches.clone(),
            syncer,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if writer.syncer.is_some() => {
                runtime.spawn(writer.run_on_runtime());
            }
            _ => {
                std::thread::Builder::new()
                    .name("trent-audit-writer".into())
                    .spawn(move || writer.run())
                    .map_err(AuditError::Io)?;
            }
        }
        Ok(Self {
            sender,
            ids: EventIds::new()?,
            broken,
            durable_batches,
        })
    }

    /// Appends one request's event lines and returns once they are on disk (synced).
    pub async fn append(&self, lines: Vec<u8>) -> Result<(), AuditError> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(AuditError::Unavailable);
        }
        let (done, durable) = oneshot::channel();
        self.sender
            .send(Pending { lines, done })
            .await
            .map_err(|_| AuditError::Unavailable)?;
        match durable.await {
            Ok(true) => Ok(()),
            _ => Err(AuditError::Unavailable),
        }
    }

    /// A fresh event id (UUID form).
    pub fn event_id(&self) -> EventId {
        self.ids.next()
    }

    /// Batches synced since the trail was opened.
    pub fn durable_batches(&self) -> u64 {
        self.durable_batches.load(Ordering::Relaxed)
    }
}

/// An event id: UUID-shaped text, on the stack.
#[derive(Clone, Copy)]
pub struct EventId([u8; 36]);

impl EventId {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("00000000-0000-0000-0000-000000000000")
    }
}

/// Unique ids without a random draw per event: a random per-process prefix and a counter,
/// written as a UUID.
struct EventIds {
    prefix: [u8; 8],
    counter: AtomicU64,
}

impl EventIds {
    fn new() -> Result<Self, AuditError> {
        let mut prefix = [0u8; 8];
        aws_lc_rs::rand::fill(&mut prefix).map_err(|_| AuditError::Random)?;
        Ok(Self {
            prefix,
            counter: AtomicU64::new(0),
        })
    }

    fn next(&self) -> EventId {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.prefix);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        let mut hex_digits = [0u8; 32];
        // Cannot fail: the output is exactly twice the input's length.
        let _ = hex::encode_to_slice(bytes, &mut hex_digits);
        let mut out = [b'-'; 36];
        let mut from = 0;
        for (to, len) in [(0usize, 8usize), (9, 4), (14, 4), (19, 4), (24, 12)] {
            if let (Some(dst), Some(src)) =
                (out.get_mut(to..to + len), hex_digits.get(from..from + len))
            {
                dst.copy_from_slice(src);
            }
            from += len;
        }
        EventId(out)
    }
}

/// Where the writer is in the chain, and the segment it appends to.
struct WriterState {
    file: File,
    path: PathBuf,
    size: u64,
    next_batch: u64,
    previous: [u8; 32],
}

impl WriterState {
    /// Finds the end of the chain in the newest segment, cuts off a batch a crash left without
    /// its digest line, and opens that segment for appending (or a first one).
    fn open(settings: &AuditSettings) -> Result<Self, AuditError> {
        let segments = format::list_segments(&settings.directory)?;
        let Some((_, path)) = segments.last() else {
            let path = settings.directory.join(format::segment_name(1));
            let file = open_append(&path)?;
            sync_dir(&settings.directory)?;
            return Ok(Self {
                file,
                path,
                size: 0,
                next_batch: 1,
                previous: GENESIS,
            });
        };
        let mut text = Vec::new();
        File::open(path)?.read_to_end(&mut text)?;
        let mut end_of_chain = 0usize;
        let mut last: Option<DigestLine> = None;
        for (offset, line) in format::lines(&text) {
            if let Line::Digest(bytes) = line {
                let digest: DigestLine = serde_json::from_slice(bytes)
                    .map_err(|e| AuditError::Corrupt(format!("{}: {e}", path.display())))?;
                end_of_chain = offset.saturating_add(bytes.len()).saturating_add(1);
                last = Some(digest);
            }
        }
        let (next_batch, previous) = match &last {
            Some(d) => (
                d.batch.saturating_add(1),
                format::parse_digest(&d.digest).ok_or_else(|| {
                    AuditError::Corrupt(format!("{}: bad digest", path.display()))
                })?,
            ),
            // A segment without a complete batch: it began where the one before ended.
            None => previous_segment_end(&segments)?,
        };
        let end = u64::try_from(end_of_chain.min(text.len())).unwrap_or(u64::MAX);
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        if end < u64::try_from(text.len()).unwrap_or(u64::MAX) {
            tracing::warn!(
                target: "trent::audit",
                segment = %path.display(),
                cut_bytes = text.len().saturating_sub(end_of_chain),
                "cutting off an unsynced batch left by a crash (its requests were never answered)"
            );
            file.set_len(end)?;
            file.sync_all()?;
        }
        let mut file = file;
        file.seek(SeekFrom::End(0))?;
        Ok(Self {
            file,
            path: path.clone(),
            size: end,
            next_batch,
            previous,
        })
    }
}

/// The chain position at the end of the segment before the newest one (for a newest segment
/// holding no complete batch).
fn previous_segment_end(segments: &[(u64, PathBuf)]) -> Result<(u64, [u8; 32]), AuditError> {
    let before = segments.len().checked_sub(2).and_then(|i| segments.get(i));
    let Some((_, path)) = before else {
        return Ok((1, GENESIS));
    };
    let text = std::fs::read(path)?;
    let mut last = None;
    for (_, line) in format::lines(&text) {
        if let Line::Digest(bytes) = line {
            last = Some(bytes);
        }
    }
    let last =
        last.ok_or_else(|| AuditError::Corrupt(format!("{}: no digest line", path.display())))?;
    let d: DigestLine = serde_json::from_slice(last)
        .map_err(|e| AuditError::Corrupt(format!("{}: {e}", path.display())))?;
    let digest = format::parse_digest(&d.digest)
        .ok_or_else(|| AuditError::Corrupt(format!("{}: bad digest", path.display())))?;
    Ok((d.batch.saturating_add(1), digest))
}

/// The writer's reusable buffers.
#[derive(Default)]
struct Batch {
    buffer: Vec<u8>,
    waiters: Vec<oneshot::Sender<bool>>,
    last_prune: Option<Instant>,
}

struct Writer {
    settings: AuditSettings,
    state: WriterState,
    receiver: mpsc::Receiver<Pending>,
    broken: Arc<AtomicBool>,
    durable_batches: Arc<AtomicU64>,
    /// `Durability::Write`: the thread that syncs behind the writer, so a write never waits
    /// for the previous batch's sync.
    syncer: Option<Arc<Syncer>>,
}

/// The segment to sync next (`Durability::Write`), handed from the writer to the sync thread.
struct Syncer {
    pending: std::sync::Mutex<Option<File>>,
    wake: std::sync::Condvar,
    stop: AtomicBool,
}

impl Syncer {
    /// Starts the sync thread.
    fn start(
        broken: Arc<AtomicBool>,
        durable_batches: Arc<AtomicU64>,
    ) -> std::io::Result<Arc<Self>> {
        let syncer = Arc::new(Self {
            pending: std::sync::Mutex::new(None),
            wake: std::sync::Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let this = syncer.clone();
        std::thread::Builder::new()
            .name("trent-audit-sync".into())
            .spawn(move || this.run(&broken, &durable_batches))?;
        Ok(syncer)
    }

    /// Asks for a sync of `file` (a handle on the segment just written); requests made while
    /// a sync runs are served by one more sync.
    fn request(&self, file: File) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = Some(file);
            self.wake.notify_one();
        }
    }

    fn run(&self, broken: &AtomicBool, durable_batches: &AtomicU64) {
        loop {
            let file = {
                let Ok(mut pending) = self.pending.lock() else {
                    return;
                };
                loop {
                    if let Some(file) = pending.take() {
                        break file;
                    }
                    if self.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    pending = match self.wake.wait(pending) {
                        Ok(p) => p,
                        Err(_) => return,
                    };
                }
            };
            let started = Instant::now();
            match file.sync_data() {
                Ok(()) => {
                    durable_batches.fetch_add(1, Ordering::Relaxed);
                    // Syncs at most every SYNC_SPACING: each costs CPU (I/O submission,
                    // interrupts) however little it carries, and the answers do not wait
                    // for them in this mode; what a power loss can take grows by as much.
                    if let Some(rest) = SYNC_SPACING.checked_sub(started.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
                Err(e) => {
                    // Acknowledged records may not be on disk: refuse all later ones.
                    tracing::error!(target: "trent::audit", error = %e, "syncing the audit trail failed; refusing further records");
                    broken.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(syncer) = &self.syncer {
            // A last sync of what was written, then the sync thread ends.
            if let Ok(file) = self.state.file.try_clone() {
                syncer.request(file);
            }
            syncer.stop.store(true, Ordering::Relaxed);
            syncer.wake.notify_one();
        }
    }
}

impl Writer {
    /// The writer thread (`Durability::Sync`: it blocks in every sync).
    fn run(mut self) {
        let mut batch = Batch::default();
        while let Some(first) = self.receiver.blocking_recv() {
            self.take_batch(first, &mut batch);
        }
    }

    /// The writer as a task on the server's runtime (`Durability::Write`: it only writes to
    /// the page cache, a short syscall per batch, and the sync thread does the rest), so
    /// neither the queue nor the answers cross threads.
    async fn run_on_runtime(mut self) {
        let mut batch = Batch::default();
        while let Some(first) = self.receiver.recv().await {
            // One scheduler round first: the requests running now queue their records too,
            // so a batch (and its write syscall, the writer's main cost) carries more.
            tokio::task::yield_now().await;
            self.take_batch(first, &mut batch);
        }
    }

    /// One batch: `first` and whatever else is queued, committed.
    fn take_batch(&mut self, first: Pending, batch: &mut Batch) {
        if batch
            .last_prune
            .is_none_or(|t| t.elapsed() >= PRUNE_INTERVAL)
        {
            batch.last_prune = Some(Instant::now());
            if let Err(e) = prune(&self.settings, &self.state.path) {
                tracing::warn!(target: "trent::audit", error = %e, "pruning the audit trail failed");
            }
        }
        batch.buffer.clear();
        batch.waiters.clear();
        let mut events = 0u64;
        let mut take = |p: Pending, batch: &mut Batch| {
            events += bytecount_newlines(&p.lines);
            batch.buffer.extend_from_slice(&p.lines);
            batch.waiters.push(p.done);
        };
        take(first, batch);
        while batch.waiters.len() < MAX_BATCH_EVENTS && batch.buffer.len() < MAX_BATCH_BYTES {
            match self.receiver.try_recv() {
                Ok(p) => take(p, batch),
                Err(_) => break,
            }
        }
        if self.broken.load(Ordering::Relaxed) {
            release(&mut batch.waiters, false);
        } else {
            self.commit(&mut batch.buffer, events, &mut batch.waiters);
        }
    }

    /// Appends the batch and its digest line, syncs, and releases the batch's requests —
    /// after the sync, or (`Durability::Write`) after the write and before the sync. On a
    /// failed write, undoes the partial append (or, if that fails too, marks the trail broken)
    /// and fails the requests.
    fn commit(
        &mut self,
        buffer: &mut Vec<u8>,
        events: u64,
        waiters: &mut Vec<oneshot::Sender<bool>>,
    ) {
        let mut hasher = BatchHasher::new(&self.state.previous);
        hasher.update(buffer);
        let digest = hasher.finish();
        let line = DigestLine {
            trent_digest: 1,
            batch: self.state.next_batch,
            events,
            previous_digest: hex::encode(self.state.previous),
            digest: hex::encode(digest),
        };
        if serde_json::to_writer(&mut *buffer, &line).is_err() {
            release(waiters, false);
            return;
        }
        buffer.push(b'\n');
        let mut written = self.state.file.write_all(buffer);
        if written.is_ok() {
            written = match &self.syncer {
                // In the kernel's page cache: survives the process (kill -9); the sync thread
                // makes it survive a power loss moments later.
                Some(syncer) => self.state.file.try_clone().map(|file| syncer.request(file)),
                None => self.state.file.sync_data(),
            };
        }
        if let Err(e) = written {
            tracing::error!(target: "trent::audit", error = %e, "writing the audit trail failed");
            let undone = self
                .state
                .file
                .set_len(self.state.size)
                .and_then(|()| self.state.file.seek(SeekFrom::End(0)).map(|_| ()));
            if undone.is_err() {
                self.broken.store(true, Ordering::Relaxed);
            }
            release(waiters, false);
            return;
        }
        release(waiters, true);
        self.state.size = self
            .state
            .size
            .saturating_add(u64::try_from(buffer.len()).unwrap_or(u64::MAX));
        self.state.previous = digest;
        self.state.next_batch = self.state.next_batch.saturating_add(1);
        if self.syncer.is_none() {
            self.durable_batches.fetch_add(1, Ordering::Relaxed);
        }
        if self.state.size >= self.settings.segment_bytes
            && let Err(e) = self.roll()
        {
            tracing::error!(target: "trent::audit", error = %e, "starting a new audit segment failed");
        }
    }

    /// Closes the segment and begins the next one, named after its first batch.
    fn roll(&mut self) -> std::io::Result<()> {
        // The closed segment is complete on disk before the next one begins (the sync thread
        // only ever syncs the newest segment).
        self.state.file.sync_data()?;
        let path = self
            .settings
            .directory
            .join(format::segment_name(self.state.next_batch));
        let file = open_append(&path)?;
        sync_dir(&self.settings.directory)?;
        self.state.file = file;
        self.state.path = path;
        self.state.size = 0;
        Ok(())
    }
}

/// Tells every waiting request whether its record is in.
fn release(waiters: &mut Vec<oneshot::Sender<bool>>, ok: bool) {
    for waiter in waiters.drain(..) {
        let _ = waiter.send(ok);
    }
}

fn bytecount_newlines(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u64::MAX)
}

/// What retention removed last: the last batch of the newest removed segment.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Pruned {
    pub batch: u64,
    pub digest: String,
}

/// Removes segments (never the one being written) whose last write is older than the
/// retention period, oldest first, recording where the remaining chain starts.
fn prune(settings: &AuditSettings, current: &Path) -> Result<(), AuditError> {
    if settings.retention_days == 0 {
        return Ok(());
    }
    let keep = Duration::from_secs(u64::from(settings.retention_days).saturating_mul(86_400));
    let Some(cutoff) = SystemTime::now().checked_sub(keep) else {
        return Ok(());
    };
    for (_, path) in format::list_segments(&settings.directory)? {
        if path == current {
            break;
        }
        let modified = std::fs::metadata(&path)?.modified()?;
        if modified >= cutoff {
            break;
        }
        let text = std::fs::read(&path)?;
        let last = format::lines(&text)
            .filter_map(|(_, line)| match line {
                Line::Digest(bytes) => serde_json::from_slice::<DigestLine>(bytes).ok(),
                Line::Event(_) => None,
            })
            .last();
        if let Some(last) = last {
            let record = serde_json::to_vec(&Pruned {
                batch: last.batch,
                digest: last.digest,
            })
            .map_err(|e| AuditError::Corrupt(e.to_string()))?;
            let tmp = settings.directory.join(format!("{PRUNED_FILE}.tmp"));
            std::fs::write(&tmp, record)?;
            File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, settings.directory.join(PRUNED_FILE))?;
        }
        std::fs::remove_file(&path)?;
        sync_dir(&settings.directory)?;
        tracing::info!(target: "trent::audit", segment = %path.display(), "audit segment past retention removed");
    }
    Ok(())
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes a new file's directory entry durable.
fn sync_dir(directory: &Path) -> std::io::Result<()> {
    File::open(directory)?.sync_all()
}

fn create_private_dir(directory: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(directory)
}
