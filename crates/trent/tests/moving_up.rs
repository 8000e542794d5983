//! Moving up from the embedded store, end to end with the real binary: `trent backup` copies a
//! running server's SQLite store into a file another server opens (with the same root key),
//! and `trent migrate --to postgres://…` copies one into an empty PostgreSQL database
//! (`trent_store_postgres::test_cluster`) where a node on that database finds every key (rotated
//! ones with their history), alias, grant, tag, IAM user, policy and access key, and decrypts
//! what the SQLite server encrypted; a database already in use is refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantOperation, KeyState, Tag};
use common::{AKID_A, SECRET_A, Server, code, new_iam_user};
use trent_store_postgres::test_cluster::TestCluster;

/// Runs `trent ARGS` and returns its output.
fn trent(args: &[&str], data_dir: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("TRENT_ROOT_KEY")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn encrypt(kms: &aws_sdk_kms::Client, key: &str, plaintext: &[u8]) -> Blob {
    kms.encrypt()
        .key_id(key)
        .plaintext(Blob::new(plaintext.to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
}

async fn decrypt(kms: &aws_sdk_kms::Client, blob: Blob) -> Vec<u8> {
    kms.decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .unwrap()
        .plaintext
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_running_server_opens_with_its_root_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("live").join("data");
    let live = Server::start_in(&dir, true);
    let kms = live.kms(AKID_A, SECRET_A);
    let key = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let blob = encrypt(&kms, &key, b"backed up").await;

    let copy = tmp.path().join("trent-backup.db");
    let out = trent(&["backup", "--to", copy.to_str().unwrap()], &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("(1 keys)"), "{}", text(&out));
    assert_eq!(
        std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // An existing file is never overwritten.
    let again = trent(&["backup", "--to", copy.to_str().unwrap()], &dir);
    assert!(!again.status.success());
    assert!(text(&again).contains("cannot create"), "{}", text(&again));
    // Made after the backup: not in it.
    let later = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    drop(live);

    let restored = tmp.path().join("restored").join("data");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&copy, restored.join("trent.db")).unwrap();
    std::fs::copy(dir.join("root.key"), restored.join("root.key")).unwrap();
    std::fs::set_permissions(
        restored.join("root.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let server = Server::start_in(&restored, true);
    let kms = server.kms(AKID_A, SECRET_A);
    assert_eq!(decrypt(&kms, blob).await, b"backed up");
    assert_eq!(
        code(kms.describe_key().key_id(&later).send().await),
        "NotFoundException"
    );

    // A configuration on PostgreSQL is pointed at PostgreSQL's own tools.
    let config = tmp.path().join("pg.toml");
    std::fs::write(
        &config,
        "database = \"postgres://trent@127.0.0.1:1/trent\"\n",
    )
    .unwrap();
    let out = trent(
        &[
            "backup",
            "--to",
            tmp.path().join("x.db").to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &restored,
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("pg_dump"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_an_embedded_store_into_postgres() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sqlite").join("data");
    let embedded = Server::start_in(&dir, true);
    let kms = embedded.kms(AKID_A, SECRET_A);
    let iam = embedded.iam(AKID_A, SECRET_A);

    // A rotated key with tags, an alias and a grant; ciphertexts under both its materials.
    let key = kms
        .create_key()
        .description("moved up")
        .tags(
            Tag::builder()
                .tag_key("team")
                .tag_value("kms")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let before = encrypt(&kms, &key, b"first material").await;
    kms.enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(180)
        .send()
        .await
        .unwrap();
    kms.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let after = encrypt(&kms, &key, b"second material").await;
    kms.create_alias()
        .alias_name("alias/moved")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    // An IAM user with an inline policy and an access key, and a grant to it.
    let (bob_akid, bob_secret, bob_arn) = new_iam_user(&iam, "bob").await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
    iam.put_user_policy()
        .user_name("bob")
        .policy_name("encrypt")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
    let grant = kms
        .create_grant()
        .key_id(&key)
        .grantee_principal(&bob_arn)
        .operations(GrantOperation::Decrypt)
        .name("bob-decrypts")
        .send()
        .await
        .unwrap();
    // Keys in other states: disabled, and pending deletion (its date is a lifecycle row).
    let new_key = || async {
        kms.create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id
    };
    let disabled = new_key().await;
    kms.disable_key().key_id(&disabled).send().await.unwrap();
    let doomed = new_key().await;
    let deletion = kms
        .schedule_key_deletion()
        .key_id(&doomed)
        .pending_window_in_days(9)
        .send()
        .await
        .unwrap()
        .deletion_date
        .unwrap();

    // Copied while the embedded server runs.
    let out = trent(&["migrate", "--to", &url], &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("keys 3"), "{}", text(&out));
    // Into a database that has state: refused, and nothing changes.
    let again = trent(&["migrate", "--to", &url], &dir);
    assert!(!again.status.success());
    assert!(text(&again).contains("is not empty"), "{}", text(&again));
    drop(embedded);

    // A node on PostgreSQL with the embedded store's root key.
    let node = Server::start_in_with_config(
        &tmp.path().join("pg").join("data"),
        true,
        &format!(
            "database = \"{url}\"\nroot_key_file = \"{}\"",
            dir.join("root.key").display()
        ),
    );
    let kms = node.kms(AKID_A, SECRET_A);
    let described = kms
        .describe_key()
        .key_id("alias/moved")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(described.key_id, key);
    assert_eq!(described.description.as_deref(), Some("moved up"));
    let tags = kms.list_resource_tags().key_id(&key).send().await.unwrap();
    let tags: Vec<_> = tags
        .tags()
        .iter()
        .map(|t| (t.tag_key(), t.tag_value()))
        .collect();
    assert_eq!(tags, [("team", "kms")]);
    assert_eq!(decrypt(&kms, before).await, b"first material");
    assert_eq!(decrypt(&kms, after.clone()).await, b"second material");
    let rotations = kms.list_key_rotations().key_id(&key).send().await.unwrap();
    assert_eq!(rotations.rotations().len(), 1);
    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled);
    assert_eq!(status.rotation_period_in_days, Some(180));
    let grants = kms.list_grants().key_id(&key).send().await.unwrap();
    assert_eq!(grants.grants().len(), 1);
    assert_eq!(grants.grants()[0].grant_id(), grant.grant_id());
    assert_eq!(grants.grants()[0].name(), Some("bob-decrypts"));
    let state = |id: String| {
        let kms = kms.clone();
        async move {
            kms.describe_key()
                .key_id(id)
                .send()
                .await
                .unwrap()
                .key_metadata
                .unwrap()
        }
    };
    assert_eq!(state(disabled).await.key_state, Some(KeyState::Disabled));
    let pending = state(doomed).await;
    assert_eq!(pending.key_state, Some(KeyState::PendingDeletion));
    assert_eq!(pending.deletion_date, Some(deletion));

    // Bob's access key, identity policy and grant came along.
    let bob = node.kms(&bob_akid, &bob_secret);
    encrypt(&bob, "alias/moved", b"as bob").await;
    assert_eq!(decrypt(&bob, after).await, b"second material");
    let iam = node.iam(AKID_A, SECRET_A);
    let kept = iam
        .get_user_policy()
        .user_name("bob")
        .policy_name("encrypt")
        .send()
        .await
        .unwrap();
    // IAM returns policy documents URL-encoded.
    let document = kept.policy_document();
    assert!(
        document.contains("kms%3AEncrypt") || document.contains("kms:Encrypt"),
        "{document}"
    );
}
