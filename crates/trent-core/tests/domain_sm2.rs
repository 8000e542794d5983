//! SM2 keys (issue 11): CreateKey with KeySpec SM2 for SIGN_VERIFY (SM2DSA over RAW messages
//! and 32-byte DIGESTs) and ENCRYPT_DECRYPT (SM2PKE, at most 1024 bytes), GetPublicKey, and SM2
//! data key pairs, driven through `Kms` over `MemoryStore`. Signatures are checked again with
//! the public key alone (`verify_with_public_key`), as a client would offline.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use trent_core::KmsError;
use trent_core::crypto::{
    DecryptInput, EncryptInput, GenerateDataKeyPairInput, SignInput, VerifyInput,
};
use trent_core::keys::CreateKeyInput;
use trent_core::model::KeyRecord;
use trent_crypto::asymmetric::verify_with_public_key;
use trent_crypto::spec::{KeySpec, MessageType, SigningAlgorithm};
use zeroize::Zeroizing;

async fn sm2_key(env: &Env, usage: &str) -> Result<KeyRecord, KmsError> {
    env.kms
        .create_key(
            &env.root,
            CreateKeyInput {
                key_spec: Some("SM2".into()),
                key_usage: Some(usage.into()),
                ..Default::default()
            },
        )
        .await
}

async fn sign(env: &Env, key_id: &str, message_type: &str, message: &[u8]) -> Vec<u8> {
    env.kms
        .sign(
            &env.root,
            SignInput {
                key_id: Some(key_id.into()),
                message: Some(Zeroizing::new(message.to_vec())),
                message_type: Some(message_type.into()),
                signing_algorithm: Some("SM2DSA".into()),
                grant_tokens: Vec::new(),
                dry_run: false,
            },
        )
        .await
        .unwrap()
        .signature
}

async fn verify(
    env: &Env,
    key_id: &str,
    message_type: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<(), KmsError> {
    env.kms
        .verify(
            &env.root,
            VerifyInput {
                key_id: Some(key_id.into()),
                message: Some(Zeroizing::new(message.to_vec())),
                message_type: Some(message_type.into()),
                signature: Some(signature.to_vec()),
                signing_algorithm: Some("SM2DSA".into()),
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
}

#[tokio::test]
async fn sm2_signing_keys_sign_and_verify() {
    let env = env().await;
    let key = sm2_key(&env, "SIGN_VERIFY").await.unwrap();
    let id = key.key_id.as_str();
    let public = env
        .kms
        .get_public_key(&env.root, Some(id), &[])
        .await
        .unwrap()
        .public_key;

    let raw = sign(&env, id, "RAW", b"signed with SM2").await;
    verify(&env, id, "RAW", b"signed with SM2", &raw)
        .await
        .unwrap();
    assert_eq!(
        verify(&env, id, "RAW", b"another message", &raw).await,
        Err(KmsError::InvalidSignature(String::new()))
    );
    assert!(
        verify_with_public_key(
            KeySpec::Sm2,
            &public,
            SigningAlgorithm::Sm2Dsa,
            MessageType::Raw,
            b"signed with SM2",
            &raw,
        )
        .unwrap()
    );

    let digest = [0x5a; 32];
    let signed = sign(&env, id, "DIGEST", &digest).await;
    verify(&env, id, "DIGEST", &digest, &signed).await.unwrap();
    assert!(
        verify_with_public_key(
            KeySpec::Sm2,
            &public,
            SigningAlgorithm::Sm2Dsa,
            MessageType::Digest,
            &digest,
            &signed,
        )
        .unwrap()
    );
    // A RAW signature is over SM3(Z_A || M), not over M as a digest.
    assert!(verify(&env, id, "DIGEST", &digest, &raw).await.is_err());
}

#[tokio::test]
async fn sm2_encryption_keys_encrypt_and_decrypt() {
    let env = env().await;
    let key = sm2_key(&env, "ENCRYPT_DECRYPT").await.unwrap();
    let id = key.key_id.as_str();
    let encrypt = |plaintext: Vec<u8>| EncryptInput {
        key_id: Some(id.into()),
        plaintext: Some(Zeroizing::new(plaintext)),
        encryption_algorithm: Some("SM2PKE".into()),
        ..Default::default()
    };
    let sealed = env
        .kms
        .encrypt(&env.root, encrypt(b"for SM2 eyes only".to_vec()))
        .await
        .unwrap();
    let opened = env
        .kms
        .decrypt(
            &env.root,
            DecryptInput {
                key_id: Some(id.into()),
                ciphertext_blob: Some(sealed.ciphertext_blob.clone()),
                encryption_algorithm: Some("SM2PKE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"for SM2 eyes only");
    // Tampered ciphertext is InvalidCiphertextException.
    let mut tampered = sealed.ciphertext_blob;
    if let Some(b) = tampered.last_mut() {
        *b ^= 1;
    }
    let r = env
        .kms
        .decrypt(
            &env.root,
            DecryptInput {
                key_id: Some(id.into()),
                ciphertext_blob: Some(tampered),
                encryption_algorithm: Some("SM2PKE".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(r, Err(KmsError::InvalidCiphertext)));
    // 1024 bytes is AWS's limit for SM2PKE.
    env.kms
        .encrypt(&env.root, encrypt(vec![1; 1024]))
        .await
        .unwrap();
    assert_eq!(
        env.kms
            .encrypt(&env.root, encrypt(vec![1; 1025]))
            .await
            .err(),
        Some(KmsError::Validation(
            "Algorithm SM2PKE and key spec SM2 cannot encrypt data larger than 1024 bytes.".into()
        ))
    );
    // RSA's algorithms are not SM2's.
    let r = env
        .kms
        .encrypt(
            &env.root,
            EncryptInput {
                encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
                ..encrypt(b"x".to_vec())
            },
        )
        .await;
    assert!(matches!(r, Err(KmsError::InvalidKeyUsage(_))));
}

#[tokio::test]
async fn sm2_data_key_pairs_and_key_agreement() {
    let env = env().await;
    let key = env
        .kms
        .create_key(&env.root, CreateKeyInput::default())
        .await
        .unwrap();
    let pair = env
        .kms
        .generate_data_key_pair(
            &env.root,
            GenerateDataKeyPairInput {
                key_id: Some(key.key_id.clone()),
                key_pair_spec: Some("SM2".into()),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    assert!(!pair.public_key.is_empty());
    assert!(pair.private_key_plaintext.is_some_and(|p| !p.is_empty()));
    assert!(matches!(
        sm2_key(&env, "KEY_AGREEMENT").await,
        Err(KmsError::UnsupportedOperation(_))
    ));
}
