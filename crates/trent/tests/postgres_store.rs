//! `trent serve` on PostgreSQL (`database = "postgres://…"`), end to end against a private
//! PostgreSQL server (`trent_store_postgres::test_cluster`): a key, alias and ciphertext made
//! through node A are found and decrypt through node B, started afterwards on the same database
//! with the same root key; a node without that root key, or with another, refuses to start and
//! says why. Access
//! keys and sessions made through one node authenticate on another at once (read-through); a
//! grant revoked, a key disabled or scheduled for deletion, a key policy changed or an access
//! key deleted on one node takes effect on the other within a second (the change feed); with
//! three nodes and rotations due, each key rotates once (step claims). With the database
//! gone, calls that need it fail at once with `DependencyTimeoutException` while cached keys
//! keep encrypting, and the nodes recover by themselves when it is back. `--database`
//! overrides the config's `database`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::GrantOperation;
use common::{AKID_A, SECRET_A, Server, code, new_iam_user};
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

    // Node B: another data directory, the same database and root key; the database given by
    // `--database`, which overrides the config's (a server nothing listens on).
    let root_key = a_dir.join("root.key");
    let b_dir = tmp.path().join("b").join("data");
    let b = Server::start_in_with_args(
        &b_dir,
        true,
        &format!(
            "database = \"postgres://nobody@127.0.0.1:1/nowhere\"\nroot_key_file = \"{}\"",
            root_key.display()
        ),
        &["--database", &url],
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

    // Node D has a root key, but not this database's: it refuses to start, saying so.
    let d_dir = tmp.path().join("d").join("data");
    std::fs::create_dir_all(&d_dir).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&d_dir)
        .env("TRENT_ROOT_KEY", "11".repeat(32))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "the root key in $TRENT_ROOT_KEY does not decrypt the database postgres://127.0.0.1:"
        ) && stderr.contains("every node on one database needs the same root key"),
        "{stderr}"
    );
}

/// Node `name` on `url`, with node A's root key when `root_key` is given (node A makes it).
fn node(tmp: &Path, name: &str, url: &str, root_key: Option<&Path>) -> (Server, PathBuf) {
    let dir = tmp.join(name).join("data");
    let extra = match root_key {
        Some(k) => format!("database = \"{url}\"\nroot_key_file = \"{}\"", k.display()),
        None => format!("database = \"{url}\""),
    };
    (Server::start_in_with_config(&dir, true, &extra), dir)
}

/// Calls `attempt` every 10 ms until it succeeds or `limit` passes; returns how long it took.
async fn time_until<F, Fut>(limit: Duration, what: &str, mut attempt: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if attempt().await {
            let took = started.elapsed();
            println!("{what}: seen on the other node after {took:?}");
            return took;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not seen on the other node within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_made_on_one_node_authenticate_on_another() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let (b, _) = node(tmp.path(), "b", &url, Some(&a_dir.join("root.key")));

    // An id no node knows is refused (and costs node B one store read).
    let unknown = b.kms("AKIANOSUCHKEY0000001", "nope");
    assert_eq!(
        code(unknown.list_keys().send().await),
        "UnrecognizedClientException"
    );

    // A session made on node A works on node B on the first request.
    let sts_a = a.sts(AKID_A, SECRET_A, None);
    let session = sts_a
        .get_session_token()
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let c = session.credentials.unwrap();
    let b_session = b.kms_session(&c.access_key_id, &c.secret_access_key, &c.session_token);
    let took = time_until(Duration::from_secs(1), "STS session", || async {
        b_session.list_keys().send().await.is_ok()
    })
    .await;
    assert!(took < Duration::from_secs(1));
    let wrong_token = b.kms_session(&c.access_key_id, &c.secret_access_key, "not-the-token");
    assert_eq!(
        code(wrong_token.list_keys().send().await),
        "UnrecognizedClientException"
    );

    // A new account's root access key, made through node A's operator endpoint.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(["account", "create", "--data-dir"])
        .arg(&a_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let b_new = b.kms(&field("aws_access_key_id"), &field("aws_secret_access_key"));
    let took = time_until(
        Duration::from_secs(1),
        "new account's access key",
        || async { b_new.list_keys().send().await.is_ok() },
    )
    .await;
    assert!(took < Duration::from_secs(1));
}

/// The error code of an Encrypt through `kms` with `key`, or "ok".
async fn encrypt_outcome(kms: &aws_sdk_kms::Client, key: &str) -> String {
    match kms
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
    {
        Ok(_) => "ok".into(),
        Err(e) => e
            .as_service_error()
            .and_then(aws_sdk_kms::error::ProvideErrorMetadata::code)
            .unwrap_or("not a service error")
            .to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_node_take_effect_on_another_within_a_second() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let (b, _) = node(tmp.path(), "b", &url, Some(&a_dir.join("root.key")));
    let kms_a = a.kms(AKID_A, SECRET_A);
    let kms_b = b.kms(AKID_A, SECRET_A);
    let second = Duration::from_secs(1);
    let new_key = || async {
        kms_a
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id
    };
    let until = |kms: aws_sdk_kms::Client, key: String, want: &'static str| {
        move || {
            let (kms, key) = (kms.clone(), key.clone());
            async move { encrypt_outcome(&kms, &key).await == want }
        }
    };

    // An IAM user and its access key made on A; a grant on A lets the user encrypt on B.
    let iam_a = a.iam(AKID_A, SECRET_A);
    let (alice_akid, alice_secret, alice_arn) = new_iam_user(&iam_a, "alice").await;
    let alice_b = b.kms(&alice_akid, &alice_secret);
    let key = new_key().await;
    // Known on B once its IAM snapshot has the user (the feed): then refused, for lack of a
    // permission, not as an unknown key.
    let took = time_until(
        second,
        "IAM user and access key created",
        until(alice_b.clone(), key.clone(), "AccessDeniedException"),
    )
    .await;
    assert!(took < second);
    let grant = kms_a
        .create_grant()
        .key_id(&key)
        .grantee_principal(&alice_arn)
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    let took = time_until(
        second,
        "grant created",
        until(alice_b.clone(), key.clone(), "ok"),
    )
    .await;
    assert!(took < second);

    kms_a
        .revoke_grant()
        .key_id(&key)
        .grant_id(grant.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    let took = time_until(
        second,
        "grant revoked",
        until(alice_b.clone(), key.clone(), "AccessDeniedException"),
    )
    .await;
    assert!(took < second);

    // The key disabled on A: B, which has it cached, refuses it.
    assert_eq!(encrypt_outcome(&kms_b, &key).await, "ok");
    kms_a.disable_key().key_id(&key).send().await.unwrap();
    let took = time_until(
        second,
        "key disabled",
        until(kms_b.clone(), key.clone(), "DisabledException"),
    )
    .await;
    assert!(took < second);

    // Scheduled for deletion on A.
    let doomed = new_key().await;
    assert_eq!(encrypt_outcome(&kms_b, &doomed).await, "ok");
    kms_a
        .schedule_key_deletion()
        .key_id(&doomed)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let took = time_until(
        second,
        "key scheduled for deletion",
        until(kms_b.clone(), doomed.clone(), "KMSInvalidStateException"),
    )
    .await;
    assert!(took < second);

    // A key policy denying Encrypt, put on A.
    let guarded = new_key().await;
    assert_eq!(encrypt_outcome(&kms_b, &guarded).await, "ok");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*"}}]}}"#,
        account = common::ACCOUNT_A
    );
    kms_a
        .put_key_policy()
        .key_id(&guarded)
        .policy(policy)
        .send()
        .await
        .unwrap();
    let took = time_until(
        second,
        "key policy changed",
        until(kms_b.clone(), guarded.clone(), "AccessDeniedException"),
    )
    .await;
    assert!(took < second);

    // Alice's access key deleted on A: B no longer knows it.
    iam_a
        .delete_access_key()
        .user_name("alice")
        .access_key_id(&alice_akid)
        .send()
        .await
        .unwrap();
    let took = time_until(
        second,
        "access key deleted",
        until(alice_b.clone(), key.clone(), "UnrecognizedClientException"),
    )
    .await;
    assert!(took < second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_rotate_a_due_key_once() {
    use trent_core::Store;
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let root_key = a_dir.join("root.key");
    let (b, _) = node(tmp.path(), "b", &url, Some(&root_key));
    let (c, _) = node(tmp.path(), "c", &url, Some(&root_key));
    let clients = [
        a.kms(AKID_A, SECRET_A),
        b.kms(AKID_A, SECRET_A),
        c.kms(AKID_A, SECRET_A),
    ];
    // Enough keys that one node's run overlaps the others' (each polls the feed every 100 ms).
    let mut keys = Vec::new();
    for _ in 0..24 {
        let key = clients[0]
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id;
        clients[0]
            .enable_key_rotation()
            .key_id(&key)
            .rotation_period_in_days(90)
            .send()
            .await
            .unwrap();
        keys.push(key);
    }
    // And keys scheduled for deletion, due once the clock has moved too.
    let mut doomed = Vec::new();
    for _ in 0..6 {
        let key = clients[0]
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id;
        clients[0]
            .schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        doomed.push(key);
    }
    // Every node holds every key in its cache, rotation not yet due.
    for kms in &clients {
        for key in &keys {
            assert_eq!(encrypt_outcome(kms, key).await, "ok");
        }
    }
    // The operator moves the shared clock 100 days on (as `advance-clock` does, without running
    // the work on one node first): every node learns it from the feed, and finds every key due.
    let operator = trent_store_postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    operator
        .set_clock_offset_ms(100 * 86_400_000)
        .await
        .unwrap();
    let rotations = |key: String| {
        let kms = clients[2].clone();
        async move {
            kms.list_key_rotations()
                .key_id(key)
                .send()
                .await
                .unwrap()
                .rotations()
                .len()
        }
    };
    time_until(Duration::from_secs(3), "rotations done", || async {
        let mut all = true;
        for key in &keys {
            all &= rotations(key.clone()).await >= 1;
        }
        all
    })
    .await;
    // Two more background ticks on every node: nobody rotates again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for key in &keys {
        assert_eq!(rotations(key.clone()).await, 1, "key {key} rotated once");
    }
    // Every doomed key is gone on every node, each deleted by exactly one node: the nodes'
    // deletion counters add up to the number of keys (and their rotations to theirs).
    for kms in &clients {
        for key in &doomed {
            let described = kms.describe_key().key_id(key).send().await;
            assert_eq!(code(described), "NotFoundException");
        }
    }
    let total = |series: &str| -> f64 {
        [&a, &b, &c]
            .iter()
            .map(|node| metric(&node.endpoint, series))
            .sum()
    };
    assert_eq!(total("trent_keys_deleted_total"), 6.0);
    assert_eq!(total("trent_keys_rotated_total"), 24.0);
}

/// The value of Prometheus series `series` on the node at `endpoint` (`GET /metrics`).
fn metric(endpoint: &str, series: &str) -> f64 {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or_else(
            || panic!("no {series} in {response}"),
            |v| v.trim().parse().unwrap(),
        )
}

/// The error code and HTTP status of a CreateKey through `kms`, or ("ok", 200).
async fn create_key_outcome(kms: &aws_sdk_kms::Client) -> (String, u16) {
    match kms.create_key().send().await {
        Ok(_) => ("ok".into(), 200),
        Err(e) => {
            let status = e.raw_response().map_or(0, |r| r.status().as_u16());
            let code = e
                .as_service_error()
                .and_then(aws_sdk_kms::error::ProvideErrorMetadata::code)
                .unwrap_or("not a service error")
                .to_string();
            (code, status)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_outlive_losing_the_database_and_recover_by_themselves() {
    let mut cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let (b, _) = node(tmp.path(), "b", &url, Some(&a_dir.join("root.key")));
    let kms_a = a.kms(AKID_A, SECRET_A);
    let kms_b = b.kms(AKID_A, SECRET_A);
    let key = kms_a
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    // Both nodes hold the key (and the caller's credential) in memory.
    assert_eq!(encrypt_outcome(&kms_a, &key).await, "ok");
    assert_eq!(encrypt_outcome(&kms_b, &key).await, "ok");

    cluster.shut_down().unwrap();
    // A call that writes the database fails at once, with AWS's retryable error.
    for kms in [&kms_a, &kms_b] {
        let started = Instant::now();
        let outcome = create_key_outcome(kms).await;
        let took = started.elapsed();
        println!("CreateKey without the database: {outcome:?} after {took:?}");
        assert_eq!(outcome, ("DependencyTimeoutException".into(), 503));
        assert!(took < Duration::from_secs(2), "failed after {took:?}");
    }
    // Cryptography on a cached key needs no database.
    for kms in [&kms_a, &kms_b] {
        let blob = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"still here".to_vec()))
            .send()
            .await
            .unwrap()
            .ciphertext_blob
            .unwrap();
        let plain = kms
            .decrypt()
            .ciphertext_blob(blob)
            .send()
            .await
            .unwrap()
            .plaintext
            .unwrap();
        assert_eq!(plain.as_ref(), b"still here");
    }
    // A credential not in memory cannot be looked up: the same retryable error (KMS) and
    // ServiceUnavailable (STS), at once, never "unknown key" or an internal error.
    let started = Instant::now();
    let stranger = b.kms("AKIANOTINMEMORY00001", "secret");
    let failed = stranger.list_keys().send().await.unwrap_err();
    let status = failed.raw_response().map(|r| r.status().as_u16());
    assert_eq!(
        (code(Err::<(), _>(failed)), status),
        ("DependencyTimeoutException".to_string(), Some(503))
    );
    let sts_stranger = b.sts("AKIANOTINMEMORY00001", "secret", None);
    let failed = sts_stranger.get_caller_identity().send().await.unwrap_err();
    let status = failed.raw_response().map(|r| r.status().as_u16());
    assert_eq!(
        (code(Err::<(), _>(failed)), status),
        ("ServiceUnavailable".to_string(), Some(503))
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // A while without it: the feed, the listener and the background task keep failing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        create_key_outcome(&kms_a).await.0,
        "DependencyTimeoutException"
    );

    cluster.start_again().unwrap();
    // Both nodes write again without a restart of their own.
    for kms in [&kms_a, &kms_b] {
        let kms = kms.clone();
        time_until(Duration::from_secs(5), "CreateKey after recovery", || {
            let kms = kms.clone();
            async move { create_key_outcome(&kms).await.0 == "ok" }
        })
        .await;
    }
    // And apply each other's changes again (the LISTEN connection is back, the feed resumes
    // from its last change): a key disabled on B is refused on A, which had it cached.
    kms_b.disable_key().key_id(&key).send().await.unwrap();
    let took = time_until(
        Duration::from_secs(3),
        "key disabled after recovery",
        || {
            let (kms, key) = (kms_a.clone(), key.clone());
            async move { encrypt_outcome(&kms, &key).await == "DisabledException" }
        },
    )
    .await;
    assert!(took < Duration::from_secs(3));
}

/// Multi-Region keys on two nodes: a replica made through node A shows in node B's cached
/// primary within a second (the feed drops the whole family), leaves `Creating` once, and a
/// ciphertext of A's primary decrypts through B's replica; a rotation on A reaches B's replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_region_keys_work_across_two_nodes() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let (b, _) = node(tmp.path(), "b", &url, Some(&a_dir.join("root.key")));
    let us_a = a.kms(AKID_A, SECRET_A);
    let us_b = b.kms(AKID_A, SECRET_A);
    let eu_b = b.kms_in(AKID_A, SECRET_A, "eu-west-1");
    let key_id = us_a
        .create_key()
        .multi_region(true)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    // B caches the primary before the replica exists.
    let replicas = |kms: aws_sdk_kms::Client, key: String| async move {
        kms.describe_key()
            .key_id(&key)
            .send()
            .await
            .ok()
            .and_then(|d| d.key_metadata)
            .and_then(|m| m.multi_region_configuration)
            .map(|c| c.replica_keys().len())
            .unwrap_or(0)
    };
    assert_eq!(replicas(us_b.clone(), key_id.clone()).await, 0);
    us_a.replicate_key()
        .key_id(&key_id)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap();
    let took = time_until(Duration::from_secs(1), "replica created", || {
        let (kms, key) = (us_b.clone(), key_id.clone());
        async move { replicas(kms, key).await == 1 }
    })
    .await;
    assert!(took < Duration::from_secs(1));
    let state = |kms: aws_sdk_kms::Client, key: String| async move {
        kms.describe_key()
            .key_id(&key)
            .send()
            .await
            .ok()
            .and_then(|d| d.key_metadata)
            .and_then(|m| m.key_state)
            .map(|s| s.as_str().to_string())
            .unwrap_or_default()
    };
    time_until(Duration::from_secs(15), "replica enabled", || {
        let (kms, key) = (eu_b.clone(), key_id.clone());
        async move { state(kms, key).await == "Enabled" }
    })
    .await;
    let encrypt = |kms: aws_sdk_kms::Client, key: String| async move {
        kms.encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"across".to_vec()))
            .send()
            .await
            .unwrap()
            .ciphertext_blob
            .unwrap()
    };
    let blob = encrypt(us_a.clone(), key_id.clone()).await;
    let plain = eu_b
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap()
        .plaintext
        .unwrap();
    assert_eq!(plain.as_ref(), b"across");

    // A rotation through A: B's replica (cached, it just decrypted) uses the new material.
    us_a.rotate_key_on_demand()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let material = us_a
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .current_key_material_id
        .unwrap();
    time_until(Duration::from_secs(1), "rotation", || {
        let (kms, key, material) = (eu_b.clone(), key_id.clone(), material.clone());
        async move {
            kms.describe_key()
                .key_id(&key)
                .send()
                .await
                .ok()
                .and_then(|d| d.key_metadata)
                .and_then(|m| m.current_key_material_id)
                == Some(material)
        }
    })
    .await;
    let after = encrypt(eu_b.clone(), key_id.clone()).await;
    let opened = us_a.decrypt().ciphertext_blob(after).send().await.unwrap();
    assert_eq!(opened.key_material_id(), Some(material.as_str()));
}

/// The error code of a call's result, or "ok", and how long it took.
async fn timed<T, E, F>(call: F) -> (String, Duration)
where
    F: std::future::Future<
            Output = Result<
                T,
                aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
            >,
        >,
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
    T: std::fmt::Debug,
{
    let started = Instant::now();
    let outcome = match call.await {
        Ok(_) => "ok".to_string(),
        Err(e) => code(Err::<(), _>(e)),
    };
    (outcome, started.elapsed())
}

/// A frozen PostgreSQL (its processes stopped: connections open, nothing answered, no
/// server-side timeout fires) holds no call for longer than the store's bound: reads, writes
/// and credential lookups answer `DependencyTimeoutException`, Encrypt on cached keys keeps
/// working at once. After it resumes, a write issued during the freeze is seen alike on both
/// nodes — on the node that issued it too, whose feed skips its own changes: the write
/// finished after its caller was answered, so that node reloads its caches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_holds_no_call_and_the_nodes_agree_after() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let (b, _) = node(tmp.path(), "b", &url, Some(&a_dir.join("root.key")));
    let kms_a = a.kms(AKID_A, SECRET_A);
    let kms_b = b.kms(AKID_A, SECRET_A);
    let new_key = || async {
        kms_a
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id
    };
    let cached = new_key().await;
    let target = new_key().await;
    let unseen_on_b = new_key().await;
    for kms in [&kms_a, &kms_b] {
        assert_eq!(encrypt_outcome(kms, &cached).await, "ok");
        assert_eq!(encrypt_outcome(kms, &target).await, "ok");
    }
    let stranger = b.kms("AKIANOTINMEMORY00002", "secret");
    let bound = trent_store_postgres::CALL_TIMEOUT + Duration::from_secs(2);

    let frozen = cluster.freeze().unwrap();
    println!("froze PostgreSQL processes {frozen:?}");
    let (grant, create, describe, credential, enc_a, enc_b) = tokio::join!(
        timed(
            kms_a
                .create_grant()
                .key_id(&target)
                .grantee_principal(format!("arn:aws:iam::{}:root", common::ACCOUNT_A))
                .operations(GrantOperation::Encrypt)
                .send()
        ),
        timed(kms_a.create_key().send()),
        timed(kms_b.describe_key().key_id(&unseen_on_b).send()),
        timed(stranger.list_keys().send()),
        async {
            // Encrypt on cached keys while the writes above wait: answered at once.
            tokio::time::sleep(Duration::from_millis(500)).await;
            timed(
                kms_a
                    .encrypt()
                    .key_id(&cached)
                    .plaintext(Blob::new(b"x".to_vec()))
                    .send(),
            )
            .await
        },
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            timed(
                kms_b
                    .encrypt()
                    .key_id(&cached)
                    .plaintext(Blob::new(b"x".to_vec()))
                    .send(),
            )
            .await
        },
    );
    println!(
        "frozen: CreateGrant {grant:?}, CreateKey {create:?}, DescribeKey (store read) \
         {describe:?}, unknown credential {credential:?}, Encrypt A {enc_a:?}, B {enc_b:?}"
    );
    for (what, (outcome, took)) in [
        ("CreateGrant", &grant),
        ("CreateKey", &create),
        ("DescribeKey", &describe),
        ("credential lookup", &credential),
    ] {
        assert_eq!(outcome, "DependencyTimeoutException", "{what}");
        assert!(*took < bound, "{what} answered after {took:?}");
    }
    for (outcome, took) in [&enc_a, &enc_b] {
        assert_eq!(outcome, "ok");
        assert!(*took < Duration::from_secs(1), "Encrypt took {took:?}");
    }
    // Still frozen: further calls answer within the bound too (the nodes know the database
    // is not answering), and cryptography on cached keys goes on.
    let (again_a, again_b) = tokio::join!(
        timed(kms_a.create_key().send()),
        timed(kms_b.create_key().send())
    );
    println!("still frozen: CreateKey A {again_a:?}, B {again_b:?}");
    for (outcome, took) in [&again_a, &again_b] {
        assert_eq!(outcome, "DependencyTimeoutException");
        assert!(*took < bound, "answered after {took:?}");
    }
    assert_eq!(encrypt_outcome(&kms_a, &cached).await, "ok");
    assert_eq!(encrypt_outcome(&kms_b, &cached).await, "ok");

    cluster.thaw().unwrap();
    // The CreateGrant sent during the freeze commits when the server resumes if its INSERT
    // was already on a connection's socket; if its connection was still being opened when
    // the server froze, it never reaches the database. Either way its caller was told it
    // timed out, and both nodes must come to list what the database holds — A too, whose
    // feed skips its own changes, so a stale cache on A shows here as 0 against 1.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // The thawed server finishes what it had received before answering this new connection's
    // query only eventually; wait until the count has been stable for a second.
    let mut in_database = -1_i64;
    let stable_since = Instant::now();
    let mut last_change = stable_since;
    while last_change.elapsed() < Duration::from_secs(1) {
        let row = client
            .query_one("SELECT count(*) FROM grants WHERE key_id = $1", &[&target])
            .await
            .unwrap();
        let count: i64 = row.get(0);
        if count != in_database {
            in_database = count;
            last_change = Instant::now();
        }
        assert!(
            stable_since.elapsed() < Duration::from_secs(10),
            "grant count never settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "the database holds {in_database} grant(s) from the CreateGrant sent during the freeze"
    );
    let expected = usize::try_from(in_database).unwrap();
    let grants = |kms: aws_sdk_kms::Client, key: String| async move {
        kms.list_grants()
            .key_id(key)
            .send()
            .await
            .unwrap()
            .grants()
            .len()
    };
    let took = time_until(
        Duration::from_secs(5),
        "CreateGrant issued during the freeze",
        || {
            let (kms_a, kms_b, target) = (kms_a.clone(), kms_b.clone(), target.clone());
            async move {
                grants(kms_a, target.clone()).await == expected
                    && grants(kms_b, target).await == expected
            }
        },
    )
    .await;
    println!("after the thaw both nodes list what the database holds after {took:?}");
    // And both write again.
    for kms in [&kms_a, &kms_b] {
        let kms = kms.clone();
        time_until(Duration::from_secs(10), "CreateKey after the thaw", || {
            let kms = kms.clone();
            async move { create_key_outcome(&kms).await.0 == "ok" }
        })
        .await;
    }
}

/// A node that could not replay the feed for longer than its retention (here: its process
/// stopped while the changes it missed were pruned) notices the gap and drops every cache:
/// a key disabled, an alias moved and an access key deleted meanwhile all take effect on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_pruned_changes_reloads_its_caches() {
    use trent_core::Store;
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let (b, _) = node(tmp.path(), "b", &url, Some(&a_dir.join("root.key")));
    let kms_a = a.kms(AKID_A, SECRET_A);
    let kms_b = b.kms(AKID_A, SECRET_A);
    let new_key = || async {
        kms_a
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id
    };
    let disabled = new_key().await;
    let (first, second) = (new_key().await, new_key().await);
    kms_a
        .create_alias()
        .alias_name("alias/moving")
        .target_key_id(&first)
        .send()
        .await
        .unwrap();
    let iam_a = a.iam(AKID_A, SECRET_A);
    let (alice_akid, alice_secret, alice_arn) = new_iam_user(&iam_a, "alice").await;
    kms_a
        .create_grant()
        .key_id(&first)
        .grantee_principal(&alice_arn)
        .operations(GrantOperation::DescribeKey)
        .send()
        .await
        .unwrap();
    let alice_b = b.kms(&alice_akid, &alice_secret);
    let encrypted_under = |kms: aws_sdk_kms::Client| async move {
        kms.encrypt()
            .key_id("alias/moving")
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap()
            .key_id
            .unwrap()
    };
    // B holds all of it in memory.
    time_until(Duration::from_secs(2), "alice on B", || {
        let (alice_b, first) = (alice_b.clone(), first.clone());
        async move { alice_b.describe_key().key_id(&first).send().await.is_ok() }
    })
    .await;
    assert_eq!(encrypt_outcome(&kms_b, &disabled).await, "ok");
    assert!(encrypted_under(kms_b.clone()).await.ends_with(&first));

    // B stops replaying; meanwhile A changes all three, and the changes are pruned.
    let stop = |signal: &str| {
        let out = std::process::Command::new("kill")
            .args([signal, &b.pid().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    stop("-STOP");
    kms_a.disable_key().key_id(&disabled).send().await.unwrap();
    kms_a
        .update_alias()
        .alias_name("alias/moving")
        .target_key_id(&second)
        .send()
        .await
        .unwrap();
    iam_a
        .delete_access_key()
        .user_name("alice")
        .access_key_id(&alice_akid)
        .send()
        .await
        .unwrap();
    // One more change after them: the newest, the one pruning keeps, is none of the three.
    new_key().await;
    let operator = trent_store_postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    // Everything pruned (as after an hour): only the newest change is kept.
    let newest = operator.last_change().await.unwrap();
    operator.prune_changes(i64::MAX).await.unwrap();
    assert_eq!(operator.oldest_change().await.unwrap(), Some(newest));
    stop("-CONT");

    let took = time_until(Duration::from_secs(3), "pruned changes", || {
        let (kms_b, alice_b) = (kms_b.clone(), alice_b.clone());
        let (disabled, first, second) = (disabled.clone(), first.clone(), second.clone());
        async move {
            encrypt_outcome(&kms_b, &disabled).await == "DisabledException"
                && encrypted_under(kms_b.clone()).await.ends_with(&second)
                && timed(alice_b.describe_key().key_id(&first).send()).await.0
                    == "UnrecognizedClientException"
        }
    })
    .await;
    assert!(took < Duration::from_secs(3));
}

/// Tags written to one key through two nodes one right after the other (B's cached copy not
/// yet told of A's change) are both kept: a key update on a shared store is computed from the
/// stored record and written only over it (`Store::update_key_if`), never from a stale cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_one_key_through_two_nodes_are_both_kept() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let (b, _) = node(tmp.path(), "b", &url, Some(&a_dir.join("root.key")));
    let kms_a = a.kms(AKID_A, SECRET_A);
    let kms_b = b.kms(AKID_A, SECRET_A);
    let tag = |k: &str| {
        aws_sdk_kms::types::Tag::builder()
            .tag_key(k)
            .tag_value("v")
            .build()
            .unwrap()
    };
    for trial in 0..20 {
        let key = kms_a
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id;
        assert_eq!(encrypt_outcome(&kms_b, &key).await, "ok"); // cached on B
        kms_a
            .tag_resource()
            .key_id(&key)
            .tags(tag("from-a"))
            .send()
            .await
            .unwrap();
        kms_b
            .tag_resource()
            .key_id(&key)
            .tags(tag("from-b"))
            .send()
            .await
            .unwrap();
        for kms in [&kms_a, &kms_b] {
            let kms = kms.clone();
            let key = key.clone();
            time_until(Duration::from_secs(2), "both tags", move || {
                let (kms, key) = (kms.clone(), key.clone());
                async move {
                    let tags = kms.list_resource_tags().key_id(&key).send().await.unwrap();
                    let mut names: Vec<_> = tags.tags().iter().map(|t| t.tag_key()).collect();
                    names.sort_unstable();
                    names == ["from-a", "from-b"]
                }
            })
            .await;
        }
        println!("trial {trial}: both tags kept");
    }
}

/// Changes to one IAM entity through two nodes at once (B's snapshot not yet told of A's
/// change) are both kept: on a shared store an IAM write is written only over the documents it
/// was computed from (`Store::write_iam_if`), else computed again from the stored ones; never
/// a whole document from a stale snapshot over another node's change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_one_iam_entity_through_two_nodes_are_both_kept() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let (b, _) = node(tmp.path(), "b", &url, Some(&a_dir.join("root.key")));
    let iam_a = a.iam(AKID_A, SECRET_A);
    let iam_b = b.iam(AKID_A, SECRET_A);
    let tag = |k: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(k)
            .value("v")
            .build()
            .unwrap()
    };
    for trial in 0..15 {
        let (user, group) = (format!("u{trial}"), format!("g{trial}"));
        let (one, two) = (format!("m{trial}a"), format!("m{trial}b"));
        for name in [&user, &one, &two] {
            iam_a.create_user().user_name(name).send().await.unwrap();
        }
        iam_a
            .create_group()
            .group_name(&group)
            .send()
            .await
            .unwrap();
        // B knows every entity before the race.
        let iam = iam_b.clone();
        let (u, g) = (user.clone(), group.clone());
        time_until(Duration::from_secs(2), "entities on B", move || {
            let (iam, u, g) = (iam.clone(), u.clone(), g.clone());
            async move {
                iam.get_user().user_name(&u).send().await.is_ok()
                    && iam.get_group().group_name(&g).send().await.is_ok()
            }
        })
        .await;
        let (ta, tb) = tokio::join!(
            iam_a.tag_user().user_name(&user).tags(tag("from-a")).send(),
            iam_b.tag_user().user_name(&user).tags(tag("from-b")).send(),
        );
        ta.unwrap();
        tb.unwrap();
        let (ga, gb) = tokio::join!(
            iam_a
                .add_user_to_group()
                .group_name(&group)
                .user_name(&one)
                .send(),
            iam_b
                .add_user_to_group()
                .group_name(&group)
                .user_name(&two)
                .send(),
        );
        ga.unwrap();
        gb.unwrap();
        for iam in [&iam_a, &iam_b] {
            let (iam, u, g) = (iam.clone(), user.clone(), group.clone());
            let want = vec![one.clone(), two.clone()];
            time_until(
                Duration::from_secs(2),
                "both tags and both members",
                move || {
                    let (iam, u, g, want) = (iam.clone(), u.clone(), g.clone(), want.clone());
                    async move {
                        let tags = iam.list_user_tags().user_name(&u).send().await.unwrap();
                        let mut names: Vec<_> = tags.tags().iter().map(|t| t.key()).collect();
                        names.sort_unstable();
                        let members = iam.get_group().group_name(&g).send().await.unwrap();
                        let mut members: Vec<_> = members
                            .users()
                            .iter()
                            .map(|u| u.user_name().to_string())
                            .collect();
                        members.sort_unstable();
                        names == ["from-a", "from-b"] && members == want
                    }
                },
            )
            .await;
        }
        println!("trial {trial}: both tags and both members kept");
    }
}

/// One alias created through two nodes at once exists once: one CreateAlias wins, the other is
/// AlreadyExistsException (the database's unique name, not a node's cache, decides), and both
/// nodes then resolve it to the winner's key. (UpdateAlias rewrites the one target column of a
/// row it reads from the store, so two at once leave the later one's target: nothing is lost.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alias_created_through_two_nodes_at_once_exists_once() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let (b, _) = node(tmp.path(), "b", &url, Some(&a_dir.join("root.key")));
    let kms_a = a.kms(AKID_A, SECRET_A);
    let kms_b = b.kms(AKID_A, SECRET_A);
    for trial in 0..10 {
        let (ka, kb) = (
            common::new_key_id(&kms_a).await,
            common::new_key_id(&kms_b).await,
        );
        let alias = format!("alias/race-{trial}");
        let (ra, rb) = tokio::join!(
            kms_a
                .create_alias()
                .alias_name(&alias)
                .target_key_id(&ka)
                .send(),
            kms_b
                .create_alias()
                .alias_name(&alias)
                .target_key_id(&kb)
                .send(),
        );
        let winner = match (ra.is_ok(), rb.is_ok()) {
            (true, false) => {
                assert_eq!(code(rb), "AlreadyExistsException");
                ka.clone()
            }
            (false, true) => {
                assert_eq!(code(ra), "AlreadyExistsException");
                kb.clone()
            }
            _ => panic!("exactly one CreateAlias must win: {ra:?} {rb:?}"),
        };
        for kms in [&kms_a, &kms_b] {
            let (kms, alias, winner) = (kms.clone(), alias.clone(), winner.clone());
            time_until(Duration::from_secs(2), "the winning alias", move || {
                let (kms, alias, winner) = (kms.clone(), alias.clone(), winner.clone());
                async move {
                    let d = kms.describe_key().key_id(&alias).send().await;
                    d.is_ok_and(|d| d.key_metadata.is_some_and(|m| m.key_id == winner))
                }
            })
            .await;
        }
    }
}

/// LookupEvents on `server` with `body`, signed as account A's root: (status, answer).
async fn lookup_events(server: &Server, body: &serde_json::Value) -> (u16, serde_json::Value) {
    lookup_events_as(server, AKID_A, SECRET_A, body).await
}

/// LookupEvents (CloudTrail's awsJson, SigV4 service `cloudtrail`) on `server` with `body`,
/// signed with (`akid`, `secret`): (status, answer).
async fn lookup_events_as(
    server: &Server,
    akid: &str,
    secret: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    const TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";
    let host = server.host().to_string();
    let body = body.to_string();
    let content_type = "application/x-amz-json-1.1";
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let mut req = hyper::Request::post("/")
        .header("host", &host)
        .header("content-type", content_type)
        .header("x-amz-target", TARGET);
    for (k, v) in trent_sigv4::sign(
        "POST",
        "/",
        "",
        &host,
        &[("content-type", content_type), ("x-amz-target", TARGET)],
        body.as_bytes(),
        akid,
        secret,
        None,
        "us-east-1",
        "cloudtrail",
        now,
    ) {
        req = req.header(k, v);
    }
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(req.body(Full::new(hyper::body::Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// `trent audit verify --database URL` (with a node's data directory): (success, stdout).
fn verify_database(url: &str, data_dir: &Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(["audit", "verify", "--database", url, "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_audit_trail_for_two_nodes_on_postgres() {
    use aws_sdk_kms::operation::RequestId;
    use serde_json::json;

    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("test PostgreSQL: {e}"));
    let url = cluster.fresh_database().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, a_dir) = node(tmp.path(), "a", &url, None);
    let root_key = a_dir.join("root.key");
    let (b, b_dir) = node(tmp.path(), "b", &url, Some(&root_key));
    let (kms_a, kms_b) = (a.kms(AKID_A, SECRET_A), b.kms(AKID_A, SECRET_A));
    let key_id = kms_a
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let key_arn = format!("arn:aws:kms:us-east-1:{}:key/{key_id}", common::ACCOUNT_A);
    let encrypted = kms_a
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"one trail".to_vec()))
        .send()
        .await
        .unwrap();
    let request_id = encrypted.request_id().unwrap().to_string();
    // A call on node B too, so the trail has both nodes' events.
    kms_b.describe_key().key_id(&key_id).send().await.unwrap();

    // Node A's Encrypt is found by a lookup on node B within the shipping interval (polled,
    // with a deadline).
    let by_key = json!({
        "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": key_arn}],
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        let (status, answer) = lookup_events(&b, &by_key).await;
        assert_eq!(status, 200, "{answer}");
        let hit = answer["Events"].as_array().unwrap().iter().find(|e| {
            let record: serde_json::Value =
                serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap();
            record["requestID"] == request_id.as_str()
        });
        if let Some(e) = hit {
            break e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "node A's Encrypt not in node B's LookupEvents within 10 s: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(found["EventName"], "Encrypt");
    assert_eq!(found["EventSource"], "kms.amazonaws.com");
    assert_eq!(found["Username"], "root");
    assert_eq!(found["Resources"][0]["ResourceName"], key_arn.as_str());
    let record: serde_json::Value =
        serde_json::from_str(found["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(record["recipientAccountId"], common::ACCOUNT_A);
    // Every attribute and the time range are served: EventId finds exactly that event.
    let event_id = found["EventId"].as_str().unwrap().to_string();
    let (_, by_id) = lookup_events(
        &b,
        &json!({"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": event_id}]}),
    )
    .await;
    assert_eq!(by_id["Events"].as_array().unwrap().len(), 1, "{by_id}");
    let future = json!({"StartTime": 4_000_000_000i64});
    let (_, none) = lookup_events(&b, &future).await;
    assert_eq!(none["Events"].as_array().unwrap().len(), 0, "{none}");
    // Account B sees none of account A's events, even by A's event id.
    let (_, as_b) = lookup_events_as(
        &b,
        common::AKID_B,
        common::SECRET_B,
        &json!({"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": event_id}]}),
    )
    .await;
    assert_eq!(as_b["Events"].as_array().unwrap().len(), 0, "{as_b}");

    // Paging one event at a time across nodes: newest first, no event twice, both nodes' calls.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut times = Vec::new();
    loop {
        let mut body = json!({"MaxResults": 1});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let (status, answer) = lookup_events(&a, &body).await;
        assert_eq!(status, 200, "{answer}");
        for e in answer["Events"].as_array().unwrap() {
            seen.push(e["EventId"].as_str().unwrap().to_string());
            times.push(e["EventTime"].as_f64().unwrap());
            let record: serde_json::Value =
                serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap();
            assert_eq!(record["recipientAccountId"], common::ACCOUNT_A);
        }
        match answer["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(seen.len() < 500, "paging does not end");
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an event came twice: {seen:?}");
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
    assert!(seen.contains(&event_id));

    // GetKeyLastUsage on node B answers node A's Encrypt.
    let usage = kms_b
        .get_key_last_usage()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let last = usage.key_last_usage().unwrap();
    assert_eq!(last.operation().unwrap().as_str(), "Encrypt");
    assert_eq!(last.kms_request_id(), Some(request_id.as_str()));
    assert_eq!(last.cloud_trail_event_id(), Some(event_id.as_str()));

    // Verify from the database: intact, and an edited row is caught.
    let (ok, out) = verify_database(&url, &a_dir);
    assert!(ok, "{out}");
    assert!(
        out.contains("the shared trail is intact (2 nodes)"),
        "{out}"
    );
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let edited = client
        .execute(
            "UPDATE audit_events SET record = convert_to(replace(convert_from(record, 'UTF8'),
                 '\"sourceIPAddress\":\"127.0.0.1\"', '\"sourceIPAddress\":\"10.9.9.9\"'), 'UTF8')
             WHERE event_id = $1",
            &[&event_id],
        )
        .await
        .unwrap();
    assert_eq!(edited, 1);
    let (ok, out) = verify_database(&url, &a_dir);
    assert!(!ok, "{out}");
    assert!(out.contains("does not match its digest"), "{out}");
    // An indexed column changed alone (the event hidden from account A's lookups) is caught too.
    client
        .execute(
            "UPDATE audit_events SET record = convert_to(replace(convert_from(record, 'UTF8'),
                 '\"sourceIPAddress\":\"10.9.9.9\"', '\"sourceIPAddress\":\"127.0.0.1\"'), 'UTF8'),
                 recipient_account_id = '999999999999'
             WHERE event_id = $1",
            &[&event_id],
        )
        .await
        .unwrap();
    let (ok, out) = verify_database(&url, &a_dir);
    assert!(!ok, "{out}");
    assert!(!out.contains("does not match its digest"), "{out}");
    assert!(
        out.contains("indexed columns differ from its record"),
        "{out}"
    );
    // A removed event is caught.
    client
        .execute("DELETE FROM audit_events WHERE event_id = $1", &[&event_id])
        .await
        .unwrap();
    let (ok, out) = verify_database(&url, &a_dir);
    assert!(!ok, "{out}");
    assert!(out.contains("does not match its digest"), "{out}");
    drop(b);
    drop(a);
    let _ = b_dir;
}
