//! AWS KMS's quotas through `Kms` over `MemoryStore` with the test clock: request-rate windows
//! per account, Region and quota (`ThrottlingException`), and the resource quotas on keys,
//! aliases and grants (`LimitExceededException`), each configured small; and the bounded key
//! cache, whose evicted keys come back from the store with their grants and aliases.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use serde_json::json;
use trent_core::grants::CreateGrantInput;
use trent_core::keys::CreateKeyInput;
use trent_core::quotas::{QuotaSettings, Rate, RateQuota, THROTTLING_MESSAGE};
use trent_core::{Caller, Kms, KmsError};

/// `env()` with `settings` for its quotas.
async fn env_with(settings: QuotaSettings) -> Env {
    let Env {
        kms,
        store,
        clock,
        root,
        other_root,
    } = env().await;
    Env {
        kms: kms.with_quotas(settings),
        store,
        clock,
        root,
        other_root,
    }
}

fn rates(overrides: &[(RateQuota, Rate)]) -> QuotaSettings {
    QuotaSettings {
        rate_overrides: overrides.to_vec(),
        ..Default::default()
    }
}

/// The account root as the edge builds it for a request signed for `region`.
fn signed_root(kms: &Kms, access_key_id: &str, region: &str) -> Caller {
    let credential = kms.credentials.lookup(access_key_id).unwrap();
    kms.caller_for(&credential, None, region).unwrap()
}

fn throttled<T>(r: &Result<T, KmsError>) -> bool {
    matches!(r, Err(KmsError::Throttling(m)) if m == THROTTLING_MESSAGE)
}

async fn generate_data_key(kms: &Kms, caller: &Caller, key_id: &str) -> Result<(), KmsError> {
    let input = trent_core::crypto::GenerateDataKeyInput {
        key_id: Some(key_id.into()),
        key_spec: Some("AES_256".into()),
        ..Default::default()
    };
    kms.generate_data_key(caller, input, true).await.map(|_| ())
}

#[tokio::test]
async fn symmetric_operations_share_one_window_per_second() {
    let env = env_with(rates(&[(RateQuota::Symmetric, Rate::per_second(3))])).await;
    let key = create_key(&env, None).await;
    let caller = signed_root(&env.kms, ROOT_ACCESS_KEY, REGION);

    let blob = encrypt(&env.kms, &caller, &key.key_id, context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;
    decrypt(&env.kms, &caller, &blob, context(&[]))
        .await
        .unwrap();
    generate_data_key(&env.kms, &caller, &key.key_id)
        .await
        .unwrap();
    // The fourth in the same second, whichever operation, is throttled with AWS's message.
    assert!(throttled(
        &encrypt(&env.kms, &caller, &key.key_id, context(&[])).await
    ));
    assert!(throttled(
        &decrypt(&env.kms, &caller, &blob, context(&[])).await
    ));
    assert!(throttled(
        &env.kms
            .generate_random(&caller, Some(16), None, false)
            .await
    ));
    // Other quotas are counted separately.
    env.kms
        .describe_key(&caller, Some(&key.key_id), &[])
        .await
        .unwrap();

    // The next second is a new window.
    env.clock.advance(1000);
    encrypt(&env.kms, &caller, &key.key_id, context(&[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn windows_are_per_account_and_region_and_cross_account_calls_count_for_the_caller() {
    let env = env_with(rates(&[(RateQuota::Symmetric, Rate::per_second(2))])).await;
    let shared = create_key(
        &env,
        Some(key_policy(vec![json!({
            "Effect": "Allow",
            "Principal": { "AWS": root_arn(OTHER_ACCOUNT) },
            "Action": "kms:Encrypt",
            "Resource": "*"
        })])),
    )
    .await;
    let owner = signed_root(&env.kms, ROOT_ACCESS_KEY, REGION);
    let other = signed_root(&env.kms, OTHER_ROOT_ACCESS_KEY, REGION);

    // The other account spends its own window on the first account's key...
    for _ in 0..2 {
        encrypt(&env.kms, &other, &shared.arn(), context(&[]))
            .await
            .unwrap();
    }
    assert!(throttled(
        &encrypt(&env.kms, &other, &shared.arn(), context(&[])).await
    ));
    // ...and the key's owner is not throttled by it.
    for _ in 0..2 {
        encrypt(&env.kms, &owner, &shared.key_id, context(&[]))
            .await
            .unwrap();
    }
    assert!(throttled(
        &encrypt(&env.kms, &owner, &shared.key_id, context(&[])).await
    ));

    // Another Region of the same account has its own windows.
    let elsewhere = signed_root(&env.kms, ROOT_ACCESS_KEY, "eu-west-3");
    let local = env
        .kms
        .create_key(&elsewhere, CreateKeyInput::default())
        .await
        .unwrap();
    encrypt(&env.kms, &elsewhere, &local.key_id, context(&[]))
        .await
        .unwrap();

    // A principal rebuilt after an IAM change still shares the account's window.
    user(&env, "bob").await;
    let again = signed_root(&env.kms, ROOT_ACCESS_KEY, REGION);
    assert!(throttled(
        &encrypt(&env.kms, &again, &shared.key_id, context(&[])).await
    ));
}

#[tokio::test]
async fn each_operation_quota_and_key_type_is_counted_apart() {
    let env = env_with(rates(&[
        (RateQuota::CreateKey, Rate::per_second(2)),
        (RateQuota::Rsa, Rate::per_second(1)),
        (RateQuota::Symmetric, Rate::per_second(1)),
    ]))
    .await;
    let caller = signed_root(&env.kms, ROOT_ACCESS_KEY, REGION);
    let symmetric = env
        .kms
        .create_key(&caller, CreateKeyInput::default())
        .await
        .unwrap();
    let rsa = env
        .kms
        .create_key(
            &caller,
            CreateKeyInput {
                key_spec: Some("RSA_2048".into()),
                key_usage: Some("ENCRYPT_DECRYPT".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(throttled(
        &env.kms.create_key(&caller, CreateKeyInput::default()).await
    ));
    // CreateKey's window being full does not stop cryptographic calls or DescribeKey.
    encrypt(&env.kms, &caller, &symmetric.key_id, context(&[]))
        .await
        .unwrap();
    let rsa_encrypt = |id: String| trent_core::crypto::EncryptInput {
        key_id: Some(id),
        plaintext: Some(zeroize::Zeroizing::new(b"x".to_vec())),
        encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
        ..Default::default()
    };
    // RSA keys have their own shared quota.
    env.kms
        .encrypt(&caller, rsa_encrypt(rsa.key_id.clone()))
        .await
        .unwrap();
    assert!(throttled(
        &env.kms
            .encrypt(&caller, rsa_encrypt(rsa.key_id.clone()))
            .await
    ));
    assert!(throttled(
        &encrypt(&env.kms, &caller, &symmetric.key_id, context(&[])).await
    ));
    env.kms
        .describe_key(&caller, Some(&rsa.key_id), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn fractional_rates_are_windows_of_several_seconds() {
    let env = env_with(rates(&[(
        RateQuota::CreateKey,
        Rate::from_per_second(0.5).unwrap(),
    )]))
    .await;
    // Start at an even second, the first of a two-second window.
    env.clock.set(START_MS);
    let caller = signed_root(&env.kms, ROOT_ACCESS_KEY, REGION);
    let create = || env.kms.create_key(&caller, CreateKeyInput::default());
    create().await.unwrap();
    assert!(throttled(&create().await));
    env.clock.advance(1000);
    assert!(throttled(&create().await), "still the same 2-second window");
    env.clock.advance(1000);
    create().await.unwrap();
}

#[tokio::test]
async fn aws_defaults_apply_and_throttling_can_be_turned_off() {
    // AWS's default CreateKey rate is 5 per second.
    let env = env().await;
    let caller = signed_root(&env.kms, ROOT_ACCESS_KEY, REGION);
    for _ in 0..5 {
        env.kms
            .create_key(&caller, CreateKeyInput::default())
            .await
            .unwrap();
    }
    assert!(throttled(
        &env.kms.create_key(&caller, CreateKeyInput::default()).await
    ));
    // Callers made in process (seed file, tools) are not counted.
    env.kms
        .create_key(&env.root, CreateKeyInput::default())
        .await
        .unwrap();

    let off = env_with(QuotaSettings {
        throttling: false,
        ..rates(&[(RateQuota::CreateKey, Rate::per_second(1))])
    })
    .await;
    let caller = signed_root(&off.kms, ROOT_ACCESS_KEY, REGION);
    for _ in 0..8 {
        off.kms
            .create_key(&caller, CreateKeyInput::default())
            .await
            .unwrap();
    }
}

fn limit_exceeded<T>(r: &Result<T, KmsError>, what: &str) -> bool {
    matches!(r, Err(KmsError::LimitExceeded(m)) if m.contains(what))
}

#[tokio::test]
async fn keys_per_account_and_region() {
    let mut settings = QuotaSettings::default();
    settings.resources.keys_per_region = 2;
    let env = env_with(settings).await;
    let first = create_key(&env, None).await;
    create_key(&env, None).await;
    let third = env
        .kms
        .create_key(&env.root, CreateKeyInput::default())
        .await;
    assert!(limit_exceeded(
        &third,
        "KMS keys per account and Region (2)"
    ));
    // EXTERNAL keys count too.
    let external = env
        .kms
        .create_key(
            &env.root,
            CreateKeyInput {
                origin: Some("EXTERNAL".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(limit_exceeded(&external, "KMS keys per account and Region"));
    // A key pending deletion still counts (AWS: "regardless of key state").
    env.kms
        .schedule_key_deletion(&env.root, Some(&first.key_id), Some(7))
        .await
        .unwrap();
    assert!(limit_exceeded(
        &env.kms
            .create_key(&env.root, CreateKeyInput::default())
            .await,
        "KMS keys"
    ));
    // Other accounts and Regions have their own count.
    env.kms
        .create_key(&env.other_root, CreateKeyInput::default())
        .await
        .unwrap();
    let elsewhere = Caller::root(ACCOUNT, ROOT_ACCESS_KEY, "eu-west-3");
    env.kms
        .create_key(&elsewhere, CreateKeyInput::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn aliases_per_key() {
    let mut settings = QuotaSettings::default();
    settings.resources.aliases_per_key = 2;
    let env = env_with(settings).await;
    let full = create_key(&env, None).await;
    let other = create_key(&env, None).await;
    for name in ["alias/a", "alias/b"] {
        env.kms
            .create_alias(&env.root, Some(name), Some(&full.key_id))
            .await
            .unwrap();
    }
    let r = env
        .kms
        .create_alias(&env.root, Some("alias/c"), Some(&full.key_id))
        .await;
    assert!(limit_exceeded(&r, "aliases per KMS key (2)"));
    env.kms
        .create_alias(&env.root, Some("alias/c"), Some(&other.key_id))
        .await
        .unwrap();
    // Moving an alias onto the full key is refused too; onto its own key is a no-op count.
    let r = env
        .kms
        .update_alias(&env.root, Some("alias/c"), Some(&full.key_id))
        .await;
    assert!(limit_exceeded(&r, "aliases per KMS key"));
    env.kms
        .update_alias(&env.root, Some("alias/a"), Some(&full.key_id))
        .await
        .unwrap();
    // Freed by a deletion.
    env.kms
        .delete_alias(&env.root, Some("alias/b"))
        .await
        .unwrap();
    env.kms
        .update_alias(&env.root, Some("alias/c"), Some(&full.key_id))
        .await
        .unwrap();
}

#[tokio::test]
async fn grants_per_key() {
    let mut settings = QuotaSettings::default();
    settings.resources.grants_per_key = 2;
    let env = env_with(settings).await;
    let key = create_key(&env, None).await;
    let grant = || {
        env.kms.create_grant(
            &env.root,
            CreateGrantInput {
                key_id: Some(key.key_id.clone()),
                grantee_principal: Some(root_arn(OTHER_ACCOUNT)),
                operations: Some(vec!["Encrypt".into()]),
                ..Default::default()
            },
        )
    };
    let (first, _) = grant().await.unwrap();
    grant().await.unwrap();
    assert!(limit_exceeded(&grant().await, "grants per key (2)"));
    env.kms
        .revoke_grant(&env.root, Some(&key.key_id), Some(&first), false)
        .await
        .unwrap();
    grant().await.unwrap();
}

#[tokio::test]
async fn an_evicted_key_comes_back_with_its_grants_and_aliases() {
    let Env {
        kms,
        store,
        clock,
        root,
        other_root,
    } = env().await;
    let env = Env {
        kms: kms.with_key_cache_capacity(2),
        store,
        clock,
        root,
        other_root,
    };
    let alice = user(&env, "alice").await;
    let granted = create_key(&env, None).await;
    env.kms
        .create_grant(
            &env.root,
            CreateGrantInput {
                key_id: Some(granted.key_id.clone()),
                grantee_principal: Some(alice.arn()),
                operations: Some(vec!["Encrypt".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.kms
        .create_alias(&env.root, Some("alias/granted"), Some(&granted.key_id))
        .await
        .unwrap();
    // Only the grant lets alice encrypt (she has no IAM policy).
    encrypt(
        &env.kms,
        &alice.caller(&env.kms),
        &granted.key_id,
        context(&[]),
    )
    .await
    .unwrap();
    for _ in 0..4 {
        create_key(&env, None).await;
    }
    assert!(env.kms.stats().cached_keys <= 2, "{:?}", env.kms.stats());
    // Evicted, read again from the store: the grant still allows, the alias still resolves.
    encrypt(
        &env.kms,
        &alice.caller(&env.kms),
        &granted.key_id,
        context(&[]),
    )
    .await
    .unwrap();
    encrypt(&env.kms, &env.root, "alias/granted", context(&[]))
        .await
        .unwrap();
    assert!(env.kms.stats().cached_keys <= 2);
    assert!(env.kms.stats().keys_with_cached_grants <= 3);
}
