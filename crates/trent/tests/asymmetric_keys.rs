//! End to end: asymmetric, HMAC and key-agreement keys through the real binary and `aws-sdk-kms`.
//! Signatures are checked independently with AWS-LC's verifier on the public key from
//! GetPublicKey (the Python tests cross-check the same with OpenSSL).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType,
    MacAlgorithmSpec, MessageType, SigningAlgorithmSpec,
};
use common::*;
use trent_crypto::asymmetric::{AsymmetricKey, generate_pkcs8, verify_with_public_key};
use trent_crypto::spec::{self, WireEnum};

async fn create(kms: &aws_sdk_kms::Client, spec: KeySpec, usage: KeyUsageType) -> String {
    kms.create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string()
}

fn sha(alg: &str, message: &[u8]) -> Vec<u8> {
    use aws_lc_rs::digest;
    let d = match &alg[alg.len() - 3..] {
        "256" => &digest::SHA256,
        "384" => &digest::SHA384,
        _ => &digest::SHA512,
    };
    digest::digest(d, message).as_ref().to_vec()
}

#[tokio::test]
async fn sign_and_verify_every_algorithm_raw_and_digest() {
    let server = Server::start();
    let kms = server.kms_a();
    for key_spec in [
        KeySpec::Rsa2048,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::EccSecgP256K1,
        KeySpec::EccNistEdwards25519,
        KeySpec::MlDsa44,
        KeySpec::MlDsa65,
        KeySpec::MlDsa87,
    ] {
        let key_id = create(&kms, key_spec.clone(), KeyUsageType::SignVerify).await;
        let public = kms.get_public_key().key_id(&key_id).send().await.unwrap();
        assert_eq!(public.key_spec(), Some(&key_spec));
        let local_spec = spec::KeySpec::parse(key_spec.as_str()).unwrap();
        let der = public.public_key().unwrap().as_ref().to_vec();
        for alg in public.signing_algorithms() {
            let local_alg = spec::SigningAlgorithm::parse(alg.as_str()).unwrap();
            if local_alg == spec::SigningAlgorithm::Ed25519PhSha512 {
                continue;
            }
            let message = b"signed by trent";
            let sig = kms
                .sign()
                .key_id(&key_id)
                .message(Blob::new(message.to_vec()))
                .signing_algorithm(alg.clone())
                .send()
                .await
                .unwrap();
            let signature = sig.signature().unwrap().as_ref().to_vec();
            assert!(
                verify_with_public_key(
                    local_spec,
                    &der,
                    local_alg,
                    spec::MessageType::Raw,
                    message,
                    &signature
                )
                .unwrap(),
                "{alg}"
            );
            let valid = kms
                .verify()
                .key_id(&key_id)
                .message(Blob::new(message.to_vec()))
                .signature(Blob::new(signature.clone()))
                .signing_algorithm(alg.clone())
                .send()
                .await
                .unwrap();
            assert!(valid.signature_valid());
            let tampered = kms
                .verify()
                .key_id(&key_id)
                .message(Blob::new(b"signed by trenT".to_vec()))
                .signature(Blob::new(signature.clone()))
                .signing_algorithm(alg.clone())
                .send()
                .await;
            assert_eq!(code(tampered), "KMSInvalidSignatureException");
            if local_alg.digest_len().is_some() {
                let digest = sha(alg.as_str(), message);
                let dsig = kms
                    .sign()
                    .key_id(&key_id)
                    .message(Blob::new(digest.clone()))
                    .message_type(MessageType::Digest)
                    .signing_algorithm(alg.clone())
                    .send()
                    .await
                    .unwrap();
                let dsig = dsig.signature().unwrap().as_ref().to_vec();
                assert!(
                    verify_with_public_key(
                        local_spec,
                        &der,
                        local_alg,
                        spec::MessageType::Raw,
                        message,
                        &dsig
                    )
                    .unwrap()
                );
                let short = kms
                    .sign()
                    .key_id(&key_id)
                    .message(Blob::new(digest[1..].to_vec()))
                    .message_type(MessageType::Digest)
                    .signing_algorithm(alg.clone())
                    .send()
                    .await;
                assert_eq!(code(short), "ValidationException");
            }
        }
    }
}

#[tokio::test]
async fn wrong_algorithm_usage_and_limits_are_aws_errors() {
    let server = Server::start();
    let kms = server.kms_a();
    let ec = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let sign = |key: &str, alg: SigningAlgorithmSpec, len: usize| {
        kms.sign()
            .key_id(key)
            .message(Blob::new(vec![1u8; len]))
            .signing_algorithm(alg)
            .send()
    };
    assert_eq!(
        code(sign(&ec, SigningAlgorithmSpec::RsassaPssSha256, 10).await),
        "InvalidKeyUsageException"
    );
    assert_eq!(
        code(sign(&ec, SigningAlgorithmSpec::EcdsaSha256, 4097).await),
        "ValidationException"
    );
    assert!(
        sign(&ec, SigningAlgorithmSpec::EcdsaSha256, 4096)
            .await
            .is_ok()
    );
    let symmetric = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    assert_eq!(
        code(sign(&symmetric, SigningAlgorithmSpec::EcdsaSha256, 10).await),
        "InvalidKeyUsageException"
    );
    let ed = create(&kms, KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify).await;
    let digest_ed = kms
        .sign()
        .key_id(&ed)
        .message(Blob::new(vec![0u8; 64]))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
        .send()
        .await;
    assert_eq!(code(digest_ed), "ValidationException");
    let other = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let sig = sign(&ec, SigningAlgorithmSpec::EcdsaSha256, 10)
        .await
        .unwrap()
        .signature()
        .unwrap()
        .clone();
    let wrong_key = kms
        .verify()
        .key_id(&other)
        .message(Blob::new(vec![1u8; 10]))
        .signature(sig)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await;
    assert_eq!(code(wrong_key), "KMSInvalidSignatureException");
    let bad_combo = kms
        .create_key()
        .key_spec(KeySpec::EccSecgP256K1)
        .key_usage(KeyUsageType::KeyAgreement)
        .send()
        .await;
    assert_eq!(code(bad_combo), "ValidationException");
}

#[tokio::test]
async fn rsa_encrypt_decrypt_and_metadata() {
    let server = Server::start();
    let kms = server.kms_a();
    let key_id = create(&kms, KeySpec::Rsa3072, KeyUsageType::EncryptDecrypt).await;
    let meta = kms.describe_key().key_id(&key_id).send().await.unwrap();
    let meta = meta.key_metadata().unwrap();
    assert_eq!(meta.encryption_algorithms().len(), 2);
    assert!(meta.signing_algorithms().is_empty());
    for (alg, max) in [
        (EncryptionAlgorithmSpec::RsaesOaepSha1, 342),
        (EncryptionAlgorithmSpec::RsaesOaepSha256, 318),
    ] {
        let ct = kms
            .encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(vec![9u8; max]))
            .encryption_algorithm(alg.clone())
            .send()
            .await
            .unwrap();
        let ct = ct.ciphertext_blob().unwrap().clone();
        assert_eq!(ct.as_ref().len(), 384);
        let pt = kms
            .decrypt()
            .key_id(&key_id)
            .ciphertext_blob(ct.clone())
            .encryption_algorithm(alg.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(pt.plaintext().unwrap().as_ref(), vec![9u8; max].as_slice());
        let too_long = kms
            .encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(vec![9u8; max + 1]))
            .encryption_algorithm(alg.clone())
            .send()
            .await;
        assert_eq!(code(too_long), "ValidationException");
        let no_key = kms
            .decrypt()
            .ciphertext_blob(ct)
            .encryption_algorithm(alg)
            .send()
            .await;
        assert_eq!(code(no_key), "ValidationException");
    }
}

#[tokio::test]
async fn hmac_generate_and_verify() {
    let server = Server::start();
    let kms = server.kms_a();
    let key_id = create(&kms, KeySpec::Hmac384, KeyUsageType::GenerateVerifyMac).await;
    let meta = kms.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().mac_algorithms(),
        &[MacAlgorithmSpec::HmacSha384]
    );
    let mac = kms
        .generate_mac()
        .key_id(&key_id)
        .message(Blob::new(b"msg".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .send()
        .await
        .unwrap();
    let mac = mac.mac().unwrap().clone();
    assert_eq!(mac.as_ref().len(), 48);
    let ok = kms
        .verify_mac()
        .key_id(&key_id)
        .message(Blob::new(b"msg".to_vec()))
        .mac(mac.clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .send()
        .await
        .unwrap();
    assert!(ok.mac_valid());
    let bad = kms
        .verify_mac()
        .key_id(&key_id)
        .message(Blob::new(b"msG".to_vec()))
        .mac(mac.clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .send()
        .await;
    assert_eq!(code(bad), "KMSInvalidMacException");
    let wrong_alg = kms
        .generate_mac()
        .key_id(&key_id)
        .message(Blob::new(b"msg".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await;
    assert_eq!(code(wrong_alg), "InvalidKeyUsageException");
    let no_usage = kms.create_key().key_spec(KeySpec::Hmac256).send().await;
    assert_eq!(code(no_usage), "ValidationException");
}

#[tokio::test]
async fn derive_shared_secret_matches_local_ecdh() {
    let server = Server::start();
    let kms = server.kms_a();
    let key_id = create(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let trent_public = kms.get_public_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(
        trent_public.key_agreement_algorithms(),
        &[KeyAgreementAlgorithmSpec::Ecdh]
    );
    let local_der = generate_pkcs8(spec::KeySpec::EccNistP256).unwrap();
    let local = AsymmetricKey::from_pkcs8(
        spec::KeySpec::EccNistP256,
        spec::KeyUsage::KeyAgreement,
        &local_der,
    )
    .unwrap();
    let expected = local
        .derive_shared_secret(trent_public.public_key().unwrap().as_ref())
        .unwrap();
    let out = kms
        .derive_shared_secret()
        .key_id(&key_id)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(local.public_key_der().to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.shared_secret().unwrap().as_ref(), expected.as_slice());
}

#[tokio::test]
async fn data_key_pairs_match_and_decrypt() {
    let server = Server::start();
    let kms = server.kms_a();
    let key_id = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    for pair_spec in [
        DataKeyPairSpec::Rsa2048,
        DataKeyPairSpec::EccNistP384,
        DataKeyPairSpec::EccSecgP256K1,
        DataKeyPairSpec::EccNistEdwards25519,
    ] {
        let out = kms
            .generate_data_key_pair()
            .key_id(&key_id)
            .key_pair_spec(pair_spec.clone())
            .send()
            .await
            .unwrap();
        let private = out.private_key_plaintext().unwrap().as_ref().to_vec();
        let local_spec = spec::KeySpec::parse(pair_spec.as_str()).unwrap();
        let parsed =
            AsymmetricKey::from_pkcs8(local_spec, spec::KeyUsage::SignVerify, &private).unwrap();
        assert_eq!(parsed.public_key_der(), out.public_key().unwrap().as_ref());
        let decrypted = kms
            .decrypt()
            .ciphertext_blob(out.private_key_ciphertext_blob().unwrap().clone())
            .send()
            .await
            .unwrap();
        assert_eq!(decrypted.plaintext().unwrap().as_ref(), private.as_slice());
        let without = kms
            .generate_data_key_pair_without_plaintext()
            .key_id(&key_id)
            .key_pair_spec(pair_spec)
            .send()
            .await
            .unwrap();
        assert!(without.public_key().is_some());
        assert!(without.private_key_ciphertext_blob().is_some());
    }
}
