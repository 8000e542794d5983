//! The on-disk format: segment files of JSON lines, each batch of events followed by one
//! digest line that chains it to the batch before (see `docs/audit.md`).
//!
//! ```text
//! {"eventVersion":"1.11",…}                 ← event lines: CloudTrail records, one per line
//! {"eventVersion":"1.11",…}
//! {"trentDigest":1,"batch":7,"events":2,"previousDigest":"…","digest":"…"}
//! ```
//!
//! `digest = SHA-256(previousDigest as 64 lowercase hex digits ‖ the batch's event lines,
//! each with its newline)`. The first batch ever written has a previous digest of 64 zeros.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The previous digest of the first batch.
pub const GENESIS: [u8; 32] = [0; 32];

/// What every digest line starts with (event lines start with `{"eventVersion"`).
pub const DIGEST_PREFIX: &[u8] = b"{\"trentDigest\":";

/// Segment files are `<first batch number, 20 digits>.jsonl`, so names sort as they were
/// written.
const SEGMENT_SUFFIX: &str = ".jsonl";

/// The digest line written after each batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DigestLine {
    /// The format version (1).
    pub trent_digest: u32,
    /// The batch's number: consecutive from 1 across every segment of the trail.
    pub batch: u64,
    /// Event lines in the batch.
    pub events: u64,
    /// The digest of the batch before, hex.
    pub previous_digest: String,
    /// This batch's digest, hex.
    pub digest: String,
}

/// The running SHA-256 of one batch.
pub struct BatchHasher(aws_lc_rs::digest::Context);

impl BatchHasher {
    pub fn new(previous: &[u8; 32]) -> Self {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        context.update(&hex_digits(previous));
        Self(context)
    }

    /// Adds event lines (each with its newline).
    pub fn update(&mut self, lines: &[u8]) {
        self.0.update(lines);
    }

    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

/// A digest as 64 lowercase hex digits, on the stack.
fn hex_digits(digest: &[u8; 32]) -> [u8; 64] {
    let mut out = [b'0'; 64];
    // Cannot fail: the output is exactly twice the input's length.
    let _ = hex::encode_to_slice(digest, &mut out);
    out
}

/// Appends the digest line of batch `batch` (and its newline) to `out`: the bytes
/// `serde_json` writes for [`DigestLine`], without its two `String`s per batch.
pub fn write_digest_line(
    out: &mut Vec<u8>,
    batch: u64,
    events: u64,
    previous: &[u8; 32],
    digest: &[u8; 32],
) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{{\"trentDigest\":1,\"batch\":{batch},\"events\":{events},\"previousDigest\":\""
    );
    out.extend_from_slice(&hex_digits(previous));
    out.extend_from_slice(b"\",\"digest\":\"");
    out.extend_from_slice(&hex_digits(digest));
    out.extend_from_slice(b"\"}\n");
}

/// Parses a 64-digit hex digest.
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The file name of a segment whose first batch is `first_batch`.
pub fn segment_name(first_batch: u64) -> String {
    format!("{first_batch:020}{SEGMENT_SUFFIX}")
}

/// The segments in `directory`, oldest first, with their first batch numbers.
pub fn list_segments(directory: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(segments),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(number) = name.strip_suffix(SEGMENT_SUFFIX) else {
            continue;
        };
        if number.len() == 20
            && let Ok(first) = number.parse::<u64>()
        {
            segments.push((first, entry.path()));
        }
    }
    segments.sort_by_key(|(first, _)| *first);
    Ok(segments)
}

/// One line of a segment, classified.
pub enum Line<'a> {
    Event(&'a [u8]),
    Digest(&'a [u8]),
}

/// Where a segment's text ends: at its first zero byte, or its end. The segment being written
/// is grown ahead with zeros (`segment.rs`); a record never holds one (JSON escapes it).
pub fn content_end(text: &[u8]) -> usize {
    text.iter().position(|&b| b == 0).unwrap_or(text.len())
}

/// The lines of a segment's text with their byte offsets (newline excluded), up to
/// [`content_end`]. A last line without a newline is one still being copied or one a crash
/// cut short: it is returned too, and [`is_complete`] tells.
pub fn lines(text: &[u8]) -> impl Iterator<Item = (usize, Line<'_>)> {
    let text = text.get(..content_end(text)).unwrap_or(text);
    let mut offset = 0usize;
    std::iter::from_fn(move || {
        let rest = text.get(offset..)?;
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = rest.get(..end)?;
        let start = offset;
        offset = offset.saturating_add(end).saturating_add(1);
        let line = if line.starts_with(DIGEST_PREFIX) {
            Line::Digest(line)
        } else {
            Line::Event(line)
        };
        Some((start, line))
    })
}

/// Whether the segment text ends at a line boundary.
pub fn is_complete(text: &[u8]) -> bool {
    let text = text.get(..content_end(text)).unwrap_or(text);
    text.is_empty() || text.ends_with(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_lines_are_what_serde_writes() {
        let (previous, digest) = ([7u8; 32], [0xabu8; 32]);
        let mut out = Vec::new();
        write_digest_line(&mut out, 12, 3, &previous, &digest);
        let mut expected = serde_json::to_vec(&DigestLine {
            trent_digest: 1,
            batch: 12,
            events: 3,
            previous_digest: hex::encode(previous),
            digest: hex::encode(digest),
        })
        .unwrap();
        expected.push(b'\n');
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }
}
