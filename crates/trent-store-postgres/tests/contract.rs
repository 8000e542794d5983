//! The Store contract (`trent_core::store_contract`, the suite SQLite and MemoryStore run),
//! against a real PostgreSQL server this test starts (`test_cluster`), each part on a fresh
//! database; plus what only this backend has: migrations on an existing schema and the refusal
//! of a newer one.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use trent_core::model::AccountRecord;
use trent_core::store::{Store, StoreError};
use trent_core::store_contract::{
    concurrency_suite, constraints_suite, custom_key_store_suite, feed_suite, grants_suite,
    identity_suite, key, lifecycle_suite, material, suite,
};
use trent_store_postgres::PostgresStore;
use trent_store_postgres::test_cluster::TestCluster;

fn cluster() -> TestCluster {
    TestCluster::start().unwrap_or_else(|e| panic!("cannot start a test PostgreSQL: {e}"))
}

async fn fresh(cluster: &TestCluster) -> Arc<dyn Store> {
    let url = cluster.fresh_database().await.unwrap();
    Arc::new(PostgresStore::connect(&url).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_store_contract() {
    let cluster = cluster();
    suite(fresh(&cluster).await).await;
    lifecycle_suite(fresh(&cluster).await).await;
    identity_suite(fresh(&cluster).await).await;
    grants_suite(fresh(&cluster).await).await;
    constraints_suite(fresh(&cluster).await).await;
    concurrency_suite(fresh(&cluster).await).await;
    custom_key_store_suite(fresh(&cluster).await).await;
    let url = cluster.fresh_database().await.unwrap();
    let node_a: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let node_b: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    feed_suite(node_a, Some(node_b)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_a_newer_schema_is_refused() {
    let cluster = cluster();
    let url = cluster.fresh_database().await.unwrap();
    {
        let store = PostgresStore::connect(&url).await.unwrap();
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
    // Several nodes starting at once on one database migrate it once.
    let (a, b) = tokio::join!(PostgresStore::connect(&url), PostgresStore::connect(&url));
    let store = a.unwrap();
    drop(b.unwrap());
    assert!(
        store.key("k").await.unwrap().is_some(),
        "data survives reconnecting"
    );

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let versions: Vec<i64> = client
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let latest = trent_store_postgres::latest_schema_version();
    assert_eq!(versions, (1..=latest).collect::<Vec<_>>());

    // A newer Trent migrated this database: this one refuses it and says why.
    client
        .execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(latest + 1)],
        )
        .await
        .unwrap();
    let Err(StoreError::Backend(message)) = PostgresStore::connect(&url).await else {
        panic!("a newer schema must be refused");
    };
    assert!(
        message.contains(&format!("version {}", latest + 1)) && message.contains("newer"),
        "{message}"
    );

    // An unreachable server fails as unavailable (a retryable error), and says so.
    let Err(StoreError::Unavailable(message)) =
        PostgresStore::connect("postgres://postgres@127.0.0.1:1/none").await
    else {
        panic!("connecting to nothing must fail");
    };
    assert!(message.contains("connection"), "{message}");
}
