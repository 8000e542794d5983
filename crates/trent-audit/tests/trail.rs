//! The trail end to end in one process: appends through the writer, then verify, lookup and
//! export over the files it wrote, and tampering that verify must catch.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::Path;

use trent_audit::read::{self, Attribute, Lookup};
use trent_audit::{AuditLog, AuditSettings, format};

fn event(account: &str, name: &str, id: &str, time: &str) -> Vec<u8> {
    format!(
        "{{\"eventVersion\":\"1.11\",\"userIdentity\":{{\"type\":\"Root\",\"accountId\":\"{account}\",\"accessKeyId\":\"AKID{account}\"}},\"eventTime\":\"{time}\",\"eventSource\":\"kms.amazonaws.com\",\"eventName\":\"{name}\",\"awsRegion\":\"us-east-1\",\"eventID\":\"{id}\",\"readOnly\":true,\"recipientAccountId\":\"{account}\"}}\n"
    )
    .into_bytes()
}

async fn write_events(dir: &Path, n: usize) {
    let log = AuditLog::open(AuditSettings::new(dir.to_path_buf())).unwrap();
    let log = std::sync::Arc::new(log);
    let mut tasks = Vec::new();
    for i in 0..n {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let account = if i % 2 == 0 {
                "111122223333"
            } else {
                "444455556666"
            };
            let second = i % 60;
            let line = event(
                account,
                "Encrypt",
                &format!("id-{i}"),
                &format!("2026-12-03T10:00:{second:02}Z"),
            );
            log.append(&line).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn only_segment(dir: &Path) -> std::path::PathBuf {
    let segments = format::list_segments(dir).unwrap();
    assert_eq!(segments.len(), 1);
    segments[0].1.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_group_committed_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 200).await;
    let report = trent_audit::verify::verify(dir.path()).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.events, 200);
    assert!(report.batches >= 1 && report.batches <= 200);
    // Reopening continues the chain.
    write_events(dir.path(), 3).await;
    let report = trent_audit::verify::verify(dir.path()).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.events, 203);
}

#[tokio::test]
async fn a_changed_removed_or_reordered_event_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 1).await;
    write_events(dir.path(), 1).await;
    write_events(dir.path(), 1).await;
    let path = only_segment(dir.path());
    let original = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert_eq!(lines.len(), 6, "three batches of one event each");

    let tampered = original.replacen("\"Encrypt\"", "\"Decrypt\"", 1);
    std::fs::write(&path, &tampered).unwrap();
    let report = trent_audit::verify::verify(dir.path()).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("does not match its digest")),
        "{:?}",
        report.problems
    );

    let removed: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&path, &removed).unwrap();
    assert!(!trent_audit::verify::verify(dir.path()).unwrap().is_intact());

    // Swapping two whole batches keeps each digest right but breaks the chain.
    let swapped = [lines[2], lines[3], lines[0], lines[1], lines[4], lines[5]]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    std::fs::write(&path, &swapped).unwrap();
    let report = trent_audit::verify::verify(dir.path()).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("chain")),
        "{:?}",
        report.problems
    );

    std::fs::write(&path, &original).unwrap();
    assert!(trent_audit::verify::verify(dir.path()).unwrap().is_intact());
}

#[tokio::test]
async fn a_tail_left_by_a_crash_is_sealed_at_open_but_a_torn_record_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 2).await;
    let path = only_segment(dir.path());
    let mut text = std::fs::read(&path).unwrap();
    // What a killed process leaves: a record copied whole but not yet sealed, one whose
    // copy was interrupted, and the zeros the segment was grown ahead with.
    let whole = event("111122223333", "Decrypt", "copied", "2026-12-03T10:00:00Z");
    text.extend_from_slice(&whole);
    text.extend_from_slice(&event("111122223333", "Decrypt", "torn", "2026-12-03T10:00:00Z")[..40]);
    text.extend_from_slice(&[0; 4096]);
    std::fs::write(&path, &text).unwrap();
    let report = trent_audit::verify::verify(dir.path()).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!((report.events, report.unsealed_tail_events), (2, 2));
    write_events(dir.path(), 1).await;
    let report = trent_audit::verify::verify(dir.path()).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!((report.events, report.unsealed_tail_events), (4, 0));
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    assert!(text.contains(r#""eventID":"copied""#));
    assert!(!text.contains(r#""eventID":"torn""#));
    assert!(!text.contains('\0'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_in_the_file_before_append_returns_and_sealed_within_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(AuditSettings::new(dir.path().to_path_buf())).unwrap();
    let path = only_segment(dir.path());
    let line = event("111122223333", "Encrypt", "at-once", "2026-12-03T10:00:00Z");
    log.append(&line).await.unwrap();
    // Read through the file system, as another process (or the next run) would.
    let text = std::fs::read(&path).unwrap();
    let end = format::content_end(&text);
    assert_eq!(&text[..end], &line[..]);
    let started = std::time::Instant::now();
    loop {
        let report = trent_audit::verify::verify(dir.path()).unwrap();
        if report.batches == 1 {
            assert_eq!((report.events, report.unsealed_tail_events), (1, 0));
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "never sealed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(log.sealed_batches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_segments_roll_and_appends_wait_for_room() {
    // 1 KiB segments: every seal begins a new one; 40 records of ~300 KiB (12 MiB) gathered
    // faster than a seal fill a segment's 4 MiB headroom, so appends wait for the next.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = AuditSettings::new(dir.path().to_path_buf());
    settings.segment_bytes = 1024;
    let log = std::sync::Arc::new(AuditLog::open(settings).unwrap());
    let padding = "p".repeat(300 << 10);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (log, padding) = (log.clone(), padding.clone());
        tasks.push(tokio::spawn(async move {
            let mut line = event(
                "111122223333",
                "Encrypt",
                &format!("r-{i}"),
                "2026-12-03T10:00:00Z",
            );
            line.truncate(line.len() - 2);
            line.extend_from_slice(format!(",\"pad\":\"{padding}\"}}\n").as_bytes());
            log.append(&line).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(log);
    let segments = format::list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 3, "{} segments", segments.len());
    for (_, path) in &segments {
        let text = std::fs::read(path).unwrap();
        assert_eq!(
            format::content_end(&text),
            text.len(),
            "{} is not cut to its text",
            path.display()
        );
    }
    let report = trent_audit::verify::verify(dir.path()).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!((report.events, report.unsealed_tail_events), (40, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sync_durability_concurrent_appends_all_complete_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = AuditSettings::new(dir.path().to_path_buf());
    settings.durability = trent_audit::Durability::Sync;
    let log = std::sync::Arc::new(AuditLog::open(settings).unwrap());
    let mut tasks = Vec::new();
    for i in 0..50 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let line = event(
                "111122223333",
                "Encrypt",
                &format!("s-{i}"),
                "2026-12-03T10:00:00Z",
            );
            log.append(&line).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(log);
    let report = trent_audit::verify::verify(dir.path()).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.events, 50);
}

#[tokio::test]
async fn lookup_pages_one_accounts_events_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    write_events(dir.path(), 30).await;
    let mut lookup = Lookup {
        account: "111122223333".into(),
        attribute: Some((Attribute::EventName, "Encrypt".into())),
        start_secs: None,
        end_secs: None,
        max_results: 4,
        cursor: None,
    };
    let mut seen = Vec::new();
    loop {
        let page = read::lookup(dir.path(), &lookup).unwrap();
        assert!(page.events.len() <= 4);
        seen.extend(page.events.iter().map(|e| e.event_id.clone()));
        for e in &page.events {
            assert!(e.record.contains("\"recipientAccountId\":\"111122223333\""));
            assert_eq!(e.username.as_deref(), Some("root"));
        }
        match page.next {
            Some(c) => lookup.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 15);
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 15);
    lookup.cursor = None;
    lookup.attribute = Some((Attribute::EventId, "id-4".into()));
    assert_eq!(read::lookup(dir.path(), &lookup).unwrap().events.len(), 1);
    lookup.attribute = Some((Attribute::EventId, "id-5".into()));
    assert!(
        read::lookup(dir.path(), &lookup).unwrap().events.is_empty(),
        "another account's event"
    );
    lookup.attribute = None;
    lookup.start_secs = read::parse_event_time("2026-12-03T10:00:20Z");
    lookup.max_results = 50;
    let page = read::lookup(dir.path(), &lookup).unwrap();
    assert_eq!(page.events.len(), 5, "even i from 20 to 28");

    let out = tempfile::tempdir().unwrap();
    let (events, files) = read::export(dir.path(), out.path()).unwrap();
    assert_eq!((events, files), (30, 2));
    let day = out.path().join("444455556666/us-east-1/2026/12/03.jsonl");
    assert_eq!(std::fs::read_to_string(day).unwrap().lines().count(), 15);
}

#[test]
fn event_times_round_trip() {
    for secs in [0i64, 951_782_400, 1_795_400_000] {
        let mut text = String::new();
        read::format_event_time(secs, &mut text);
        assert_eq!(read::parse_event_time(&text), Some(secs), "{text}");
    }
    assert_eq!(read::parse_event_time("2026-13-01T00:00:00Z"), None);
    assert_eq!(read::parse_event_time("garbage"), None);
}
