//! End-to-end tests of the admin CLI (`trent account list|create`, `trent credentials rotate`)
//! against a running `trent serve`, and of the development seed file applied at start.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, MacAlgorithmSpec, MessageType, SigningAlgorithmSpec};
use common::{ACCOUNT_A, Server, code};

/// Runs `trent ARGS --data-dir DIR`; returns (success, stdout, stderr).
fn trent(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value of `name = value` in `text`.
fn field(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// `trent account create` printing the credentials: (account, access key id, secret).
fn create_account(data_dir: &Path, extra: &[&str]) -> (String, String, String) {
    let mut args = vec!["account", "create"];
    args.extend_from_slice(extra);
    let (ok, out, err) = trent(data_dir, &args);
    assert!(ok, "{out}{err}");
    let account = out
        .lines()
        .find_map(|l| l.strip_prefix("Created account "))
        .unwrap()
        .trim()
        .to_string();
    (
        account,
        field(&out, "aws_access_key_id"),
        field(&out, "aws_secret_access_key"),
    )
}

fn default_credentials(data_dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(data_dir.join("credentials")).unwrap();
    let section = text.split("[trent]").nth(1).unwrap();
    let section = section.split('[').next().unwrap();
    (
        field(section, "aws_access_key_id"),
        field(section, "aws_secret_access_key"),
    )
}

#[tokio::test]
async fn account_create_gives_working_credentials_that_account_list_shows() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let server = Server::start_in(&data_dir, false);

    let (account, akid, secret) = create_account(&data_dir, &[]);
    assert_eq!(account.len(), 12);
    let kms = server.kms(&akid, &secret);
    let key = kms.create_key().send().await.unwrap();
    let arn = key.key_metadata().unwrap().arn().unwrap().to_string();
    assert!(arn.contains(&format!(":{account}:key/")), "{arn}");

    let (ok, list, err) = trent(&data_dir, &["account", "list"]);
    assert!(ok, "{err}");
    let (default_akid, _) = default_credentials(&data_dir);
    let line = list.lines().find(|l| l.starts_with(&account)).unwrap();
    assert!(line.contains(&akid), "{list}");
    let default_line = list.lines().find(|l| l.contains(&default_akid)).unwrap();
    assert!(default_line.contains("default"), "{list}");
    assert_eq!(list.lines().count(), 3, "header and two accounts: {list}");

    // An explicit id, written to a profile of the data directory's credentials file.
    let (ok, out, err) = trent(
        &data_dir,
        &[
            "account",
            "create",
            "--id",
            "123456789012",
            "--profile",
            "dev",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(!out.contains("aws_secret_access_key"), "{out}");
    let text = std::fs::read_to_string(data_dir.join("credentials")).unwrap();
    let dev = text.split("[dev]").nth(1).unwrap();
    let dev_kms = server.kms(
        &field(dev, "aws_access_key_id"),
        &field(dev, "aws_secret_access_key"),
    );
    let key = dev_kms.create_key().send().await.unwrap();
    assert!(
        key.key_metadata()
            .unwrap()
            .arn()
            .unwrap()
            .contains(":123456789012:key/")
    );
    assert_eq!(
        default_credentials(&data_dir).0,
        default_akid,
        "[trent] kept"
    );

    // Refusals: an existing id, malformed ids, a profile that exists (before anything is made).
    let (ok, _, err) = trent(&data_dir, &["account", "create", "--id", "123456789012"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    for bad in ["12345", "abcdefghijkl", "1234567890123"] {
        let (ok, _, err) = trent(&data_dir, &["account", "create", "--id", bad]);
        assert!(!ok && err.contains("12 decimal digits"), "{bad}: {err}");
    }
    let (ok, _, err) = trent(
        &data_dir,
        &[
            "account",
            "create",
            "--id",
            "555555555555",
            "--profile",
            "dev",
        ],
    );
    assert!(!ok && err.contains("exists already"), "{err}");
    let (_, list, _) = trent(&data_dir, &["account", "list"]);
    assert!(!list.contains("555555555555"), "{list}");
    assert!(list.contains("123456789012"), "{list}");
}

#[tokio::test]
async fn rotation_refuses_the_old_key_and_rewrites_the_credentials_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut server = Server::start_in(&data_dir, false);
    let (old_akid, old_secret) = default_credentials(&data_dir);
    server
        .kms(&old_akid, &old_secret)
        .list_keys()
        .send()
        .await
        .unwrap();

    let (ok, out, err) = trent(&data_dir, &["credentials", "rotate"]);
    assert!(ok, "{out}{err}");
    assert!(!out.contains("aws_secret_access_key"), "{out}");
    let (new_akid, new_secret) = default_credentials(&data_dir);
    assert_ne!(new_akid, old_akid);
    assert_eq!(
        code(server.kms(&old_akid, &old_secret).list_keys().send().await),
        "UnrecognizedClientException"
    );
    server
        .kms(&new_akid, &new_secret)
        .list_keys()
        .send()
        .await
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(data_dir.join("credentials"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Another account: the new secret is printed.
    let (account, akid, secret) = create_account(&data_dir, &[]);
    let (ok, out, err) = trent(&data_dir, &["credentials", "rotate", "--account", &account]);
    assert!(ok, "{out}{err}");
    let (akid2, secret2) = (
        field(&out, "aws_access_key_id"),
        field(&out, "aws_secret_access_key"),
    );
    assert_eq!(
        code(server.kms(&akid, &secret).list_keys().send().await),
        "UnrecognizedClientException"
    );
    server
        .kms(&akid2, &secret2)
        .list_keys()
        .send()
        .await
        .unwrap();
    let (ok, _, err) = trent(
        &data_dir,
        &["credentials", "rotate", "--account", "999999999999"],
    );
    assert!(!ok && err.contains("does not exist"), "{err}");

    // Durable: after a restart the old keys are still refused, the new ones work.
    server.terminate();
    let server = Server::start_in(&data_dir, false);
    for (a, s) in [(&old_akid, &old_secret), (&akid, &secret)] {
        assert_eq!(
            code(server.kms(a, s).list_keys().send().await),
            "UnrecognizedClientException"
        );
    }
    server
        .kms(&new_akid, &new_secret)
        .list_keys()
        .send()
        .await
        .unwrap();
    server
        .kms(&akid2, &secret2)
        .list_keys()
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn declared_accounts_are_not_rotated_and_the_commands_need_the_server() {
    let mut server = Server::start();
    let data_dir = server.data_dir.clone();
    let (ok, _, err) = trent(
        &data_dir,
        &["credentials", "rotate", "--account", ACCOUNT_A],
    );
    assert!(!ok && err.contains("declared in the config file"), "{err}");
    server.kms_a().list_keys().send().await.unwrap();
    // No default account here: rotate needs --account.
    let (ok, _, err) = trent(&data_dir, &["credentials", "rotate"]);
    assert!(!ok && err.contains("--account"), "{err}");

    // A wrong token is refused.
    let token_file = data_dir.join("admin.token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    std::fs::write(&token_file, "0".repeat(64)).unwrap();
    let (ok, _, err) = trent(&data_dir, &["account", "list"]);
    assert!(!ok && err.contains("refused the token"), "{err}");
    std::fs::write(&token_file, token).unwrap();
    let (ok, out, err) = trent(&data_dir, &["account", "list"]);
    assert!(ok && out.contains(ACCOUNT_A), "{out}{err}");

    server.terminate();
    let (ok, _, err) = trent(&data_dir, &["account", "list"]);
    assert!(!ok && err.contains("start `trent serve"), "{err}");
    let (ok, _, err) = trent(&data_dir.join("nowhere"), &["account", "create"]);
    assert!(!ok && err.contains("start `trent serve"), "{err}");
}

const SEED_ACCOUNT: &str = "210987654321";
const SEED_ROOT: (&str, &str) = ("AKIASEEDROOT00000001", "seed-root-secret");
const SEED_APP: (&str, &str) = ("AKIASEEDAPP000000001", "app-secret");
const K1: &str = "bc436485-5092-42b8-92a3-0aa8b93536dc";
const K2: &str = "6a1f3c52-0d1e-4b8f-9c3a-2e5d7f9b1c04";
const K3: &str = "0f4e3b9e-8f4c-4f1a-9d55-3c1f2b7a6e01";
const K4: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";

fn seed_toml() -> String {
    format!(
        r#"
default_account = "{SEED_ACCOUNT}"

[[account]]
id = "{SEED_ACCOUNT}"
root_access_key_id = "{}"
root_secret_access_key = "{}"

[[key]]
id = "{K1}"
description = "dev data key"
backing_keys = ["5cdaead27fe7da2de47945d73cd6d79e36494e73802f3cd3869f1d2cb0b5d7a9"]
aliases = ["alias/dev"]
tags = {{ team = "dev" }}

[[key]]
id = "{K2}"

[[key]]
id = "{K3}"
key_spec = "HMAC_256"
backing_keys = ["000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"]

[[key]]
id = "{K4}"
key_spec = "ECC_NIST_P256"
key_usage = "SIGN_VERIFY"

[[alias]]
name = "alias/signing"
target_key_id = "{K4}"

[[user]]
name = "app"
access_keys = [{{ access_key_id = "{}", secret_access_key = "{}" }}]
[[user.policy]]
name = "use-keys"
document = {{ Version = "2012-10-17", Statement = [{{ Effect = "Allow", Action = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], Resource = "*" }}] }}
"#,
        SEED_ROOT.0, SEED_ROOT.1, SEED_APP.0, SEED_APP.1
    )
}

fn write_seed(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn seeded_server(data_dir: &Path, seed: &Path) -> Server {
    Server::start_in_with_config(
        data_dir,
        false,
        &format!("seed_file = \"{}\"", seed.display()),
    )
}

/// Runs `trent serve` on `data_dir` with `seed`, expecting it to refuse to start; returns
/// its stderr.
fn refused_start(data_dir: &Path, seed: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .arg("--seed")
        .arg(seed)
        .env_remove("TRENT_ROOT_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return err;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("trent serve started with a bad seed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn the_seed_creates_working_keys_aliases_and_users_once() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = write_seed(tmp.path(), "seed.toml", &seed_toml());
    let data_a = tmp.path().join("a").join("data");
    let mut server = seeded_server(&data_a, &seed);
    let root = server.kms(SEED_ROOT.0, SEED_ROOT.1);
    let app = server.kms(SEED_APP.0, SEED_APP.1);

    let k1 = root
        .describe_key()
        .key_id("alias/dev")
        .send()
        .await
        .unwrap();
    let k1 = k1.key_metadata().unwrap();
    assert_eq!(k1.key_id(), K1);
    assert_eq!(k1.description(), Some("dev data key"));
    assert!(k1.arn().unwrap().contains(SEED_ACCOUNT));
    let tags = root.list_resource_tags().key_id(K1).send().await.unwrap();
    assert_eq!(tags.tags()[0].tag_value(), "dev");
    let k4 = root
        .describe_key()
        .key_id("alias/signing")
        .send()
        .await
        .unwrap();
    assert_eq!(
        k4.key_metadata().unwrap().key_spec(),
        Some(&KeySpec::EccNistP256)
    );
    root.sign()
        .key_id(K4)
        .message(Blob::new(b"hello".to_vec()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    let mac = root
        .generate_mac()
        .key_id(K3)
        .message(Blob::new(b"hello".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    let mac = mac.mac().unwrap().as_ref().to_vec();
    // The HMAC key is the seeded material: the MAC is HMAC-SHA256 under those bytes.
    let expected = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &(0u8..32).collect::<Vec<_>>()),
        b"hello",
    );
    assert_eq!(mac, expected.as_ref());

    // The seeded user's fixed key works, within its policy only.
    let blob = app
        .encrypt()
        .key_id("alias/dev")
        .plaintext(Blob::new(b"portable".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let plain = app
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"portable");
    assert_eq!(code(app.create_key().send().await), "AccessDeniedException");

    // What the API changes afterwards, the seed leaves alone at the next start.
    let k2_created = root
        .describe_key()
        .key_id(K2)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .creation_date()
        .cloned();
    root.update_key_description()
        .key_id(K1)
        .description("changed")
        .send()
        .await
        .unwrap();
    root.update_alias()
        .alias_name("alias/dev")
        .target_key_id(K2)
        .send()
        .await
        .unwrap();
    let keys_before = root.list_keys().send().await.unwrap().keys().len();
    assert_eq!(keys_before, 4);
    server.terminate();
    let server = seeded_server(&data_a, &seed);
    let root = server.kms(SEED_ROOT.0, SEED_ROOT.1);
    assert_eq!(
        root.list_keys().send().await.unwrap().keys().len(),
        keys_before
    );
    let k1 = root.describe_key().key_id(K1).send().await.unwrap();
    assert_eq!(k1.key_metadata().unwrap().description(), Some("changed"));
    let dev = root
        .describe_key()
        .key_id("alias/dev")
        .send()
        .await
        .unwrap();
    assert_eq!(dev.key_metadata().unwrap().key_id(), K2);
    let k2 = root.describe_key().key_id(K2).send().await.unwrap();
    assert_eq!(
        k2.key_metadata().unwrap().creation_date().cloned(),
        k2_created
    );
    let aliases = root.list_aliases().send().await.unwrap();
    assert_eq!(aliases.aliases().len(), 2);

    // A fresh data directory seeded the same way decrypts what the first one encrypted, and
    // its HMAC key gives the same MAC.
    let data_b = tmp.path().join("b").join("data");
    let other = seeded_server(&data_b, &seed);
    let root_b = other.kms(SEED_ROOT.0, SEED_ROOT.1);
    let plain = root_b.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"portable");
    assert_eq!(
        plain.key_id(),
        Some(format!("arn:aws:kms:us-east-1:{SEED_ACCOUNT}:key/{K1}").as_str())
    );
    // A generated key (K2) is not portable: it has fresh material on each data directory.
    let k2_blob = root
        .encrypt()
        .key_id(K2)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    assert_eq!(
        code(root_b.decrypt().ciphertext_blob(k2_blob).send().await),
        "InvalidCiphertextException"
    );
}

#[tokio::test]
async fn a_yaml_seed_works_like_the_toml_one() {
    let tmp = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
default_account: "{SEED_ACCOUNT}"
account:
  - id: "{SEED_ACCOUNT}"
    root_access_key_id: {}
    root_secret_access_key: {}
key:
  - id: {K1}
    backing_keys: [5cdaead27fe7da2de47945d73cd6d79e36494e73802f3cd3869f1d2cb0b5d7a9]
    aliases: [alias/dev]
user:
  - name: app
    access_keys:
      - access_key_id: {}
        secret_access_key: {}
    policy:
      - name: use-keys
        document: {{Version: "2012-10-17", Statement: [{{Effect: Allow, Action: "kms:Encrypt", Resource: "*"}}]}}
"#,
        SEED_ROOT.0, SEED_ROOT.1, SEED_APP.0, SEED_APP.1
    );
    let seed = write_seed(tmp.path(), "seed.yaml", &yaml);
    let server = seeded_server(&tmp.path().join("a").join("data"), &seed);
    let app = server.kms(SEED_APP.0, SEED_APP.1);
    let out = app
        .encrypt()
        .key_id("alias/dev")
        .plaintext(Blob::new(b"y".to_vec()))
        .send()
        .await
        .unwrap();
    assert!(out.key_id().unwrap().ends_with(K1));
}

#[tokio::test]
async fn a_bad_seed_refuses_start_and_applies_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // A fresh data directory: a valid key, then an alias of a key that exists nowhere.
    let bad = write_seed(
        tmp.path(),
        "bad.toml",
        &format!(
            "[[key]]\nid = \"{K1}\"\n[[alias]]\nname = \"alias/x\"\ntarget_key_id = \"{K2}\"\n"
        ),
    );
    let fresh = tmp.path().join("fresh").join("data");
    let err = refused_start(&fresh, &bad);
    assert!(err.contains("alias[0] (alias/x): target_key_id"), "{err}");
    assert!(!fresh.exists(), "nothing is created for a refused seed");

    // Malformed files name the entry and the field too.
    for (text, expected) in [
        (
            format!("[[key]]\nid = \"{K1}\"\nbacking_keys = [\"00\"]\n"),
            format!("key[0] ({K1}): backing_keys[0]"),
        ),
        (
            format!("[[key]]\nid = \"{K1}\"\nkey_spec = \"AES_128\"\n"),
            format!("key[0] ({K1}): key_spec"),
        ),
        (
            "[[user]]\nname = \"a b\"\n".to_string(),
            "user[0] (a b): name".to_string(),
        ),
        (
            "[[user]]\nname = \"u\"\n[[user.policy]]\nname = \"p\"\ndocument = \"{}\"\n"
                .to_string(),
            "user[0] (u): policies[0].document".to_string(),
        ),
        (
            "[[key]]\nid = \"not-a-uuid\"\n".to_string(),
            "key[0] (not-a-uuid): key_id".to_string(),
        ),
    ] {
        let seed = write_seed(tmp.path(), "malformed.toml", &text);
        let err = refused_start(&fresh, &seed);
        assert!(err.contains(&expected), "{expected}: {err}");
        assert!(!fresh.exists());
    }

    // An existing data directory: a new valid key, and a seed key that exists with another
    // spec. Refused, naming the conflict, and the new key is not created.
    let seed = write_seed(tmp.path(), "seed.toml", &seed_toml());
    let data = tmp.path().join("existing").join("data");
    let mut server = seeded_server(&data, &seed);
    server.terminate();
    let changed = seed_toml().replace(
        &format!("id = \"{K2}\"\n"),
        &format!("id = \"{K2}\"\nkey_spec = \"RSA_2048\"\n"),
    ) + "\n[[key]]\nid = \"11111111-2222-4333-8444-555555555555\"\n";
    let changed = write_seed(tmp.path(), "changed.toml", &changed);
    let err = refused_start(&data, &changed);
    assert!(
        err.contains(&format!(
            "key[1] ({K2}): key_spec: key {K2} exists with key_spec SYMMETRIC_DEFAULT, the seed says RSA_2048"
        )),
        "{err}"
    );
    let server = seeded_server(&data, &seed);
    let root = server.kms(SEED_ROOT.0, SEED_ROOT.1);
    assert_eq!(
        code(
            root.describe_key()
                .key_id("11111111-2222-4333-8444-555555555555")
                .send()
                .await
        ),
        "NotFoundException"
    );
    assert_eq!(root.list_keys().send().await.unwrap().keys().len(), 4);
}
