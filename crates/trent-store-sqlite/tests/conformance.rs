//! The Store contract (`trent_core::store_contract`), run against SQLite, plus what only a
//! file-backed store has: data surviving a reopen.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use trent_core::model::AccountRecord;
use trent_core::store::Store;
use trent_core::store_contract::{key, lifecycle_suite, material, suite};
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
