//! Shared set-up of the domain tests: a `Kms` over a `MemoryStore` and a clock the test moves,
//! two accounts with root credentials, IAM users built into callers the way the edge does
//! (credential registry → `Kms::caller_for`), and key-policy helpers. No sockets, no files.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "shared test helpers: not every test file uses every helper; a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};
use trent_core::crypto::{DecryptInput, DecryptOutput, EncryptInput, EncryptOutput};
use trent_core::iam::Entity;
use trent_core::keys::CreateKeyInput;
use trent_core::memory_store::MemoryStore;
use trent_core::model::KeyRecord;
use trent_core::{Caller, Clock, Kms, KmsError, Store};
use trent_crypto::RootKey;
use zeroize::Zeroizing;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "111122223333";
pub const OTHER_ACCOUNT: &str = "444455556666";
pub const ROOT_ACCESS_KEY: &str = "AKIAROOTAAAAAAAAAAAA";
pub const OTHER_ROOT_ACCESS_KEY: &str = "AKIAROOTBBBBBBBBBBBB";
/// 2026-01-01T00:00:00Z: where the test clock starts.
pub const START_MS: i64 = 1_767_225_600_000;
pub const DAY_MS: i64 = 86_400_000;
const ROOT_KEY: [u8; 32] = [7; 32];

/// A clock that stands still until the test moves it.
pub struct TestClock {
    now_ms: AtomicI64,
}

impl TestClock {
    pub fn new(now_ms: i64) -> Self {
        Self {
            now_ms: AtomicI64::new(now_ms),
        }
    }

    pub fn set(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, by_ms: i64) {
        self.now_ms.fetch_add(by_ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// One service instance over its store and clock, with both accounts' roots.
pub struct Env {
    pub kms: Kms,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<TestClock>,
    pub root: Caller,
    pub other_root: Caller,
}

/// A fresh service: empty store, clock at [`START_MS`], accounts [`ACCOUNT`] and
/// [`OTHER_ACCOUNT`].
pub async fn env() -> Env {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(TestClock::new(START_MS));
    let kms = open(&store, &clock).await;
    kms.ensure_account(ACCOUNT, ROOT_ACCESS_KEY, "root-secret-of-the-first-account")
        .await
        .unwrap();
    kms.ensure_account(
        OTHER_ACCOUNT,
        OTHER_ROOT_ACCESS_KEY,
        "root-secret-of-the-other-account",
    )
    .await
    .unwrap();
    Env {
        kms,
        store,
        clock,
        root: Caller::root(ACCOUNT, ROOT_ACCESS_KEY, REGION),
        other_root: Caller::root(OTHER_ACCOUNT, OTHER_ROOT_ACCESS_KEY, REGION),
    }
}

/// Another `Kms` over the same store and clock: a restarted process, or a second node.
pub async fn open(store: &Arc<MemoryStore>, clock: &Arc<TestClock>) -> Kms {
    let store: Arc<dyn Store> = store.clone();
    let clock: Arc<dyn Clock> = clock.clone();
    Kms::open(store, RootKey::from_bytes(&ROOT_KEY).unwrap(), clock)
        .await
        .unwrap()
}

pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

pub fn root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// An IAM user of [`ACCOUNT`] with one access key.
pub struct TestUser {
    pub name: String,
    pub access_key_id: String,
}

impl TestUser {
    /// The caller this user's access key authenticates on `kms`, built afresh as the edge builds
    /// it for every request (so it reflects the IAM state of now).
    pub fn caller(&self, kms: &Kms) -> Caller {
        caller_for_access_key(kms, &self.access_key_id)
    }

    pub fn arn(&self) -> String {
        user_arn(&self.name)
    }
}

/// Creates IAM user `name` in [`ACCOUNT`] with an access key.
pub async fn user(env: &Env, name: &str) -> TestUser {
    env.kms
        .iam_create_user(&env.root, name, None, Vec::new())
        .await
        .unwrap();
    let key = env
        .kms
        .iam_create_access_key(&env.root, Some(name))
        .await
        .unwrap();
    TestUser {
        name: name.to_string(),
        access_key_id: key.access_key_id.clone(),
    }
}

/// The caller a (long-term) access key authenticates on `kms`.
pub fn caller_for_access_key(kms: &Kms, access_key_id: &str) -> Caller {
    let credential = kms
        .credentials
        .lookup(access_key_id)
        .expect("access key is registered");
    kms.caller_for(&credential, None, REGION)
        .expect("credential authenticates")
}

/// Puts inline policy `policy_name` on user `name`.
pub async fn put_user_policy(env: &Env, name: &str, policy_name: &str, document: &Value) {
    env.kms
        .iam_put_inline_policy(
            &env.root,
            Entity::User,
            name,
            policy_name,
            &document.to_string(),
        )
        .await
        .unwrap();
}

/// An identity policy of the given statements.
pub fn identity_policy(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The statement of the default key policy: the account may manage the key through IAM.
pub fn account_admin_statement() -> Value {
    json!({
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": { "AWS": root_arn(ACCOUNT) },
        "Action": "kms:*",
        "Resource": "*"
    })
}

/// A key policy: the account-admin statement plus `statements`.
pub fn key_policy(statements: Vec<Value>) -> String {
    let mut all = vec![account_admin_statement()];
    all.extend(statements);
    json!({ "Version": "2012-10-17", "Statement": all }).to_string()
}

/// A symmetric key created by the account root, with `policy` or the default policy.
pub async fn create_key(env: &Env, policy: Option<String>) -> KeyRecord {
    env.kms
        .create_key(
            &env.root,
            CreateKeyInput {
                policy,
                description: Some("domain test key".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

pub fn context(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

pub async fn encrypt(
    kms: &Kms,
    caller: &Caller,
    key_id: &str,
    encryption_context: BTreeMap<String, String>,
) -> Result<EncryptOutput, KmsError> {
    encrypt_with_tokens(kms, caller, key_id, encryption_context, Vec::new()).await
}

pub async fn encrypt_with_tokens(
    kms: &Kms,
    caller: &Caller,
    key_id: &str,
    encryption_context: BTreeMap<String, String>,
    grant_tokens: Vec<String>,
) -> Result<EncryptOutput, KmsError> {
    kms.encrypt(
        caller,
        EncryptInput {
            key_id: Some(key_id.to_string()),
            plaintext: Some(Zeroizing::new(b"attack at dawn".to_vec())),
            encryption_context,
            grant_tokens,
            ..Default::default()
        },
    )
    .await
}

pub async fn decrypt(
    kms: &Kms,
    caller: &Caller,
    ciphertext: &[u8],
    encryption_context: BTreeMap<String, String>,
) -> Result<DecryptOutput, KmsError> {
    kms.decrypt(
        caller,
        DecryptInput {
            ciphertext_blob: Some(ciphertext.to_vec()),
            encryption_context,
            ..Default::default()
        },
    )
    .await
}

/// AWS's AccessDeniedException message for a denial with `reason` (the tail after the
/// resource, e.g. "because no identity-based policy allows the kms:Encrypt action").
pub fn access_denied(principal_arn: &str, action: &str, resource: &str, reason: &str) -> KmsError {
    KmsError::AccessDenied(format!(
        "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {reason}"
    ))
}

pub fn no_identity_policy_allows(action: &str) -> String {
    format!("because no identity-based policy allows the {action} action")
}

pub fn no_resource_policy_allows(action: &str) -> String {
    format!("because no resource-based policy allows the {action} action")
}

pub const EXPLICIT_DENY_IN_KEY_POLICY: &str = "with an explicit deny in a resource-based policy";
pub const EXPLICIT_DENY_IN_IAM_POLICY: &str = "with an explicit deny in an identity-based policy";
