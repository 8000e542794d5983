//! `trent audit verify` and `trent audit export`: the operator's tools over the audit trail's
//! files (they read the files directly; the server may be running), and `trent audit verify
//! --database URL` over the shared trail of several nodes.

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
    if report.unsealed_tail_events > 0 {
        println!(
            "{} records after the last digest line: the batch still gathering, or one a crash left unsealed (sealed at the next start; a last record without its newline, a copy the crash interrupted and never acknowledged, is cut off)",
            report.unsealed_tail_events
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

/// Verifies every node's chain in the shared trail of `url` (several nodes). With `local`
/// (this node's audit directory), its batches not yet in the database are reported as not
/// shipped — not a problem.
pub async fn verify_shared(
    url: &crate::config::DatabaseUrl,
    local: Option<&Path>,
) -> Result<(), String> {
    let trail = trent_store_postgres::PgAuditTrail::connect(url.as_str())
        .await
        .map_err(|e| format!("cannot open the shared audit trail in {}: {e}", url.shown()))?;
    let reports = trent_audit::shared::verify(&trail).await.map_err(|e| {
        format!(
            "cannot verify the shared audit trail in {}: {e}",
            url.shown()
        )
    })?;
    let mut problems = 0usize;
    for report in &reports {
        println!(
            "node {}: {} batches, {} events",
            report.node, report.batches, report.events
        );
        if let Some((batch, digest)) = &report.head {
            println!("node {} head: batch {batch} digest {digest}", report.node);
        }
        for problem in &report.problems {
            println!("PROBLEM: node {}: {problem}", report.node);
        }
        problems += report.problems.len();
    }
    if let Some(directory) = local
        && directory.join(trent_audit::ship::NODE_ID_FILE).exists()
    {
        let node = trent_audit::ship::node_id(directory)
            .map_err(|e| format!("cannot read the node id in {}: {e}", directory.display()))?;
        let files = trent_audit::verify::verify(directory)
            .map_err(|e| format!("cannot verify {}: {e}", directory.display()))?;
        let shipped = reports
            .iter()
            .find(|r| r.node == node)
            .and_then(|r| r.head.as_ref())
            .map_or(0, |(batch, _)| *batch);
        let local_head = files.head.as_ref().map_or(0, |(batch, _)| *batch);
        if local_head > shipped {
            println!(
                "node {node}: {} batches in {} not shipped yet (batches {}..={local_head}; not tampering)",
                local_head - shipped,
                directory.display(),
                shipped + 1
            );
        } else {
            println!(
                "node {node}: every batch in {} is shipped",
                directory.display()
            );
        }
    }
    if problems == 0 {
        println!("the shared trail is intact ({} nodes)", reports.len());
        Ok(())
    } else {
        Err(format!(
            "the shared audit trail failed verification: {problems} problems"
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
