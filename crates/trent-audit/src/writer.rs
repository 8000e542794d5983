//! The appending side: one bounded buffer the request path appends its event lines to, and
//! one writer that group-commits it.
//!
//! The writer takes the whole buffer (at most [`MAX_BATCH_BYTES`] gather before requests wait
//! for room), appends it and its digest line, calls `fdatasync` once, and only then tells
//! every request in the batch that its event is durable: the buffer's batches are numbered,
//! a request waits until the number of its batch is published as committed. While one batch
//! is being synced the next one gathers, so under load many requests share one sync and none
//! waits for a write of its own. Appending costs a short lock and a copy: no allocation and
//! no channel per request.
//!
//! A commit wakes only the requests of the committed batch: each batch number has its slot
//! among [`BATCH_SLOTS`] `Notify`s, and a request waits on its own batch's. (A single `watch`
//! of the committed number woke every waiting request at every commit, the batch gathering
//! behind it included, each only to look and sleep again; `docs/benchmarks.md`, "Audit cost
//! and the hot path", has what the change measured: within the noise of a busy machine.)
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

use tokio::sync::Notify;

use crate::AuditError;
use crate::format::{self, BatchHasher, DigestLine, GENESIS, Line};

/// Bytes of events gathered for one batch at most; past it a request waits for room
/// (backpressure). A batch may exceed it by its last entry.
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Failed batches remembered for the requests still to learn of it.
const FAILURES_KEPT: usize = 1024;
/// Wake-up slots of batches (batch `g` uses slot `g % BATCH_SLOTS`). Only two batches are
/// live at once (one being written, one gathering), so two would do; more keep a request
/// that is slow to start waiting from sharing a slot with a batch two ahead of its own.
const BATCH_SLOTS: usize = 4;
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

/// The events gathering for the next batch, shared by the requests and the writer.
struct Queue {
    gathering: std::sync::Mutex<Gathering>,
    /// Wakes the writer: a batch began gathering, or the trail is closing.
    work: Notify,
    /// Wakes requests waiting for room.
    room: Notify,
    /// The newest batch generation the writer finished (written, or failed: see `failed`);
    /// generations are finished in order.
    committed: AtomicU64,
    /// The writer stopped: batches after `committed` never will be finished.
    gone: AtomicBool,
    /// Wakes the requests of one batch once it is finished (see [`BATCH_SLOTS`]).
    batch_done: [Notify; BATCH_SLOTS],
    /// Recent batches whose write failed (by generation), and whether there ever was one.
    failed: std::sync::Mutex<std::collections::VecDeque<u64>>,
    any_failed: AtomicBool,
}

impl Queue {
    /// Adds `lines` to the gathering batch: its generation, or `None` when it is full.
    fn push(&self, lines: &[u8]) -> Result<Option<u64>, AuditError> {
        let mut g = self.gathering.lock().map_err(|_| AuditError::Unavailable)?;
        if g.closed {
            return Err(AuditError::Unavailable);
        }
        let first = g.lines.is_empty();
        if !first && g.lines.len() >= MAX_BATCH_BYTES {
            return Ok(None);
        }
        g.lines.extend_from_slice(lines);
        g.events = g.events.saturating_add(bytecount_newlines(lines));
        let generation = g.generation;
        drop(g);
        if first {
            self.work.notify_one();
        }
        Ok(Some(generation))
    }

    /// The wake-up slot of batch `generation`.
    fn slot(&self, generation: u64) -> &Notify {
        let index = usize::try_from(generation % BATCH_SLOTS as u64).unwrap_or(0);
        let [first, ..] = &self.batch_done;
        self.batch_done.get(index).unwrap_or(first)
    }

    /// Publishes batch `generation` as finished and wakes its requests (only them).
    fn finish(&self, generation: u64) {
        // SeqCst with the load in `AuditLog::committed`: a request that created its `Notified`
        // after this store sees the new number; one that created it before is woken.
        self.committed.store(generation, Ordering::SeqCst);
        self.slot(generation).notify_waiters();
    }
}

struct Gathering {
    /// Event lines, each newline-terminated.
    lines: Vec<u8>,
    events: u64,
    /// The number the gathering batch is committed as (counted from 1 since open; not the
    /// chain's batch number).
    generation: u64,
    closed: bool,
}

/// The open trail. Cheap to share; dropping the handle lets the writer finish what is
/// queued and stop.
pub struct AuditLog {
    queue: Arc<Queue>,
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
        let queue = Arc::new(Queue {
            gathering: std::sync::Mutex::new(Gathering {
                lines: Vec::new(),
                events: 0,
                generation: 1,
                closed: false,
            }),
            work: Notify::new(),
            room: Notify::new(),
            committed: AtomicU64::new(0),
            gone: AtomicBool::new(false),
            batch_done: std::array::from_fn(|_| Notify::new()),
            failed: std::sync::Mutex::new(std::collections::VecDeque::new()),
            any_failed: AtomicBool::new(false),
        });
        let broken = Arc::new(AtomicBool::new(false));
        let durable_batches = Arc::new(AtomicU64::new(0));
        let syncer = match settings.durability {
            Durability::Write => Some(
                Syncer::start(state.file.clone(), broken.clone(), durable_batches.clone())
                    .map_err(AuditError::Io)?,
            ),
            Durability::Sync => None,
        };
        let writer = Writer {
            settings,
            state,
            queue: queue.clone(),
            broken: broken.clone(),
            durable_batches: durable_batches.clone(),
            syncer,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if writer.syncer.is_some() => {
                runtime.spawn(writer.run_on_runtime());
            }
            _ => {
                // `Durability::Sync`: the writer blocks in every sync, so on a thread (and a
                // runtime) of its own.
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .map_err(AuditError::Io)?;
                std::thread::Builder::new()
                    .name("trent-audit-writer".into())
                    .spawn(move || runtime.block_on(writer.run_on_runtime()))
                    .map_err(AuditError::Io)?;
            }
        }
        Ok(Self {
            queue,
            ids: EventIds::new()?,
            broken,
            durable_batches,
        })
    }

    /// Appends one request's event lines (each newline-terminated); the future resolves once
    /// they are on disk (as `Durability` says). The lines are copied into the batch before
    /// this returns (unless the batch is full: then a copy waits for room), so the caller may
    /// reuse its buffer at once.
    pub fn append<'s>(
        &'s self,
        lines: &[u8],
    ) -> impl std::future::Future<Output = Result<(), AuditError>> + Send + use<'s> {
        let pushed = if self.broken.load(Ordering::Relaxed) {
            Err(AuditError::Unavailable)
        } else {
            self.queue.push(lines)
        };
        let waiting = matches!(pushed, Ok(None)).then(|| lines.to_vec());
        async move {
            let generation = match pushed? {
                Some(generation) => generation,
                None => {
                    self.push_when_room(waiting.as_deref().unwrap_or_default())
                        .await?
                }
            };
            self.committed(generation).await
        }
    }

    /// Pushes `lines` once the writer has taken the full batch.
    async fn push_when_room(&self, lines: &[u8]) -> Result<u64, AuditError> {
        let queue = &*self.queue;
        loop {
            // Registered before looking again, so a release of room in between is not missed.
            let room = queue.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if let Some(generation) = queue.push(lines)? {
                return Ok(generation);
            }
            room.await;
        }
    }

    /// Waits for the batch `generation`: whether it was written.
    async fn committed(&self, generation: u64) -> Result<(), AuditError> {
        let queue = &*self.queue;
        let slot = queue.slot(generation);
        let finished = loop {
            // Created before looking: a `Notified` receives every `notify_waiters` from its
            // creation on, so a commit between the look and the await is not missed.
            let woken = slot.notified();
            if queue.committed.load(Ordering::SeqCst) >= generation {
                break true;
            }
            if queue.gone.load(Ordering::SeqCst) {
                break false;
            }
            // Woken by this batch's commit (or, for a straggler, by a batch that shares the
            // slot): look again.
            woken.await;
        };
        let failed = queue.any_failed.load(Ordering::Acquire)
            && queue
                .failed
                .lock()
                .map_or(true, |f| f.contains(&generation));
        if finished && !failed {
            Ok(())
        } else {
            Err(AuditError::Unavailable)
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

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Ok(mut g) = self.queue.gathering.lock() {
            g.closed = true;
        }
        self.queue.work.notify_one();
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
    /// Shared with the sync thread (`Durability::Write`), so asking for a sync needs no
    /// duplicated descriptor per batch.
    file: Arc<File>,
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
            let file = Arc::new(open_append(&path)?);
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
            file: Arc::new(file),
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

/// The writer's reusable buffer (swapped with the gathering one each batch).
#[derive(Default)]
struct Batch {
    buffer: Vec<u8>,
    last_prune: Option<Instant>,
}

struct Writer {
    settings: AuditSettings,
    state: WriterState,
    queue: Arc<Queue>,
    broken: Arc<AtomicBool>,
    durable_batches: Arc<AtomicU64>,
    /// `Durability::Write`: the thread that syncs behind the writer, so a write never waits
    /// for the previous batch's sync.
    syncer: Option<Arc<Syncer>>,
}

/// `Durability::Write`: the thread that syncs the segment behind the writer. Asking for a sync
/// is a flag (no syscall) unless the thread is idle and must be woken.
struct Syncer {
    /// The segment being written (replaced when a new one begins).
    file: std::sync::Mutex<Arc<File>>,
    /// A write since the last sync began.
    wanted: AtomicBool,
    /// The sync thread is about to wait, or waits, on `wake`.
    idle: AtomicBool,
    lock: std::sync::Mutex<()>,
    wake: std::sync::Condvar,
    stop: AtomicBool,
}

impl Syncer {
    /// Starts the sync thread for the segment `file`.
    fn start(
        file: Arc<File>,
        broken: Arc<AtomicBool>,
        durable_batches: Arc<AtomicU64>,
    ) -> std::io::Result<Arc<Self>> {
        let syncer = Arc::new(Self {
            file: std::sync::Mutex::new(file),
            wanted: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            lock: std::sync::Mutex::new(()),
            wake: std::sync::Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let this = syncer.clone();
        std::thread::Builder::new()
            .name("trent-audit-sync".into())
            .spawn(move || this.run(&broken, &durable_batches))?;
        Ok(syncer)
    }

    /// Asks for a sync of what was written; requests made while a sync runs are served by one
    /// more sync.
    fn request(&self) {
        // SeqCst pairs with `wait_for_request`: either this sees the thread idle and wakes
        // it, or the thread sees this flag before it waits.
        self.wanted.store(true, Ordering::SeqCst);
        if self.idle.load(Ordering::SeqCst)
            && let Ok(_guard) = self.lock.lock()
        {
            self.wake.notify_one();
        }
    }

    /// The segment syncs write to from now on.
    fn follow(&self, file: Arc<File>) {
        if let Ok(mut current) = self.file.lock() {
            *current = file;
        }
    }

    /// Waits until a sync is wanted; false when the thread is to stop.
    fn wait_for_request(&self) -> bool {
        let Ok(mut guard) = self.lock.lock() else {
            return false;
        };
        loop {
            if self.wanted.swap(false, Ordering::SeqCst) {
                return true;
            }
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            self.idle.store(true, Ordering::SeqCst);
            if self.wanted.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst) {
                self.idle.store(false, Ordering::SeqCst);
                continue;
            }
            guard = match self.wake.wait(guard) {
                Ok(g) => g,
                Err(_) => return false,
            };
            self.idle.store(false, Ordering::SeqCst);
        }
    }

    fn run(&self, broken: &AtomicBool, durable_batches: &AtomicU64) {
        while self.wait_for_request() {
            let Some(file) = self.file.lock().ok().map(|f| f.clone()) else {
                return;
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
        // Requests still waiting learn that their batch will never be written.
        self.queue.gone.store(true, Ordering::SeqCst);
        for slot in &self.queue.batch_done {
            slot.notify_waiters();
        }
        if let Some(syncer) = &self.syncer {
            // A last sync of what was written, then the sync thread ends.
            syncer.wanted.store(true, Ordering::SeqCst);
            syncer.stop.store(true, Ordering::SeqCst);
            if let Ok(_guard) = syncer.lock.lock() {
                syncer.wake.notify_one();
            }
        }
    }
}

impl Writer {
    /// The writer: on the server's runtime for `Durability::Write` (it only writes to the page
    /// cache, a short syscall per batch, and the sync thread does the rest), so neither the
    /// buffer nor the answers cross threads; on a thread of its own for `Durability::Sync`.
    async fn run_on_runtime(mut self) {
        let mut batch = Batch::default();
        loop {
            self.queue.work.notified().await;
            // One scheduler round first: the requests running now append their records too,
            // so a batch (and its write syscall, the writer's main cost) carries more.
            tokio::task::yield_now().await;
            let Some((events, generation, closed)) = self.take(&mut batch.buffer) else {
                return;
            };
            if events > 0 {
                self.queue.room.notify_waiters();
                if batch
                    .last_prune
                    .is_none_or(|t| t.elapsed() >= PRUNE_INTERVAL)
                {
                    batch.last_prune = Some(Instant::now());
                    if let Err(e) = prune(&self.settings, &self.state.path) {
                        tracing::warn!(target: "trent::audit", error = %e, "pruning the audit trail failed");
                    }
                }
                let ok =
                    !self.broken.load(Ordering::Relaxed) && self.commit(&mut batch.buffer, events);
                if !ok && let Ok(mut failed) = self.queue.failed.lock() {
                    if failed.len() >= FAILURES_KEPT {
                        failed.pop_front();
                    }
                    failed.push_back(generation);
                    self.queue.any_failed.store(true, Ordering::Release);
                }
                self.queue.finish(generation);
            }
            if closed {
                return;
            }
        }
    }

    /// Swaps the gathering lines into `buffer`: (events, the batch's generation, whether the
    /// trail is closing). `None` when the buffer cannot be locked.
    fn take(&self, buffer: &mut Vec<u8>) -> Option<(u64, u64, bool)> {
        buffer.clear();
        let mut g = self.queue.gathering.lock().ok()?;
        std::mem::swap(&mut g.lines, buffer);
        let events = std::mem::take(&mut g.events);
        let generation = g.generation;
        if events > 0 {
            g.generation = g.generation.saturating_add(1);
        }
        Some((events, generation, g.closed))
    }

    /// Appends the batch and its digest line and syncs it — or (`Durability::Write`) asks
    /// for the sync and returns after the write. On a failed write, undoes the partial append
    /// (or, if that fails too, marks the trail broken) and returns false: the batch's requests
    /// fail.
    fn commit(&mut self, buffer: &mut Vec<u8>, events: u64) -> bool {
        let mut hasher = BatchHasher::new(&self.state.previous);
        hasher.update(buffer);
        let digest = hasher.finish();
        format::write_digest_line(
            buffer,
            self.state.next_batch,
            events,
            &self.state.previous,
            &digest,
        );
        let mut written = (&*self.state.file).write_all(buffer);
        if written.is_ok() {
            written = match &self.syncer {
                // In the kernel's page cache: survives the process (kill -9); the sync thread
                // makes it survive a power loss moments later.
                Some(syncer) => {
                    syncer.request();
                    Ok(())
                }
                None => self.state.file.sync_data(),
            };
        }
        if let Err(e) = written {
            tracing::error!(target: "trent::audit", error = %e, "writing the audit trail failed");
            let undone = self
                .state
                .file
                .set_len(self.state.size)
                .and_then(|()| (&*self.state.file).seek(SeekFrom::End(0)).map(|_| ()));
            if undone.is_err() {
                self.broken.store(true, Ordering::Relaxed);
            }
            return false;
        }
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
        true
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
        let file = Arc::new(open_append(&path)?);
        sync_dir(&self.settings.directory)?;
        if let Some(syncer) = &self.syncer {
            syncer.follow(file.clone());
        }
        self.state.file = file;
        self.state.path = path;
        self.state.size = 0;
        Ok(())
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
