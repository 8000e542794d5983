//! A `Recipient` attestation document is verified (CBOR up to 256 KiB and several ECDSA P-384
//! checks) only once the request has been counted against its request-rate quota: past the
//! quota the answer is `ThrottlingException`, and the document is never looked at. Each
//! operation that takes a `Recipient` is called twice with a one-per-second quota and a
//! document that does not parse: the first call is counted and refused for its document, the
//! second throttled.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_lc_rs::encoding::AsDer;
use common::*;
use trent_core::KmsError;
use trent_core::crypto::{
    DecryptInput, DeriveSharedSecretInput, GenerateDataKeyInput, GenerateDataKeyPairInput,
    RecipientInput,
};
use trent_core::keys::CreateKeyInput;
use trent_core::quotas::{QuotaSettings, Rate, RateQuota, THROTTLING_MESSAGE};
use trent_crypto::nitro::TrustAnchors;
use trent_crypto::nitro::test_pki::TestPki;

fn garbage() -> Option<RecipientInput> {
    Some(RecipientInput {
        key_encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
        attestation_document: Some(vec![0xff; 64]),
    })
}

/// First call: counted, then refused for its document. Second: throttled before it.
fn counted_then_throttled<T>(what: &str, first: Result<T, KmsError>, second: Result<T, KmsError>) {
    match first {
        Err(KmsError::Validation(_)) => {}
        Err(e) => panic!("{what}: expected ValidationException first, got {e:?}"),
        Ok(_) => panic!("{what}: expected ValidationException first, got success"),
    }
    match second {
        Err(KmsError::Throttling(m)) if m == THROTTLING_MESSAGE => {}
        Err(e) => panic!("{what}: expected ThrottlingException second, got {e:?}"),
        Ok(_) => panic!("{what}: expected ThrottlingException second, got success"),
    }
}

async fn env_throttled_and_trusting() -> Env {
    let Env {
        kms,
        store,
        clock,
        root,
        other_root,
    } = env().await;
    let pki = TestPki::new(START_MS);
    let rate_overrides = [
        RateQuota::Symmetric,
        RateQuota::Rsa,
        RateQuota::Ecc,
        RateQuota::DataKeyPairRsa2048,
    ]
    .iter()
    .map(|q| (*q, Rate::per_second(1)))
    .collect();
    let kms = kms
        .with_quotas(QuotaSettings {
            rate_overrides,
            ..Default::default()
        })
        .with_nitro_roots(TrustAnchors::parse(pki.root.pem().as_bytes()).unwrap());
    Env {
        kms,
        store,
        clock,
        root,
        other_root,
    }
}

#[tokio::test]
async fn a_throttled_request_never_has_its_document_verified() {
    let env = env_throttled_and_trusting().await;
    let kms = &env.kms;
    // Keys made by the in-process root (not counted); the calls by the signed-in root.
    let symmetric = create_key(&env, None).await;
    let create = |spec: &str, usage: &str| CreateKeyInput {
        key_spec: Some(spec.into()),
        key_usage: Some(usage.into()),
        ..Default::default()
    };
    let rsa = kms
        .create_key(&env.root, create("RSA_2048", "ENCRYPT_DECRYPT"))
        .await
        .unwrap();
    let ecc = kms
        .create_key(&env.root, create("ECC_NIST_P256", "KEY_AGREEMENT"))
        .await
        .unwrap();
    let caller = caller_for_access_key(kms, ROOT_ACCESS_KEY);

    let gdk = || GenerateDataKeyInput {
        key_id: Some(symmetric.key_id.clone()),
        key_spec: Some("AES_256".into()),
        recipient: garbage(),
        ..Default::default()
    };
    counted_then_throttled(
        "GenerateDataKey",
        kms.generate_data_key(&caller, gdk(), true).await,
        kms.generate_data_key(&caller, gdk(), true).await,
    );
    env.clock.advance(1000);

    let blob = encrypt(&env.kms, &env.root, &symmetric.key_id, context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;
    let symmetric_decrypt = || DecryptInput {
        ciphertext_blob: Some(blob.clone()),
        recipient: garbage(),
        ..Default::default()
    };
    counted_then_throttled(
        "Decrypt (symmetric)",
        kms.decrypt(&caller, symmetric_decrypt()).await,
        kms.decrypt(&caller, symmetric_decrypt()).await,
    );
    env.clock.advance(1000);

    counted_then_throttled(
        "GenerateRandom",
        kms.generate_random_for(&caller, Some(32), None, garbage().as_ref())
            .await,
        kms.generate_random_for(&caller, Some(32), None, garbage().as_ref())
            .await,
    );
    env.clock.advance(1000);

    let rsa_decrypt = || DecryptInput {
        key_id: Some(rsa.key_id.clone()),
        ciphertext_blob: Some(vec![1; 256]),
        encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
        recipient: garbage(),
        ..Default::default()
    };
    counted_then_throttled(
        "Decrypt (RSA)",
        kms.decrypt(&caller, rsa_decrypt()).await,
        kms.decrypt(&caller, rsa_decrypt()).await,
    );

    let pair = || GenerateDataKeyPairInput {
        key_id: Some(symmetric.key_id.clone()),
        key_pair_spec: Some("RSA_2048".into()),
        recipient: garbage(),
        ..Default::default()
    };
    counted_then_throttled(
        "GenerateDataKeyPair",
        kms.generate_data_key_pair(&caller, pair(), true).await,
        kms.generate_data_key_pair(&caller, pair(), true).await,
    );

    let peer =
        aws_lc_rs::agreement::PrivateKey::generate(&aws_lc_rs::agreement::ECDH_P256).unwrap();
    let peer_public = peer
        .compute_public_key()
        .unwrap()
        .as_der()
        .unwrap()
        .as_ref()
        .to_vec();
    let derive = || DeriveSharedSecretInput {
        key_id: Some(ecc.key_id.clone()),
        key_agreement_algorithm: Some("ECDH".into()),
        public_key: Some(peer_public.clone()),
        recipient: garbage(),
        ..Default::default()
    };
    counted_then_throttled(
        "DeriveSharedSecret",
        kms.derive_shared_secret(&caller, derive()).await,
        kms.derive_shared_secret(&caller, derive()).await,
    );
}
