//! A grant-authorized Encrypt as a key's grant count grows: one grant to the caller, then the
//! same key with 49,999 more grants to other principals (AWS allows 50,000 per key, and
//! integrated services make one per resource). The domain call only — the key, the grants and
//! the caller are in memory (`MemoryStore`), so what is measured is finding the grant.
//!
//! Run: `cargo bench -p trent-core --bench grants` (add `-- --quick` for a short run).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benchmark set-up on fixed, valid input: a failure should stop the run loudly"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use trent_core::crypto::EncryptInput;
use trent_core::grants::CreateGrantInput;
use trent_core::iam::CreateRoleInput;
use trent_core::keys::CreateKeyInput;
use trent_core::memory_store::MemoryStore;
use trent_core::quotas::QuotaSettings;
use trent_core::{Caller, Kms, SystemClock};
use trent_crypto::RootKey;
use zeroize::Zeroizing;

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
const EXTRA_GRANTS: usize = 49_999;

struct Setup {
    kms: Kms,
    user: Caller,
    key_id: String,
}

async fn setup() -> Setup {
    let (root_key, _) = RootKey::generate().expect("root key");
    let kms = Kms::open(
        Arc::new(MemoryStore::default()),
        root_key,
        Arc::new(SystemClock::default()),
    )
    .await
    .expect("kms")
    // What is measured is finding the grant, far above any request-rate quota.
    .with_quotas(QuotaSettings {
        throttling: false,
        ..Default::default()
    });
    kms.ensure_account(ACCOUNT, "AKIAROOTBENCH0000000", "secret")
        .await
        .expect("account");
    let root = Caller::root(ACCOUNT, "AKIAROOTBENCH0000000", REGION);
    kms.iam_create_user(&root, "alice", None, Vec::new())
        .await
        .expect("user");
    let key = kms
        .iam_create_access_key(&root, Some("alice"))
        .await
        .expect("access key");
    // The other grantees are sessions of one role (a grant's principal must exist).
    kms.iam_create_role(
        &root,
        CreateRoleInput {
            name: "other".into(),
            trust_policy: format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
            ),
            ..Default::default()
        },
    )
    .await
    .expect("role");
    let credential = kms.credentials.lookup(&key.access_key_id).expect("lookup");
    let user = kms.caller_for(&credential, None, REGION).expect("caller");
    // The default key policy delegates to IAM and alice has no IAM policy: only a grant lets
    // her encrypt.
    let key_id = kms
        .create_key(&root, CreateKeyInput::default())
        .await
        .expect("key")
        .key_id;
    Setup { kms, user, key_id }
}

async fn grant(kms: &Kms, key_id: &str, grantee: String) {
    let root = Caller::root(ACCOUNT, "AKIAROOTBENCH0000000", REGION);
    kms.create_grant(
        &root,
        CreateGrantInput {
            key_id: Some(key_id.to_string()),
            grantee_principal: Some(grantee),
            operations: Some(vec!["Encrypt".into(), "Decrypt".into()]),
            ..Default::default()
        },
    )
    .await
    .expect("grant");
}

fn encrypt_input(key_id: &str) -> EncryptInput {
    EncryptInput {
        key_id: Some(key_id.to_string()),
        plaintext: Some(Zeroizing::new(vec![0x42; 64])),
        encryption_context: BTreeMap::new(),
        ..Default::default()
    }
}

fn grants(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let s = runtime.block_on(setup());
    runtime.block_on(grant(
        &s.kms,
        &s.key_id,
        format!("arn:aws:iam::{ACCOUNT}:user/alice"),
    ));
    let mut group = c.benchmark_group("grant_authorized_encrypt");
    let mut run = |name: &str| {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(s.kms.encrypt(&s.user, encrypt_input(&s.key_id)))
                    .expect("encrypt")
            });
        });
    };
    run("1_grant");
    runtime.block_on(async {
        for i in 0..EXTRA_GRANTS {
            grant(
                &s.kms,
                &s.key_id,
                format!("arn:aws:sts::{ACCOUNT}:assumed-role/other/session-{i}"),
            )
            .await;
        }
    });
    run("50000_grants");
    group.finish();
}

criterion_group!(benches, grants);
criterion_main!(benches);
