//! The grants benchmark made robust to this VM's drift: two keys side by side — one with the
//! caller's single grant, one with the caller's grant among 50,000 — and grant-authorized
//! Encrypts on them in alternating batches, so both see the same machine at the same moment.
//! Prints the median time per call of each and the median of the per-round ratios.
//!
//! Run: `cargo bench -p trent-core --bench grants_paired` (`-- ROUNDS BATCH` to change the
//! 41 rounds of 20,000 calls per key).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benchmark set-up on fixed, valid input: a failure should stop the run loudly"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

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
const ROOT_KEY_ID: &str = "AKIAROOTBENCH0000000";
const REGION: &str = "us-east-1";
const EXTRA_GRANTS: usize = 49_999;

fn root() -> Caller {
    Caller::root(ACCOUNT, ROOT_KEY_ID, REGION)
}

async fn grant(kms: &Kms, key_id: &str, grantee: String) {
    kms.create_grant(
        &root(),
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

/// The service, alice (whose only permission is grants), and the two keys.
async fn setup() -> (Kms, Caller, String, String) {
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
    kms.ensure_account(ACCOUNT, ROOT_KEY_ID, "secret")
        .await
        .expect("account");
    kms.iam_create_user(&root(), "alice", None, Vec::new())
        .await
        .expect("user");
    let access_key = kms
        .iam_create_access_key(&root(), Some("alice"))
        .await
        .expect("access key");
    kms.iam_create_role(
        &root(),
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
    let mut keys = Vec::new();
    for _ in 0..2 {
        let key_id = kms
            .create_key(&root(), CreateKeyInput::default())
            .await
            .expect("key")
            .key_id;
        grant(&kms, &key_id, format!("arn:aws:iam::{ACCOUNT}:user/alice")).await;
        keys.push(key_id);
    }
    for i in 0..EXTRA_GRANTS {
        grant(
            &kms,
            &keys[1],
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/other/session-{i}"),
        )
        .await;
    }
    let credential = kms
        .credentials
        .lookup(&access_key.access_key_id)
        .expect("lookup");
    let alice = kms.caller_for(&credential, None, REGION).expect("caller");
    let many = keys.pop().expect("two keys");
    let one = keys.pop().expect("two keys");
    (kms, alice, one, many)
}

/// Nanoseconds per call of `batch` Encrypts on `key_id`.
fn batch_ns(
    runtime: &tokio::runtime::Runtime,
    kms: &Kms,
    caller: &Caller,
    key_id: &str,
    batch: u32,
) -> f64 {
    let start = Instant::now();
    for _ in 0..batch {
        runtime
            .block_on(kms.encrypt(
                caller,
                EncryptInput {
                    key_id: Some(key_id.to_string()),
                    plaintext: Some(Zeroizing::new(vec![0x42; 64])),
                    encryption_context: BTreeMap::new(),
                    ..Default::default()
                },
            ))
            .expect("encrypt");
    }
    start.elapsed().as_nanos() as f64 / f64::from(batch)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    // `cargo bench` passes `--bench`; numbers after it are ROUNDS and BATCH.
    let numbers: Vec<u32> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let rounds = numbers.first().copied().unwrap_or(41);
    let batch = numbers.get(1).copied().unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (kms, alice, one, many) = runtime.block_on(setup());
    // Warm-up: caches filled, allocator settled.
    batch_ns(&runtime, &kms, &alice, &one, batch);
    batch_ns(&runtime, &kms, &alice, &many, batch);
    let (mut ones, mut manys, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so neither always follows the other.
        let (a, b) = if round % 2 == 0 {
            let a = batch_ns(&runtime, &kms, &alice, &one, batch);
            (a, batch_ns(&runtime, &kms, &alice, &many, batch))
        } else {
            let b = batch_ns(&runtime, &kms, &alice, &many, batch);
            (batch_ns(&runtime, &kms, &alice, &one, batch), b)
        };
        ones.push(a);
        manys.push(b);
        ratios.push(b / a);
    }
    let (lowest, highest) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    println!(
        "grant-authorized Encrypt, {rounds} rounds x {batch} calls per key:\n  \
         1 grant:       median {:.0} ns/call\n  \
         50,000 grants: median {:.0} ns/call\n  \
         ratio (50,000 / 1): median {:.3} (per-round range {lowest:.3}..{highest:.3})",
        median(ones),
        median(manys),
        median(ratios),
    );
}
