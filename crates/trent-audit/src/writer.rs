//! The appending side: a request copies its event lines into the segment's shared memory
//! mapping under one short lock (`segment.rs`), and a sealer closes each batch a few
//! milliseconds later with its digest line.
//!
//! Once copied, a record is in the kernel's page cache: it survives the process being killed
//! (kill -9) or crashing, so with `Durability::Write` (the default) a request's answer waits
//! for nothing — no batch, no wake-up, no syscall. The sealer hashes the batch as read back
//! from the file, outside the lock, so a request's time under the lock is its copy alone. A sync thread
//! `fdatasync`s behind the sealer (at most every [`AuditSettings::sync_interval`]): what a power loss may take
//! is the batches since the last completed sync. With `Durability::Sync` a request waits for a
//! sync that began after its copy, so many requests share one sync and none waits for a write
//! of its own. (Before the mapping, every request waited for its batch's `write`:
//! `docs/benchmarks.md`, "Is it the wait?", has what that wait cost.)
//!
//! At open, records after the last digest line of the newest segment (copied, never sealed:
//! the process died first) are sealed as one more batch; only a last line without its newline,
//! a copy the crash interrupted and so a request never answered, is cut off.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use crate::AuditError;
use crate::format::{self, BatchHasher, DigestLine, GENESIS, Line};
use crate::segment::{self, MappedSegment};

/// Room kept in a segment past `segment_bytes`, so the batch that crosses it still fits
/// while the sealer begins the next segment; past it a request waits for room (backpressure).
pub const SEGMENT_HEADROOM: usize = 4 << 20;
/// The longest digest line (`format::write_digest_line` with 20-digit numbers), reserved with
/// every record so the batch's seal always fits.
const DIGEST_LINE_MAX: usize = 256;
/// How long a batch gathers after its first record before it is sealed.
const SEAL_SPACING: Duration = Duration::from_millis(5);
/// `Durability::Write`: the least time from one sync's start to the next, by default. Each
/// round costs CPU however little it carries (write-back, a device flush, interrupts): going
/// from 5 to 25 ms took the median server CPU per audited Encrypt from 31.3 to 27.1 µs over 10
/// full-stack runs each (docs/benchmarks.md, "Where the audit's cost goes now").
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(25);
/// How often the sealer looks for segments past retention.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// The file recording the last batch removed by retention, so `verify` knows where the
/// remaining chain must start.
pub const PRUNED_FILE: &str = "pruned.json";

/// When a request's answer may go: what its record has survived by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After an `fdatasync` that began after its record was copied: survives a power loss or
    /// kernel crash.
    Sync,
    /// As soon as its record is copied into the mapped segment (the kernel's page cache), with
    /// the sync a few milliseconds behind: survives the process being killed (kill -9) or
    /// crashing; a power loss or kernel crash may lose the records since the last sync.
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
    /// `Durability::Write`: the least time from one sync's start to the next, so what a
    /// power loss may take (`Durability::Sync` syncs as soon as a request waits).
    pub sync_interval: Duration,
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
            sync_interval: DEFAULT_SYNC_INTERVAL,
        }
    }

    /// The most a segment's mapping holds.
    fn capacity(&self) -> usize {
        usize::try_from(self.segment_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(SEGMENT_HEADROOM)
    }
}

/// The unsealed end of the trail: the segment being written and the batch gathering in it.
struct Tail {
    /// `None` once the trail is closed.
    segment: Option<MappedSegment>,
    /// Records in the gathering batch.
    events: u64,
    next_batch: u64,
    previous: [u8; 32],
    /// The digest line being written (reused).
    digest_line: Vec<u8>,
}

/// What a push did.
enum Pushed {
    /// Copied; `first` when it began a batch (the sealer is to be woken).
    Copied { first: bool },
    /// The segment is full: wait for the sealer to begin the next one.
    Full,
}

impl Tail {
    fn push(&mut self, lines: &[u8]) -> Result<Pushed, AuditError> {
        let segment = self.segment.as_mut().ok_or(AuditError::Unavailable)?;
        let needed = lines.len().saturating_add(DIGEST_LINE_MAX);
        if !segment.has_room(needed) {
            if segment.used() == 0 {
                return Err(AuditError::Io(std::io::Error::other(
                    "an audit record larger than a segment",
                )));
            }
            return Ok(Pushed::Full);
        }
        // The room for the seal is reserved with the record: sealing never grows the file.
        segment.reserve(needed)?;
        segment.append(lines)?;
        let first = self.events == 0;
        self.events = self.events.saturating_add(count_newlines(lines));
        Ok(Pushed::Copied { first })
    }

    /// Seals the gathering batch (whose digest is `digest`) with its digest line.
    fn seal(&mut self, digest: [u8; 32]) -> Result<(), AuditError> {
        let segment = self.segment.as_mut().ok_or(AuditError::Unavailable)?;
        self.digest_line.clear();
        format::write_digest_line(
            &mut self.digest_line,
            self.next_batch,
            self.events,
            &self.previous,
            &digest,
        );
        segment.append(&self.digest_line)?;
        self.previous = digest;
        self.next_batch = self.next_batch.saturating_add(1);
        self.events = 0;
        Ok(())
    }
}

/// The sealer's running digest of the gathering batch, kept outside the tail's lock: the
/// records are hashed as read back from the file (the page cache the mapping writes into), so
/// a request's time under the lock is its copy alone.
struct Sealing {
    hasher: BatchHasher,
    /// The segment offset up to which the gathering batch is hashed.
    hashed_to: usize,
    buffer: Vec<u8>,
}

impl Sealing {
    /// Hashes the records in `file` from `hashed_to` up to `upto`.
    fn catch_up(&mut self, file: &File, upto: usize) -> std::io::Result<()> {
        const CHUNK: usize = 64 << 10;
        while self.hashed_to < upto {
            let n = upto.saturating_sub(self.hashed_to).min(CHUNK);
            self.buffer.resize(n, 0);
            file.read_exact_at(
                &mut self.buffer,
                u64::try_from(self.hashed_to).unwrap_or(u64::MAX),
            )?;
            self.hasher.update(&self.buffer);
            self.hashed_to = self.hashed_to.saturating_add(n);
        }
        Ok(())
    }

    /// Seals the tail's gathering batch (the caller holds both locks): false when it holds no
    /// record. Only what arrived since the last `catch_up` is hashed under the tail's lock.
    fn seal(&mut self, tail: &mut Tail) -> Result<bool, AuditError> {
        if tail.events == 0 {
            return Ok(false);
        }
        let segment = tail.segment.as_ref().ok_or(AuditError::Unavailable)?;
        self.catch_up(segment.file(), segment.used())?;
        let hasher = std::mem::replace(&mut self.hasher, BatchHasher::new(&GENESIS));
        let digest = hasher.finish();
        tail.seal(digest)?;
        self.hasher = BatchHasher::new(&digest);
        self.hashed_to = tail.segment.as_ref().map_or(0, MappedSegment::used);
        Ok(true)
    }
}

/// What the requests, the sealer and the sync thread share.
struct Shared {
    settings: AuditSettings,
    /// Shared with the sync thread, which releases written pages before each sync.
    tail: Arc<std::sync::Mutex<Tail>>,
    /// Taken before `tail` by whoever seals.
    sealing: std::sync::Mutex<Sealing>,
    /// Wakes the sealer: a batch began, a request waits for room, or the trail is closing.
    seal_wanted: Notify,
    /// A request found the segment full.
    roll_wanted: AtomicBool,
    /// Wakes requests waiting for room.
    room: Notify,
    closed: AtomicBool,
    /// Set when a sync failed: records acknowledged since may not be on disk, so every later
    /// append fails (fail closed).
    broken: Arc<AtomicBool>,
    syncer: Arc<Syncer>,
    sealed_batches: AtomicU64,
}

impl Shared {
    /// Seals the gathering batch, asks for its sync, and begins the next segment once this one
    /// has reached its size (or a request found it full).
    fn seal(&self) -> Result<(), AuditError> {
        let mut sealing = self.sealing.lock().map_err(|_| AuditError::Unavailable)?;
        // Hash what gathered so far without holding up the requests.
        let (file, upto) = {
            let tail = self.tail.lock().map_err(|_| AuditError::Unavailable)?;
            match tail.segment.as_ref() {
                Some(segment) => (segment.file().clone(), segment.used()),
                None => return Ok(()),
            }
        };
        sealing.catch_up(&file, upto)?;
        let mut tail = self.tail.lock().map_err(|_| AuditError::Unavailable)?;
        if sealing.seal(&mut tail)? {
            self.sealed_batches.fetch_add(1, Ordering::Relaxed);
            self.syncer.request();
        }
        let Some(segment) = tail.segment.as_ref() else {
            return Ok(());
        };
        let full = u64::try_from(segment.used()).unwrap_or(u64::MAX) >= self.settings.segment_bytes;
        if !full && !self.roll_wanted.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let path = self
            .settings
            .directory
            .join(format::segment_name(tail.next_batch));
        let next = MappedSegment::create(path, self.settings.capacity())?;
        let next_file = next.file().clone();
        let finished = tail.segment.replace(next);
        drop(tail);
        sealing.hashed_to = 0;
        self.room.notify_waiters();
        // The finished segment is cut to its text and synced by the sync thread (with the new
        // one, in the same round), off the request path and off the runtime.
        self.syncer.roll(next_file, finished);
        sync_dir(&self.settings.directory)?;
        Ok(())
    }

    /// Seals what gathered and finishes the segment: the trail takes no more records.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(segment) = self.seal_and_take() {
            // Cut to its text now, so the files are whole when this returns.
            match segment.finish() {
                Ok(file) => self.syncer.roll(file, None),
                Err(e) => {
                    tracing::error!(target: "trent::audit", error = %e, "finishing the audit segment failed");
                }
            }
        }
        self.syncer.stop();
        self.seal_wanted.notify_one();
        self.room.notify_waiters();
    }

    /// Seals the last batch and takes the segment out of the tail (no record lands after).
    fn seal_and_take(&self) -> Option<MappedSegment> {
        let mut sealing = self.sealing.lock().ok()?;
        let mut tail = self.tail.lock().ok()?;
        if let Err(e) = sealing.seal(&mut tail) {
            tracing::error!(target: "trent::audit", error = %e, "sealing the audit trail's last batch failed");
        }
        tail.segment.take()
    }
}

/// The open trail. Cheap to share; dropping the handle seals what gathered, finishes the
/// segment, and lets the sync thread make it durable and stop.
pub struct AuditLog {
    shared: Arc<Shared>,
    ids: EventIds,
}

impl AuditLog {
    /// Opens (or creates) the trail in `settings.directory` and starts its sealer and its
    /// sync thread.
    pub fn open(settings: AuditSettings) -> Result<Self, AuditError> {
        create_private_dir(&settings.directory)?;
        let tail = open_tail(&settings)?;
        let broken = Arc::new(AtomicBool::new(false));
        let file = tail
            .segment
            .as_ref()
            .map(|s| s.file().clone())
            .ok_or(AuditError::Unavailable)?;
        let sealing = Sealing {
            hasher: BatchHasher::new(&tail.previous),
            hashed_to: tail.segment.as_ref().map_or(0, MappedSegment::used),
            buffer: Vec::new(),
        };
        let tail = Arc::new(std::sync::Mutex::new(tail));
        let spacing = match settings.durability {
            Durability::Write => settings.sync_interval,
            Durability::Sync => Duration::ZERO,
        };
        let syncer =
            Syncer::start(file, tail.clone(), spacing, broken.clone()).map_err(AuditError::Io)?;
        let shared = Arc::new(Shared {
            settings,
            tail,
            sealing: std::sync::Mutex::new(sealing),
            seal_wanted: Notify::new(),
            roll_wanted: AtomicBool::new(false),
            room: Notify::new(),
            closed: AtomicBool::new(false),
            broken,
            syncer,
            sealed_batches: AtomicU64::new(0),
        });
        let sealer = Sealer {
            shared: shared.clone(),
            last_prune: None,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(sealer.run());
            }
            Err(_) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map_err(AuditError::Io)?;
                std::thread::Builder::new()
                    .name("trent-audit-sealer".into())
                    .spawn(move || runtime.block_on(sealer.run()))
                    .map_err(AuditError::Io)?;
            }
        }
        Ok(Self {
            shared,
            ids: EventIds::new()?,
        })
    }

    /// Appends one request's event lines (each newline-terminated). They are copied into the
    /// segment before this returns — from then on they survive the process — unless the
    /// segment is full (then a copy waits for the next one). The future resolves at once with
    /// `Durability::Write`, after a sync with `Durability::Sync`.
    pub fn append<'s>(
        &'s self,
        lines: &[u8],
    ) -> impl std::future::Future<Output = Result<(), AuditError>> + Send + use<'s> {
        let pushed = self.push(lines);
        let waiting = matches!(pushed, Ok(false)).then(|| lines.to_vec());
        async move {
            if !pushed? {
                self.push_when_room(waiting.as_deref().unwrap_or_default())
                    .await?;
            }
            match self.shared.settings.durability {
                Durability::Write => Ok(()),
                Durability::Sync => self.shared.syncer.synced_after_now().await,
            }
        }
    }

    /// Copies `lines` into the segment: false when it is full.
    fn push(&self, lines: &[u8]) -> Result<bool, AuditError> {
        let shared = &*self.shared;
        if shared.broken.load(Ordering::Relaxed) {
            return Err(AuditError::Unavailable);
        }
        let pushed = shared
            .tail
            .lock()
            .map_err(|_| AuditError::Unavailable)?
            .push(lines)?;
        match pushed {
            Pushed::Copied { first } => {
                if first {
                    shared.seal_wanted.notify_one();
                }
                Ok(true)
            }
            Pushed::Full => {
                shared.roll_wanted.store(true, Ordering::SeqCst);
                shared.seal_wanted.notify_one();
                Ok(false)
            }
        }
    }

    /// Copies `lines` once the sealer has begun the next segment.
    async fn push_when_room(&self, lines: &[u8]) -> Result<(), AuditError> {
        loop {
            // Registered before looking again, so a release of room in between is not missed.
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.push(lines)? {
                return Ok(());
            }
            if self.shared.closed.load(Ordering::SeqCst) {
                return Err(AuditError::Unavailable);
            }
            room.await;
        }
    }

    /// Seals the gathering batch now, instead of within [`SEAL_SPACING`] (for readers that
    /// take only sealed batches, such as the shipper, when a test or a shutdown needs them).
    pub fn seal(&self) -> Result<(), AuditError> {
        self.shared.seal()
    }

    /// A fresh event id (UUID form).
    pub fn event_id(&self) -> EventId {
        self.ids.next()
    }

    /// Batches sealed since the trail was opened.
    pub fn sealed_batches(&self) -> u64 {
        self.shared.sealed_batches.load(Ordering::Relaxed)
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// The sealer: seals each batch [`SEAL_SPACING`] after its first record (so a batch carries
/// what arrives meanwhile), begins new segments, and prunes. On the server's runtime: its
/// work is a digest's finish and a copy per batch; syncs are the sync thread's.
struct Sealer {
    shared: Arc<Shared>,
    last_prune: Option<Instant>,
}

impl Sealer {
    async fn run(mut self) {
        loop {
            self.shared.seal_wanted.notified().await;
            if self.shared.closed.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(SEAL_SPACING).await;
            if let Err(e) = self.shared.seal() {
                tracing::error!(target: "trent::audit", error = %e, "sealing the audit trail failed");
            }
            if self
                .last_prune
                .is_none_or(|t| t.elapsed() >= PRUNE_INTERVAL)
            {
                self.last_prune = Some(Instant::now());
                let current = self
                    .shared
                    .tail
                    .lock()
                    .ok()
                    .and_then(|t| t.segment.as_ref().map(|s| s.path().to_path_buf()));
                if let Some(current) = current
                    && let Err(e) = prune(&self.shared.settings, &current)
                {
                    tracing::warn!(target: "trent::audit", error = %e, "pruning the audit trail failed");
                }
            }
        }
    }
}

/// The thread that syncs the trail. Each round syncs the segment being written and finishes
/// the segments the sealer retired (cut to their text, synced), so a round that began after a
/// record was copied covers it wherever it is.
struct Syncer {
    state: std::sync::Mutex<SyncState>,
    wake: std::sync::Condvar,
    /// Rounds begun (the number of the newest) and completed, successful or not.
    begun: AtomicU64,
    completed: AtomicU64,
    /// Wakes `Durability::Sync` requests when a round completes.
    done: Notify,
    /// The thread ended: no round will complete any more.
    gone: AtomicBool,
    broken: Arc<AtomicBool>,
}

struct SyncState {
    current: Arc<File>,
    retired: Vec<MappedSegment>,
    wanted: bool,
    stop: bool,
}

impl Syncer {
    /// Starts the sync thread for the segment `file` (mapped in `tail`); rounds begin at most
    /// every `spacing`.
    fn start(
        file: Arc<File>,
        tail: Arc<std::sync::Mutex<Tail>>,
        spacing: Duration,
        broken: Arc<AtomicBool>,
    ) -> std::io::Result<Arc<Self>> {
        let syncer = Arc::new(Self {
            state: std::sync::Mutex::new(SyncState {
                current: file,
                retired: Vec::new(),
                wanted: false,
                stop: false,
            }),
            wake: std::sync::Condvar::new(),
            begun: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            done: Notify::new(),
            gone: AtomicBool::new(false),
            broken,
        });
        let this = syncer.clone();
        std::thread::Builder::new()
            .name("trent-audit-sync".into())
            .spawn(move || {
                this.run(&tail, spacing);
                this.gone.store(true, Ordering::SeqCst);
                this.done.notify_waiters();
            })?;
        Ok(syncer)
    }

    /// Asks for a round: the number of the round that will cover what was written before.
    fn request(&self) -> u64 {
        let Ok(mut state) = self.state.lock() else {
            return u64::MAX;
        };
        state.wanted = true;
        self.wake.notify_one();
        // The next round is begun under this lock, after this request.
        self.begun.load(Ordering::SeqCst).saturating_add(1)
    }

    /// The sealer began a new segment: rounds sync `file` from now on, and the next one
    /// finishes `finished`.
    fn roll(&self, file: Arc<File>, finished: Option<MappedSegment>) {
        if let Ok(mut state) = self.state.lock() {
            state.current = file;
            state.retired.extend(finished);
            state.wanted = true;
            self.wake.notify_one();
        }
    }

    /// One last round, then the thread ends.
    fn stop(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.stop = true;
            state.wanted = true;
            self.wake.notify_one();
        }
    }

    /// `Durability::Sync`: waits for a round that began after what the caller wrote.
    async fn synced_after_now(&self) -> Result<(), AuditError> {
        let round = self.request();
        loop {
            // Created before looking: a `Notified` receives every `notify_waiters` from its
            // creation on, so a round completing between the look and the await is not missed.
            let woken = self.done.notified();
            if self.broken.load(Ordering::SeqCst) {
                return Err(AuditError::Unavailable);
            }
            if self.completed.load(Ordering::SeqCst) >= round {
                return Ok(());
            }
            if self.gone.load(Ordering::SeqCst) {
                return Err(AuditError::Unavailable);
            }
            woken.await;
        }
    }

    fn run(&self, tail: &std::sync::Mutex<Tail>, spacing: Duration) {
        loop {
            let (round, current, retired, last) = {
                let Ok(mut state) = self.state.lock() else {
                    return;
                };
                while !state.wanted {
                    state = match self.wake.wait(state) {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                }
                state.wanted = false;
                let round = self.begun.fetch_add(1, Ordering::SeqCst).saturating_add(1);
                (
                    round,
                    state.current.clone(),
                    std::mem::take(&mut state.retired),
                    state.stop,
                )
            };
            let started = Instant::now();
            // The pages written so far lose their mapping first: writing back a mapped page
            // costs a TLB shootdown per page (`MappedSegment::release_written`).
            if let Ok(mut tail) = tail.lock()
                && let Some(segment) = tail.segment.as_mut()
                && let Err(e) = segment.release_written()
            {
                tracing::warn!(target: "trent::audit", error = %e, "releasing written audit pages failed");
            }
            let mut synced = Ok(());
            for segment in retired {
                synced = synced.and(segment.finish().and_then(|file| file.sync_data()));
            }
            synced = synced.and(current.sync_data());
            if let Err(e) = synced {
                // Acknowledged records may not be on disk: refuse all later ones.
                tracing::error!(target: "trent::audit", error = %e, "syncing the audit trail failed; refusing further records");
                self.broken.store(true, Ordering::SeqCst);
            }
            self.completed.store(round, Ordering::SeqCst);
            self.done.notify_waiters();
            if last {
                return;
            }
            // Each sync costs CPU (I/O submission, interrupts) however little it carries;
            // with `Durability::Write` no answer waits for it, so rounds are spaced.
            if let Some(rest) = spacing.checked_sub(started.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    }
}

/// Opens the newest segment for appending (or creates the first), sealing and cutting what a
/// crash left after its last digest line (`segment::recover`).
fn open_tail(settings: &AuditSettings) -> Result<Tail, AuditError> {
    let segments = format::list_segments(&settings.directory)?;
    let (segment, next_batch, previous) = match segments.last() {
        None => {
            let path = settings.directory.join(format::segment_name(1));
            let segment = MappedSegment::create(path, settings.capacity())?;
            sync_dir(&settings.directory)?;
            (segment, 1, GENESIS)
        }
        Some((_, path)) => {
            let mut text = Vec::new();
            let mut file = OpenOptions::new().read(true).write(true).open(path)?;
            file.read_to_end(&mut text)?;
            let recovered = segment::recover(&text, || {
                previous_segment_end(&segments).map_err(|e| e.to_string())
            })
            .map_err(|e| AuditError::Corrupt(format!("{}: {e}", path.display())))?;
            if recovered.cut_bytes > 0 {
                tracing::warn!(
                    target: "trent::audit",
                    segment = %path.display(),
                    cut_bytes = recovered.cut_bytes,
                    "cutting off a record a crash interrupted while it was copied (its request was never answered)"
                );
            }
            let mut used = recovered.text_len;
            if let Some(seal) = &recovered.seal {
                tracing::info!(
                    target: "trent::audit",
                    segment = %path.display(),
                    events = recovered.sealed_events,
                    "sealing the records the last run wrote after its last digest line"
                );
                file.write_all_at(seal, u64::try_from(used).unwrap_or(u64::MAX))?;
                used = used.saturating_add(seal.len());
            }
            // Cut to the text (a torn record, the zeros grown ahead) and made durable, with
            // the seal if one was written.
            if recovered.seal.is_some() || used != text.len() {
                file.set_len(u64::try_from(used).unwrap_or(u64::MAX))?;
                file.sync_all()?;
            }
            let segment = MappedSegment::map(file, path.clone(), used, settings.capacity())?;
            (segment, recovered.next_batch, recovered.previous)
        }
    };
    Ok(Tail {
        segment: Some(segment),
        events: 0,
        next_batch,
        previous,
        digest_line: Vec::with_capacity(DIGEST_LINE_MAX),
    })
}

fn count_newlines(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u64::MAX)
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
