//! ML-KEM keys and imported material (issue 11): AWS lists the key types whose material can be
//! imported (symmetric encryption, HMAC, asymmetric encryption, key agreement and signing keys)
//! and ML-KEM keys are not among them, so CreateKey with `Origin` EXTERNAL and an ML-KEM spec is
//! refused with UnsupportedOperationException and creates nothing, and a seed may not give an
//! ML-KEM key material (it is generated). See docs/decisions.md, "ML-KEM keys". Driven through
//! `Kms` over `MemoryStore`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use trent_core::KmsError;
use trent_core::crypto::EncapsulateInput;
use trent_core::keys::CreateKeyInput;
use trent_core::seed::{Seed, SeedKey};
use zeroize::Zeroizing;

const ML_KEM_SPECS: [&str; 3] = ["ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"];

fn seed_key(key_id: &str, spec: &str, material: Option<Vec<u8>>) -> Seed {
    Seed {
        default_account: Some(ACCOUNT.into()),
        keys: vec![SeedKey {
            entry: "key[0]".into(),
            account: None,
            region: REGION.into(),
            key_id: key_id.into(),
            key_spec: Some(spec.into()),
            key_usage: Some("ENCAPSULATE_DECAPSULATE".into()),
            description: None,
            policy: None,
            tags: Vec::new(),
            backing_keys: material
                .map(|m| vec![Zeroizing::new(m)])
                .unwrap_or_default(),
        }],
        ..Seed::default()
    }
}

#[tokio::test]
async fn external_ml_kem_keys_are_refused_and_not_created() {
    let env = env().await;
    for spec in ML_KEM_SPECS {
        let r = env
            .kms
            .create_key(
                &env.root,
                CreateKeyInput {
                    key_spec: Some(spec.into()),
                    key_usage: Some("ENCAPSULATE_DECAPSULATE".into()),
                    origin: Some("EXTERNAL".into()),
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(
            r.err(),
            Some(KmsError::UnsupportedOperation(format!(
                "Origin EXTERNAL is not supported for KMS keys with key spec {spec}: their key material cannot be imported."
            )))
        );
    }
    let listed = env.kms.list_keys(&env.root, None, None).await.unwrap();
    assert!(listed.keys.is_empty(), "{:?}", listed.keys);

    // The same specs with KMS-generated material, and the importable specs with EXTERNAL, are
    // created as before.
    for spec in ML_KEM_SPECS {
        env.kms
            .create_key(
                &env.root,
                CreateKeyInput {
                    key_spec: Some(spec.into()),
                    key_usage: Some("ENCAPSULATE_DECAPSULATE".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    env.kms
        .create_key(
            &env.root,
            CreateKeyInput {
                key_spec: Some("ML_DSA_65".into()),
                key_usage: Some("SIGN_VERIFY".into()),
                origin: Some("EXTERNAL".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn seeded_ml_kem_keys_are_generated_never_given_material() {
    let env = env().await;
    const GIVEN: &str = "3c2b1a09-8f7e-4d6c-9b5a-493827160514";
    const GENERATED: &str = "4d3c2b1a-0f9e-4e7d-8c6b-5a4938271605";
    let e = env
        .kms
        .apply_seed(&seed_key(GIVEN, "ML_KEM_768", Some(vec![1; 2400])))
        .await
        .unwrap_err();
    assert_eq!(
        (e.entry.as_str(), e.field.as_str(), e.message.as_str()),
        (
            "key[0]",
            "backing_keys[0]",
            "ML_KEM_768 keys cannot be given material (it cannot be imported into them): leave out backing_keys and private_key_pem to have it generated"
        )
    );
    assert!(
        env.kms
            .describe_key(&env.root, Some(GIVEN), &[])
            .await
            .is_err()
    );

    // Without material the seed creates the key, and it encapsulates.
    env.kms
        .apply_seed(&seed_key(GENERATED, "ML_KEM_768", None))
        .await
        .unwrap();
    let out = env
        .kms
        .encapsulate(
            &env.root,
            EncapsulateInput {
                key_id: Some(GENERATED.into()),
                encapsulation_algorithm: Some("ML_KEM".into()),
                grant_tokens: Vec::new(),
                dry_run: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(out.shared_secret.len(), 32);
    assert_eq!(out.shared_secret_ciphertext_blob.len(), 1088);
}
