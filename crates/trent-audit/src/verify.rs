//! `trent audit verify`: recomputes every batch digest and follows the chain across segments.
//!
//! Detected: a changed, removed, inserted or reordered event (its batch digest no longer
//! matches), a removed, reordered or replayed batch or segment (a batch's `previousDigest` is
//! not the digest before it, or batch numbers are not consecutive), events outside any batch
//! anywhere but at the very end. Not detectable from the files alone: removing whole batches
//! from the end — compare the reported head digest with one recorded earlier for that.

use std::path::Path;

use crate::AuditError;
use crate::format::{self, BatchHasher, DigestLine, GENESIS, Line};
use crate::writer::{PRUNED_FILE, Pruned};

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub segments: usize,
    pub batches: u64,
    pub events: u64,
    /// The last batch's number and digest (hex): record it to detect a cut-off tail later.
    pub head: Option<(u64, String)>,
    /// Records after the newest segment's last digest line: the batch still gathering (the
    /// trail is open), or one a crash left unsealed. The server seals the complete ones when
    /// it next starts and cuts off a last line without its newline (a copy the crash
    /// interrupted, whose request was never answered).
    pub unsealed_tail_events: u64,
    /// Every integrity problem, in file order.
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the trail in `directory`.
pub fn verify(directory: &Path) -> Result<Report, AuditError> {
    let segments = format::list_segments(directory)?;
    let mut report = Report {
        segments: segments.len(),
        ..Report::default()
    };
    // Where the chain must start: batch 1 from the genesis digest, or after what retention
    // removed.
    let (mut expected_batch, mut previous) = match std::fs::read(directory.join(PRUNED_FILE)) {
        Ok(bytes) => {
            let pruned: Pruned = serde_json::from_slice(&bytes)
                .map_err(|e| AuditError::Corrupt(format!("{PRUNED_FILE}: {e}")))?;
            let digest = format::parse_digest(&pruned.digest)
                .ok_or_else(|| AuditError::Corrupt(format!("{PRUNED_FILE}: bad digest")))?;
            (pruned.batch.saturating_add(1), digest)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (1, GENESIS),
        Err(e) => return Err(e.into()),
    };
    let last_index = segments.len().saturating_sub(1);
    for (index, (first_batch, path)) in segments.iter().enumerate() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read(path)?;
        let mut hasher = BatchHasher::new(&previous);
        let mut pending_events = 0u64;
        let mut first_in_segment = true;
        for (offset, line) in format::lines(&text) {
            match line {
                Line::Event(bytes) => {
                    hasher.update(bytes);
                    hasher.update(b"\n");
                    pending_events += 1;
                }
                Line::Digest(bytes) => {
                    let at = format!("{name} at byte {offset}");
                    let digest_line: DigestLine = match serde_json::from_slice(bytes) {
                        Ok(d) => d,
                        Err(e) => {
                            report
                                .problems
                                .push(format!("{at}: unreadable digest line: {e}"));
                            hasher = BatchHasher::new(&previous);
                            pending_events = 0;
                            continue;
                        }
                    };
                    if first_in_segment && digest_line.batch != *first_batch {
                        report.problems.push(format!(
                            "{at}: the segment is named for batch {first_batch} but begins with batch {}",
                            digest_line.batch
                        ));
                    }
                    first_in_segment = false;
                    if digest_line.batch != expected_batch {
                        report.problems.push(format!(
                            "{at}: batch {} where batch {expected_batch} was expected (a batch was removed, reordered or replayed)",
                            digest_line.batch
                        ));
                    }
                    if format::parse_digest(&digest_line.previous_digest) != Some(previous) {
                        report.problems.push(format!(
                            "{at}: batch {} does not chain to the batch before it",
                            digest_line.batch
                        ));
                    }
                    let computed =
                        std::mem::replace(&mut hasher, BatchHasher::new(&GENESIS)).finish();
                    if format::parse_digest(&digest_line.digest) != Some(computed) {
                        report.problems.push(format!(
                            "{at}: batch {} does not match its digest (an event was changed, removed, added or reordered)",
                            digest_line.batch
                        ));
                    }
                    if digest_line.events != pending_events {
                        report.problems.push(format!(
                            "{at}: batch {} holds {pending_events} events, its digest line says {}",
                            digest_line.batch, digest_line.events
                        ));
                    }
                    report.batches += 1;
                    report.events += pending_events;
                    // Follow the recorded chain, so one bad batch is reported once, not
                    // again for every batch after it.
                    previous = format::parse_digest(&digest_line.digest).unwrap_or(computed);
                    expected_batch = digest_line.batch.saturating_add(1);
                    report.head = Some((digest_line.batch, hex::encode(previous)));
                    hasher = BatchHasher::new(&previous);
                    pending_events = 0;
                }
            }
        }
        if pending_events > 0 {
            if index == last_index {
                report.unsealed_tail_events = pending_events;
            } else {
                report.problems.push(format!(
                    "{name}: {pending_events} events after the segment's last digest line"
                ));
            }
        } else if !format::is_complete(&text) {
            report
                .problems
                .push(format!("{name}: the last line is cut short"));
        }
    }
    Ok(report)
}
