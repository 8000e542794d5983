//! `trent serve` on PostgreSQL (`database = "postgres://…"`), end to end against a private
//! PostgreSQL server (`trent_store_postgres::test_cluster`): a key, alias and ciphertext made
//! through node A are found and decrypt through node B, started afterwards on the same database
//! with the same root key; a node without that root key refuses to start and says why.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_sdk_kms::primitives::Blob;
use common::{AKID_A, SECRET_A, Server};
use trent_store_postgres::test_cluster::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_postgres_database() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();

    let a_dir = tmp.path().join("a").join("data");
    let a = Server::start_in_with_config(&a_dir, true, &format!("database = \"{url}\""));
    let kms_a = a.kms(AKID_A, SECRET_A);
    let key_id = kms_a
        .create_key()
        .description("on postgres")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    kms_a
        .create_alias()
        .alias_name("alias/shared")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let blob = kms_a
        .encrypt()
        .key_id("alias/shared")
        .plaintext(Blob::new(b"hello".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    assert!(
        !a_dir.join("trent.db").exists(),
        "with `database` set, no SQLite file is made"
    );

    // Node B: another data directory, the same database and root key.
    let root_key = a_dir.join("root.key");
    let b_dir = tmp.path().join("b").join("data");
    let b = Server::start_in_with_config(
        &b_dir,
        true,
        &format!(
            "database = \"{url}\"\nroot_key_file = \"{}\"",
            root_key.display()
        ),
    );
    let kms_b = b.kms(AKID_A, SECRET_A);
    let described = kms_b
        .describe_key()
        .key_id("alias/shared")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(described.key_id, key_id);
    assert_eq!(described.description.as_deref(), Some("on postgres"));
    let plain = kms_b
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .unwrap()
        .plaintext
        .unwrap();
    assert_eq!(plain.as_ref(), b"hello");
    drop(b);
    drop(a);

    // Node C has no root key: it must not generate one beside a database that has data.
    let c_dir = tmp.path().join("c").join("data");
    std::fs::create_dir_all(&c_dir).unwrap();
    let config = tmp.path().join("c").join("trent.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\ndatabase = \"{url}\"\n"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&c_dir)
        .env_remove("TRENT_ROOT_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("is missing but the database postgres://127.0.0.1:")
            && stderr.contains("every node on one database needs the same root key"),
        "{stderr}"
    );
}
