//! The segment being written, mapped into memory (`MAP_SHARED`): a request's record is copied
//! into the mapping, and once the copy is done it is in the kernel's page cache, where it
//! survives the process being killed — without a syscall, a wake-up or a wait per request.
//!
//! The file is grown ahead of the writes in steps of [`GROW_STEP`], its blocks allocated with
//! `fallocate`, so a full disk is an error when growing, never a `SIGBUS` at a write into a
//! hole. The bytes past the last record are zeros, which every reader takes as the end of the
//! text ([`format::content_end`]). Finishing a segment truncates the file to what was written.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format;

/// How far the file grows ahead of the last record: one growth per ~1,000 records.
pub const GROW_STEP: usize = 1 << 20;

/// A segment file mapped for appending.
pub struct MappedSegment {
    file: Arc<File>,
    path: PathBuf,
    map: memmap2::MmapMut,
    /// Bytes written (records and digest lines).
    used: usize,
    /// The file's length: `used` plus zeros grown ahead.
    len: usize,
    /// The mapping's length: the most this segment can hold.
    capacity: usize,
    /// Below this offset the mapping's pages were released ([`Self::release_written`]).
    released: usize,
}

impl MappedSegment {
    /// Creates the segment file `path` (which must not exist) and maps it.
    pub fn create(path: PathBuf, capacity: usize) -> io::Result<Self> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        Self::map(file, path, 0, capacity)
    }

    /// Maps `file`, whose first `used` bytes are its text (the file is cut to them), to hold
    /// up to `capacity` bytes.
    pub fn map(file: File, path: PathBuf, used: usize, capacity: usize) -> io::Result<Self> {
        let capacity = capacity.max(used);
        file.set_len(u64::try_from(used).map_err(io::Error::other)?)?;
        // SAFETY: `memmap2` leaves to the caller that nothing else truncates or writes the
        // file while it is mapped. The file is a segment of this trail, created 0600 in the
        // trail's 0700 directory and written only by this process, through this mapping
        // alone (readers use read(2), never the mapping); this code truncates it only in
        // `finish`, after the mapping is gone; and the mapping is only touched below `len`,
        // the file's length, so never past its end. Someone editing the live segment by hand
        // breaks that (as it breaks the trail): at worst the process gets `SIGBUS`.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().len(capacity).map_mut(&file)? };
        Ok(Self {
            file: Arc::new(file),
            path,
            map,
            used,
            len: used,
            capacity,
            released: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Bytes written so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Whether `bytes` more fit in the segment.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.used
            .checked_add(bytes)
            .is_some_and(|end| end <= self.capacity)
    }

    /// Makes sure `bytes` more can be appended without growing the file (grows it if not).
    pub fn reserve(&mut self, bytes: usize) -> io::Result<()> {
        let end = self
            .used
            .checked_add(bytes)
            .filter(|&end| end <= self.capacity)
            .ok_or_else(|| io::Error::other("the audit segment is full"))?;
        if end > self.len {
            let grown = end.saturating_add(GROW_STEP).min(self.capacity);
            allocate(&self.file, self.len, grown)?;
            self.len = grown;
        }
        Ok(())
    }

    /// Copies `bytes` after the text: room for them must have been reserved.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self
            .used
            .checked_add(bytes.len())
            .filter(|&end| end <= self.len)
            .ok_or_else(|| io::Error::other("appending past the reserved room"))?;
        let target = self
            .map
            .get_mut(self.used..end)
            .ok_or_else(|| io::Error::other("appending past the mapping"))?;
        target.copy_from_slice(bytes);
        self.used = end;
        Ok(())
    }

    /// Drops this process's page-table entries for the pages wholly written (they stay in the
    /// page cache and the file). A sync writes a mapped page back only after write-protecting
    /// each mapping of it, one TLB shootdown (an interrupt to every other CPU running the
    /// process) per page: measured at ~5% of the server's CPU under load. Released first, the
    /// pages have no mapping, and this costs one shootdown per call for the whole range.
    pub fn release_written(&mut self) -> io::Result<()> {
        let page = rustix::param::page_size();
        let end = self.used / page * page;
        if end <= self.released {
            return Ok(());
        }
        // SAFETY: `MADV_DONTNEED` on a shared file mapping discards only page-table entries:
        // the bytes stay in the page cache and the file, and touching the range again would
        // fault the same bytes back in (for a private mapping it would discard writes, hence
        // memmap2's `unsafe`). Nothing borrows the range: the mapping is only reached through
        // `&mut self`, and this code never reads it; writes go past `used`, beyond the range.
        #[allow(unsafe_code)]
        unsafe {
            self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                self.released,
                end.saturating_sub(self.released),
            )?;
        }
        self.released = end;
        Ok(())
    }

    /// Unmaps the segment and cuts the file to its text; the caller syncs it.
    pub fn finish(self) -> io::Result<Arc<File>> {
        let Self {
            file, map, used, ..
        } = self;
        drop(map);
        file.set_len(u64::try_from(used).map_err(io::Error::other)?)?;
        Ok(file)
    }
}

/// Grows `file` from `from` to `to` bytes of zeros, its blocks allocated.
fn allocate(file: &File, from: usize, to: usize) -> io::Result<()> {
    let (offset, length) = (
        u64::try_from(from).map_err(io::Error::other)?,
        u64::try_from(to.saturating_sub(from)).map_err(io::Error::other)?,
    );
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), offset, length) {
        Ok(()) => Ok(()),
        // A file system without fallocate: writing the zeros allocates the blocks too.
        Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::NOSYS) => {
            write_zeros(file, offset, length)
        }
        Err(e) => Err(e.into()),
    }
}

fn write_zeros(file: &File, mut offset: u64, mut length: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    while length > 0 {
        let n = usize::try_from(length)
            .unwrap_or(ZEROS.len())
            .min(ZEROS.len());
        let chunk = ZEROS.get(..n).unwrap_or(&ZEROS);
        file.write_all_at(chunk, offset)?;
        offset = offset.saturating_add(n as u64);
        length = length.saturating_sub(n as u64);
    }
    Ok(())
}

/// The newest segment's text as a crash may have left it, made whole: the records after the
/// last digest line are sealed as one more batch when their lines are complete (each was in
/// the page cache before its request was answered), and a last line without its newline (a
/// copy the crash interrupted; its request was never answered) is cut off.
pub struct Recovered {
    /// The text to keep, with the digest line sealing the tail appended.
    pub text_len: usize,
    /// The digest line to append after `text_len` bytes, if the tail held records.
    pub seal: Option<Vec<u8>>,
    pub sealed_events: u64,
    pub cut_bytes: usize,
    pub next_batch: u64,
    pub previous: [u8; 32],
}

/// Recovers the newest segment's `text`; `chain_before` gives the chain's position where the
/// segment began (the end of the segment before), asked only when the text holds no digest
/// line.
pub fn recover(
    text: &[u8],
    chain_before: impl FnOnce() -> Result<(u64, [u8; 32]), String>,
) -> Result<Recovered, String> {
    let end = format::content_end(text);
    let text = text.get(..end).unwrap_or(text);
    let mut end_of_chain = 0usize;
    let mut last = None;
    for (offset, line) in format::lines(text) {
        if let format::Line::Digest(bytes) = line {
            let digest: format::DigestLine =
                serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            let parsed = format::parse_digest(&digest.digest).ok_or("bad digest")?;
            last = Some((digest.batch.saturating_add(1), parsed));
            end_of_chain = offset.saturating_add(bytes.len()).saturating_add(1);
        }
    }
    let (mut next_batch, mut previous) = match last {
        Some(position) => position,
        None => chain_before()?,
    };
    let end_of_chain = end_of_chain.min(text.len());
    let tail = text.get(end_of_chain..).unwrap_or_default();
    let complete = tail
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i.saturating_add(1));
    let records = tail.get(..complete).unwrap_or_default();
    let sealed_events =
        u64::try_from(records.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u64::MAX);
    let seal = (sealed_events > 0).then(|| {
        let mut hasher = format::BatchHasher::new(&previous);
        hasher.update(records);
        let digest = hasher.finish();
        let mut line = Vec::new();
        format::write_digest_line(&mut line, next_batch, sealed_events, &previous, &digest);
        previous = digest;
        next_batch = next_batch.saturating_add(1);
        line
    });
    Ok(Recovered {
        text_len: end_of_chain.saturating_add(complete),
        seal,
        sealed_events,
        cut_bytes: tail.len().saturating_sub(complete),
        next_batch,
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_grow_the_file_ahead_and_finish_cuts_it_to_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut segment = MappedSegment::create(path.clone(), 4 * GROW_STEP).unwrap();
        segment.reserve(10).unwrap();
        segment.append(b"{\"a\":1}\n").unwrap();
        // In the file (the page cache) at once, zeros after it.
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), 10 + GROW_STEP);
        assert_eq!(on_disk.get(..8).unwrap(), b"{\"a\":1}\n");
        assert_eq!(format::content_end(&on_disk), 8);
        // Appending past the reserved room is refused, not written.
        assert!(segment.append(&vec![b'x'; GROW_STEP + 8]).is_err());
        assert!(!segment.has_room(4 * GROW_STEP));
        assert!(segment.reserve(4 * GROW_STEP).is_err());
        // Releasing the written pages keeps their bytes.
        segment.reserve(2 * GROW_STEP).unwrap();
        segment.append(&vec![b'y'; 2 * GROW_STEP - 1]).unwrap();
        segment.append(b"\n").unwrap();
        segment.release_written().unwrap();
        segment.reserve(1).unwrap();
        segment.append(b"z").unwrap();
        let file = segment.finish().unwrap();
        drop(file);
        let text = std::fs::read(&path).unwrap();
        assert_eq!(text.len(), 8 + 2 * GROW_STEP + 1);
        assert!(text[8..8 + 2 * GROW_STEP - 1].iter().all(|&b| b == b'y'));
        assert_eq!(&text[text.len() - 2..], b"\nz");
        assert_eq!(text.get(..8).unwrap(), b"{\"a\":1}\n");
    }

    #[test]
    fn recovery_seals_complete_records_and_cuts_a_torn_one() {
        let mut text = Vec::new();
        let mut hasher = format::BatchHasher::new(&format::GENESIS);
        hasher.update(b"{\"e\":1}\n");
        let first = hasher.finish();
        text.extend_from_slice(b"{\"e\":1}\n");
        format::write_digest_line(&mut text, 1, 1, &format::GENESIS, &first);
        let chained = text.len();
        text.extend_from_slice(b"{\"e\":2}\n{\"e\":3}\n{\"e\":");
        text.extend_from_slice(&[0; 100]);
        let got = recover(&text, || panic!("the segment has a digest line")).unwrap();
        assert_eq!(got.text_len, chained + 16);
        assert_eq!(
            (got.sealed_events, got.cut_bytes, got.next_batch),
            (2, 5, 3)
        );
        let mut hasher = format::BatchHasher::new(&first);
        hasher.update(b"{\"e\":2}\n{\"e\":3}\n");
        let second = hasher.finish();
        assert_eq!(got.previous, second);
        let mut expected = Vec::new();
        format::write_digest_line(&mut expected, 2, 2, &first, &second);
        assert_eq!(got.seal, Some(expected));
        // Nothing after the chain: nothing to seal or cut.
        let whole = recover(text.get(..chained).unwrap(), || Ok((1, format::GENESIS))).unwrap();
        assert_eq!(
            (whole.text_len, whole.seal, whole.cut_bytes),
            (chained, None, 0)
        );
        // A segment without a digest line chains to the one before.
        let fresh = recover(b"{\"e\":4}\n", || Ok((7, second))).unwrap();
        assert_eq!((fresh.sealed_events, fresh.next_batch), (1, 8));
    }
}
