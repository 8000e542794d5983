//! The shared audit trail (`PgAuditTrail`) against a private PostgreSQL server: two nodes'
//! trails shipped from their real files by `trent_audit::ship::Shipper`, shipped again without
//! duplicates, looked up across nodes page by page, verified, and pruned by retention (the
//! chain then starts after the removed batches, and they are never put back).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use trent_audit::read::{Attribute, Lookup};
use trent_audit::shared::{SharedTrail, verify};
use trent_audit::ship::Shipper;
use trent_audit::{AuditLog, AuditSettings};
use trent_store_postgres::test_cluster::TestCluster;
use trent_store_postgres::{PgAuditTrail, PostgresStore};

fn line(time: &str, name: &str, id: &str, account: &str) -> Vec<u8> {
    format!(
        "{{\"eventVersion\":\"1.11\",\"userIdentity\":{{\"type\":\"Root\",\"accountId\":\"{account}\",\"accessKeyId\":\"AKIA{account}\"}},\"eventTime\":\"{time}\",\"eventSource\":\"kms.amazonaws.com\",\"eventName\":\"{name}\",\"awsRegion\":\"us-east-1\",\"requestID\":\"req-{id}\",\"eventID\":\"{id}\",\"readOnly\":true,\"resources\":[{{\"accountId\":\"{account}\",\"type\":\"AWS::KMS::Key\",\"ARN\":\"arn:aws:kms:us-east-1:{account}:key/k\"}}],\"recipientAccountId\":\"{account}\"}}\n"
    )
    .into_bytes()
}

fn lookup(account: &str, max_results: usize) -> Lookup {
    Lookup {
        account: account.into(),
        attribute: None,
        start_secs: None,
        end_secs: None,
        max_results,
        cursor: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_ship_into_one_trail_that_pages_verifies_and_prunes() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    // The store migrates the schema (the trail never does).
    drop(PostgresStore::connect(&url).await.unwrap());
    let trail: Arc<dyn SharedTrail> = Arc::new(PgAuditTrail::connect(&url).await.unwrap());

    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log_one = AuditLog::open(AuditSettings::new(one.path().into())).unwrap();
    let log_two = AuditLog::open(AuditSettings::new(two.path().into())).unwrap();
    // Node one: two old batches, then a new one; node two: interleaved in time. Each append
    // is sealed as a batch of its own.
    log_one
        .append(&line(
            "2020-01-01T00:00:01Z",
            "Encrypt",
            "e1",
            "111122223333",
        ))
        .await
        .unwrap();
    log_one.seal().unwrap();
    log_one
        .append(&line(
            "2020-01-01T00:00:03Z",
            "Decrypt",
            "e3",
            "111122223333",
        ))
        .await
        .unwrap();
    log_one.seal().unwrap();
    log_two
        .append(&line(
            "2020-01-01T00:00:02Z",
            "Encrypt",
            "e2",
            "111122223333",
        ))
        .await
        .unwrap();
    log_two.seal().unwrap();
    log_two
        .append(&line(
            "2020-01-01T00:00:04Z",
            "Encrypt",
            "x1",
            "444455556666",
        ))
        .await
        .unwrap();
    log_two.seal().unwrap();
    log_one
        .append(&line("2030-01-01T00:00:05Z", "Sign", "e5", "111122223333"))
        .await
        .unwrap();
    log_one.seal().unwrap();

    let ship_one = Shipper::new(&AuditSettings::new(one.path().into()), trail.clone()).unwrap();
    let ship_two = Shipper::new(&AuditSettings::new(two.path().into()), trail.clone()).unwrap();
    assert_ne!(ship_one.node(), ship_two.node());
    assert_eq!(ship_one.ship_now().await.unwrap(), 3);
    assert_eq!(ship_two.ship_now().await.unwrap(), 2);
    assert_eq!(ship_one.ship_now().await.unwrap(), 0, "nothing new");
    // A restarted node (a new shipper, the same node id) continues, shipping nothing twice.
    let again = Shipper::new(&AuditSettings::new(one.path().into()), trail.clone()).unwrap();
    assert_eq!(again.node(), ship_one.node());
    assert_eq!(again.ship_now().await.unwrap(), 0);
    // Shipped again from scratch (at least once): stored once.
    let all = trail.batches(ship_one.node(), 0, 100).await.unwrap();
    trail.ship(ship_one.node(), None, &all).await.unwrap();
    assert_eq!(trail.batches(ship_one.node(), 0, 100).await.unwrap(), all);

    // Newest first across nodes, one account's events only, one event a page.
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = trail
            .lookup(&lookup("111122223333", 1), cursor.as_ref())
            .await
            .unwrap();
        ids.extend(page.events.iter().map(|e| e.event_id.clone()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(ids, ["e5", "e3", "e2", "e1"]);
    let mut by_name = lookup("111122223333", 50);
    by_name.attribute = Some((Attribute::EventName, "Encrypt".into()));
    let names: Vec<String> = trail
        .lookup(&by_name, None)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(names, ["e2", "e1"]);
    let mut ranged = lookup("111122223333", 50);
    (ranged.start_secs, ranged.end_secs) = (Some(1_577_836_802), Some(1_577_836_803));
    let in_range: Vec<String> = trail
        .lookup(&ranged, None)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(in_range, ["e3", "e2"]);
    let usage = trail
        .last_usage("arn:aws:kms:us-east-1:111122223333:key/k", "111122223333")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (usage.operation.as_str(), usage.event_id.as_str()),
        ("Sign", "e5")
    );

    let reports = verify(&*trail).await.unwrap();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.problems.is_empty()), "{reports:?}");

    // Retention at 2025: node one's two old batches go (the young one stays, and so does the
    // chain: it now starts after batch 2), all of node two's.
    assert_eq!(trail.prune(1_735_689_600).await.unwrap(), 4);
    let start = trail.chain_start(ship_one.node()).await.unwrap().unwrap();
    assert_eq!(start.batch, 2);
    assert_eq!(start.digest, all[1].digest);
    let left = trail.batches(ship_one.node(), 0, 100).await.unwrap();
    assert_eq!(left.iter().map(|b| b.batch).collect::<Vec<_>>(), [3]);
    let reports = verify(&*trail).await.unwrap();
    assert!(reports.iter().all(|r| r.problems.is_empty()), "{reports:?}");
    // Removed batches are never put back by a late re-shipment.
    trail.ship(ship_one.node(), None, &all).await.unwrap();
    assert_eq!(
        trail.batches(ship_one.node(), 0, 100).await.unwrap().len(),
        1
    );
    assert_eq!(trail.next_batch(ship_two.node()).await.unwrap(), Some(3));

    // A batch removed from the middle of a chain is caught.
    log_one
        .append(&line("2030-01-01T00:00:06Z", "Sign", "e6", "111122223333"))
        .await
        .unwrap();
    log_one.seal().unwrap();
    log_one
        .append(&line("2030-01-01T00:00:07Z", "Sign", "e7", "111122223333"))
        .await
        .unwrap();
    log_one.seal().unwrap();
    assert_eq!(ship_one.ship_now().await.unwrap(), 2);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute("DELETE FROM audit_batches WHERE batch = 4", &[])
        .await
        .unwrap();
    let reports = verify(&*trail).await.unwrap();
    let one_report = reports.iter().find(|r| r.node == ship_one.node()).unwrap();
    assert!(
        one_report
            .problems
            .iter()
            .any(|p| p.contains("batch 5 where batch 4 was expected")),
        "{one_report:?}"
    );
}
