//! `trent audit verify` and `trent audit export`: the operator's tools over the audit trail's
//! files (they read the files directly; the server may be running).

use std::path::Path;

/// Verifies the trail; an error (non-zero exit) when anything is wrong.
pub fn verify(directory: &Path) -> Result<(), String> {
    let report = trent_audit::verify::verify(directory)
        .map_err(|e| format!("cannot verify {}: {e}", directory.display()))?;
    println!(
        "{}: {} segments, {} batches, {} events",
        directory.display(),
        report.segments,
        report.batches,
        report.events
    );
    if let Some((batch, digest)) = &report.head {
        println!("head: batch {batch} digest {digest}");
    }
    if report.unsynced_tail_events > 0 {
        println!(
            "{} events after the last digest line: a batch a crash interrupted before it was synced (never acknowledged; cut off at the next start)",
            report.unsynced_tail_events
        );
    }
    for problem in &report.problems {
        println!("PROBLEM: {problem}");
    }
    if report.is_intact() {
        println!("the trail is intact");
        Ok(())
    } else {
        Err(format!(
            "the audit trail failed verification: {} problems",
            report.problems.len()
        ))
    }
}

/// Exports the trail as JSON Lines, one file per account, Region and day.
pub fn export(directory: &Path, out: &Path) -> Result<(), String> {
    let (events, files) = trent_audit::read::export(directory, out)
        .map_err(|e| format!("cannot export {}: {e}", directory.display()))?;
    println!(
        "exported {events} events into {files} files under {}",
        out.display()
    );
    Ok(())
}
