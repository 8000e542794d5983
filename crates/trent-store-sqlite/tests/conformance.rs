//! The Store contract (`trent_core::store_contract`), run against SQLite, plus what only a
//! file-backed store has: data surviving a reopen.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use trent_core::model::AccountRecord;
use trent_core::store::Store;
use trent_core::store_contract::{
    concurrency_suite, constraints_suite, custom_key_store_suite, feed_suite, grants_suite,
    identity_suite, key, lifecycle_suite, material, suite,
};
use trent_store_sqlite::SqliteStore;

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("trent.db")).unwrap();
    suite(Arc::new(store)).await;
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .put_account(&AccountRecord {
                account_id: "111122223333".into(),
                created_ms: 1,
            })
            .await
            .unwrap();
        store
            .insert_key(&key("k", "111122223333"), &material("k"))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.key("k").await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_passes_the_lifecycle_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("trent.db")).unwrap();
    lifecycle_suite(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_passes_the_identity_grants_and_constraints_suites() {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| Arc::new(SqliteStore::open(&dir.path().join(name)).unwrap());
    identity_suite(open("identity.db")).await;
    grants_suite(open("grants.db")).await;
    constraints_suite(open("constraints.db")).await;
    feed_suite(open("feed.db"), None).await;
    custom_key_store_suite(open("custom_key_stores.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_passes_the_concurrency_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("trent.db")).unwrap();
    concurrency_suite(Arc::new(store)).await;
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_trent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_version (version) VALUES (99)", [])
        .unwrap();
    drop(conn);
    let Err(trent_core::StoreError::Backend(message)) = SqliteStore::open(&path) else {
        panic!("a newer schema must be refused");
    };
    assert!(
        message.contains("version 99") && message.contains("newer"),
        "{message}"
    );
}
