//! SM2 keys (issue 11): CreateKey with KeySpec SM2 for SIGN_VERIFY (SM2DSA over RAW messages
//! and 32-byte DIGESTs), ENCRYPT_DECRYPT (SM2PKE, at most 1024 bytes) and KEY_AGREEMENT (ECDH),
//! GetPublicKey, SM2 data key pairs, SM2 import (an SM2 wrapping key, SM2PKE) and SM2 keys in
//! seed files (generated, or of given PKCS#8 material), driven
//! through `Kms` over `MemoryStore`. Signatures are checked again with the public key alone
//! (`verify_with_public_key`), as a client would offline; shared secrets and wrapped material
//! are computed on the client side with RustCrypto's `sm2` (its point arithmetic, not Trent's
//! code path).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use sm2::elliptic_curve::Generate;
use sm2::elliptic_curve::common::getrandom::SysRng;
use sm2::elliptic_curve::sec1::ToSec1Point;
use sm2::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use trent_core::KmsError;
use trent_core::crypto::{
    DecryptInput, DeriveSharedSecretInput, EncryptInput, GenerateDataKeyPairInput, SignInput,
    VerifyInput,
};
use trent_core::import::ImportKeyMaterialInput;
use trent_core::keys::CreateKeyInput;
use trent_core::model::KeyRecord;
use trent_core::seed::{Seed, SeedKey};
use trent_crypto::asymmetric::verify_with_public_key;
use trent_crypto::spec::{KeySpec, MessageType, SigningAlgorithm, WireEnum};
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
}

async fn derive(env: &Env, key_id: &str, peer: &[u8]) -> Result<Vec<u8>, KmsError> {
    env.kms
        .derive_shared_secret(
            &env.root,
            DeriveSharedSecretInput {
                key_id: Some(key_id.into()),
                key_agreement_algorithm: Some("ECDH".into()),
                public_key: Some(peer.to_vec()),
                ..Default::default()
            },
        )
        .await
        .map(|out| out.shared_secret.to_vec())
}

async fn public_key(env: &Env, key_id: &str) -> Vec<u8> {
    env.kms
        .get_public_key(&env.root, Some(key_id), &[])
        .await
        .unwrap()
        .public_key
}

/// ECDH computed on the client side: the x-coordinate of `secret` times the SM2 point in
/// `peer_spki`, by the curve's own arithmetic.
fn local_ecdh(secret: &sm2::SecretKey, peer_spki: &[u8]) -> Vec<u8> {
    let peer = sm2::PublicKey::from_public_key_der(peer_spki).unwrap();
    let point = (peer.to_projective() * *secret.to_nonzero_scalar()).to_affine();
    point.to_sec1_point(false).x().unwrap().to_vec()
}

#[tokio::test]
async fn sm2_key_agreement_keys_derive_one_secret_both_ways() {
    let env = env().await;
    let a = sm2_key(&env, "KEY_AGREEMENT").await.unwrap();
    let b = sm2_key(&env, "KEY_AGREEMENT").await.unwrap();
    let (a_public, b_public) = (
        public_key(&env, &a.key_id).await,
        public_key(&env, &b.key_id).await,
    );
    let ab = derive(&env, &a.key_id, &b_public).await.unwrap();
    assert_eq!(ab.len(), 32);
    assert_eq!(derive(&env, &b.key_id, &a_public).await.unwrap(), ab);

    // A peer key pair made here: Trent's secret is the client's.
    let local = sm2::SecretKey::generate();
    let local_spki = local.public_key().to_public_key_der().unwrap();
    assert_eq!(
        derive(&env, &a.key_id, local_spki.as_bytes())
            .await
            .unwrap(),
        local_ecdh(&local, &a_public)
    );

    // A P-256 public key, or garbage, is AWS's empty ValidationException.
    let p256 = env
        .kms
        .create_key(
            &env.root,
            CreateKeyInput {
                key_spec: Some("ECC_NIST_P256".into()),
                key_usage: Some("KEY_AGREEMENT".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p256_public = public_key(&env, &p256.key_id).await;
    for peer in [p256_public.as_slice(), b"garbage".as_slice()] {
        assert_eq!(
            derive(&env, &a.key_id, peer).await,
            Err(KmsError::Validation(String::new()))
        );
    }
    assert_eq!(
        derive(&env, &p256.key_id, &a_public).await,
        Err(KmsError::Validation(String::new()))
    );

    // Key usage: an SM2 KEY_AGREEMENT key neither signs nor encrypts, an SM2 signing key does
    // not agree.
    let arn = a.arn();
    let signed = env
        .kms
        .sign(
            &env.root,
            SignInput {
                key_id: Some(a.key_id.clone()),
                message: Some(Zeroizing::new(b"m".to_vec())),
                message_type: Some("RAW".into()),
                signing_algorithm: Some("SM2DSA".into()),
                grant_tokens: Vec::new(),
                dry_run: false,
            },
        )
        .await;
    assert_eq!(
        signed.err(),
        Some(KmsError::InvalidKeyUsage(format!(
            "{arn} key usage is KEY_AGREEMENT which is not valid for Sign."
        )))
    );
    let encrypted = env
        .kms
        .encrypt(
            &env.root,
            EncryptInput {
                key_id: Some(a.key_id.clone()),
                plaintext: Some(Zeroizing::new(b"m".to_vec())),
                encryption_algorithm: Some("SM2PKE".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(encrypted, Err(KmsError::InvalidKeyUsage(_))));
    let signing = sm2_key(&env, "SIGN_VERIFY").await.unwrap();
    assert_eq!(
        derive(&env, &signing.key_id, &b_public).await,
        Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret.",
            signing.arn()
        )))
    );
}

async fn external_sm2_key(env: &Env, usage: &str) -> KeyRecord {
    env.kms
        .create_key(
            &env.root,
            CreateKeyInput {
                key_spec: Some("SM2".into()),
                key_usage: Some(usage.into()),
                origin: Some("EXTERNAL".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

/// GetParametersForImport with an SM2 wrapping key, `material` wrapped with SM2PKE under it
/// (GM/T 0009 DER, as a caller's SM2 library writes it), and ImportKeyMaterial.
async fn import_sm2pke(env: &Env, key_id: &str, material: &[u8]) -> Result<(), KmsError> {
    let params = env
        .kms
        .get_parameters_for_import(&env.root, Some(key_id), Some("SM2PKE"), Some("SM2"))
        .await
        .unwrap();
    // The wrapping key is an SM2 SubjectPublicKeyInfo.
    let public = sm2::PublicKey::from_public_key_der(&params.public_key).unwrap();
    let wrapped = sm2::pke::EncryptingKey::new(public)
        .encrypt_der(&mut SysRng, material)
        .unwrap();
    import_wrapped(env, key_id, params.import_token, wrapped).await
}

async fn import_wrapped(
    env: &Env,
    key_id: &str,
    import_token: Vec<u8>,
    wrapped: Vec<u8>,
) -> Result<(), KmsError> {
    env.kms
        .import_key_material(
            &env.root,
            ImportKeyMaterialInput {
                key_id: Some(key_id.into()),
                import_token: Some(import_token),
                encrypted_key_material: Some(wrapped),
                expiration_model: Some("KEY_MATERIAL_DOES_NOT_EXPIRE".into()),
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
}

#[tokio::test]
async fn sm2_material_imports_under_an_sm2_wrapping_key() {
    let env = env().await;
    // A signing key: Trent's public key and signatures are those of the material made here.
    let secret = sm2::SecretKey::generate();
    let pkcs8 = secret.to_pkcs8_der().unwrap();
    let spki = secret.public_key().to_public_key_der().unwrap();
    let signing = external_sm2_key(&env, "SIGN_VERIFY").await;
    import_sm2pke(&env, &signing.key_id, pkcs8.as_bytes())
        .await
        .unwrap();
    assert_eq!(public_key(&env, &signing.key_id).await, spki.as_bytes());
    let sig = sign(&env, &signing.key_id, "RAW", b"imported SM2").await;
    assert!(
        verify_with_public_key(
            KeySpec::Sm2,
            spki.as_bytes(),
            SigningAlgorithm::Sm2Dsa,
            MessageType::Raw,
            b"imported SM2",
            &sig,
        )
        .unwrap()
    );

    // A KEY_AGREEMENT key: its secret with a peer is the one the material gives here.
    let agreement = external_sm2_key(&env, "KEY_AGREEMENT").await;
    let secret = sm2::SecretKey::generate();
    import_sm2pke(
        &env,
        &agreement.key_id,
        secret.to_pkcs8_der().unwrap().as_bytes(),
    )
    .await
    .unwrap();
    let peer = sm2::SecretKey::generate();
    let peer_spki = peer.public_key().to_public_key_der().unwrap();
    assert_eq!(
        derive(&env, &agreement.key_id, peer_spki.as_bytes())
            .await
            .unwrap(),
        local_ecdh(&secret, peer_spki.as_bytes())
    );

    // An ENCRYPT_DECRYPT key: SM2PKE ciphertext made here with the material's public key
    // decrypts in Trent.
    let encrypting = external_sm2_key(&env, "ENCRYPT_DECRYPT").await;
    let secret = sm2::SecretKey::generate();
    import_sm2pke(
        &env,
        &encrypting.key_id,
        secret.to_pkcs8_der().unwrap().as_bytes(),
    )
    .await
    .unwrap();
    let blob = sm2::pke::EncryptingKey::new(secret.public_key())
        .encrypt_der(&mut SysRng, b"sealed here")
        .unwrap();
    let opened = env
        .kms
        .decrypt(
            &env.root,
            DecryptInput {
                key_id: Some(encrypting.key_id.clone()),
                ciphertext_blob: Some(blob),
                encryption_algorithm: Some("SM2PKE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"sealed here");
}

#[tokio::test]
async fn sm2_import_refusals() {
    let env = env().await;
    let key = external_sm2_key(&env, "SIGN_VERIFY").await;
    let params = |algorithm: &'static str, spec: &'static str, key_id: String| {
        let kms = &env.kms;
        let root = &env.root;
        async move {
            kms.get_parameters_for_import(root, Some(&key_id), Some(algorithm), Some(spec))
                .await
                .map(|_| ())
        }
    };
    // SM2PKE and the SM2 wrapping key go together only.
    for (algorithm, spec) in [("SM2PKE", "RSA_2048"), ("RSAES_OAEP_SHA_256", "SM2")] {
        assert_eq!(
            params(algorithm, spec, key.key_id.clone()).await,
            Err(KmsError::Validation(format!(
                "The {algorithm} wrapping algorithm is not supported with the {spec} wrapping key spec. Use the SM2PKE wrapping algorithm with the SM2 wrapping key spec, and an RSA wrapping algorithm with an RSA wrapping key spec."
            )))
        );
    }
    // SM2 material never goes under RSA_AES_KEY_WRAP (not offered in AWS's China Regions, the
    // only ones with SM2 keys); RSAES_OAEP under an RSA wrapping key does carry it.
    for algorithm in ["RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"] {
        assert_eq!(
            params(algorithm, "RSA_4096", key.key_id.clone()).await,
            Err(KmsError::Validation(format!(
                "The {algorithm} wrapping algorithm is not supported for KMS keys with key spec SM2. To import SM2 key material, use the SM2PKE, RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256 wrapping algorithm."
            )))
        );
    }
    params("RSAES_OAEP_SHA_256", "RSA_2048", key.key_id.clone())
        .await
        .unwrap();
    // SM2PKE wraps RSA, ECC and SM2 private keys, not symmetric or HMAC material.
    for spec in ["SYMMETRIC_DEFAULT", "HMAC_256"] {
        let usage = if spec == "HMAC_256" {
            "GENERATE_VERIFY_MAC"
        } else {
            "ENCRYPT_DECRYPT"
        };
        let other = env
            .kms
            .create_key(
                &env.root,
                CreateKeyInput {
                    key_spec: Some(spec.into()),
                    key_usage: Some(usage.into()),
                    origin: Some("EXTERNAL".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            params("SM2PKE", "SM2", other.key_id.clone()).await,
            Err(KmsError::Validation(format!(
                "The SM2PKE wrapping algorithm is not supported for KMS keys with key spec {spec}. It wraps RSA, ECC and SM2 key material."
            )))
        );
    }
    let p256 = env
        .kms
        .create_key(
            &env.root,
            CreateKeyInput {
                key_spec: Some("ECC_NIST_P256".into()),
                key_usage: Some("SIGN_VERIFY".into()),
                origin: Some("EXTERNAL".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    params("SM2PKE", "SM2", p256.key_id.clone()).await.unwrap();

    // Material of another curve is not an SM2 key's.
    let p256_material = trent_crypto::asymmetric::generate_pkcs8(KeySpec::EccNistP256).unwrap();
    assert!(matches!(
        import_sm2pke(&env, &key.key_id, &p256_material).await,
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    // Tampered wrapping, or wrapping under another SM2 wrapping key, does not unwrap.
    let first = env
        .kms
        .get_parameters_for_import(&env.root, Some(&key.key_id), Some("SM2PKE"), Some("SM2"))
        .await
        .unwrap();
    let second = env
        .kms
        .get_parameters_for_import(&env.root, Some(&key.key_id), Some("SM2PKE"), Some("SM2"))
        .await
        .unwrap();
    let material = sm2::SecretKey::generate().to_pkcs8_der().unwrap();
    let under_second = sm2::pke::EncryptingKey::new(
        sm2::PublicKey::from_public_key_der(&second.public_key).unwrap(),
    )
    .encrypt_der(&mut SysRng, material.as_bytes())
    .unwrap();
    assert_eq!(
        import_wrapped(
            &env,
            &key.key_id,
            first.import_token.clone(),
            under_second.clone()
        )
        .await,
        Err(KmsError::InvalidCiphertext)
    );
    let mut tampered = under_second.clone();
    if let Some(b) = tampered.last_mut() {
        *b ^= 1;
    }
    assert_eq!(
        import_wrapped(&env, &key.key_id, second.import_token.clone(), tampered).await,
        Err(KmsError::InvalidCiphertext)
    );
    import_wrapped(&env, &key.key_id, second.import_token, under_second)
        .await
        .unwrap();
}

/// A seed key of spec SM2 and `usage`, with `material` (PKCS#8 DER) or generated without.
fn seed_sm2(entry: &str, key_id: &str, usage: &str, material: Option<&[u8]>) -> SeedKey {
    SeedKey {
        entry: entry.into(),
        account: Some(ACCOUNT.into()),
        region: REGION.into(),
        key_id: key_id.into(),
        key_spec: Some("SM2".into()),
        key_usage: Some(usage.into()),
        description: None,
        policy: None,
        tags: Vec::new(),
        backing_keys: material
            .map(|m| vec![Zeroizing::new(m.to_vec())])
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn seed_files_create_sm2_keys_of_every_usage() {
    let env = env().await;
    const SIGNING: &str = "5d1f8a3e-2c4b-4e6f-9a1b-3c5d7e9f0a12";
    const ENCRYPTING: &str = "6e2a9b4f-3d5c-4f70-8b2c-4d6e8f0a1b23";
    const AGREEING: &str = "7f3bac50-4e6d-4081-9c3d-5e7f9a1b2c34";
    let encrypting_secret = sm2::SecretKey::generate();
    let agreeing_secret = sm2::SecretKey::generate();
    let (encrypting_pkcs8, agreeing_pkcs8) = (
        encrypting_secret.to_pkcs8_der().unwrap(),
        agreeing_secret.to_pkcs8_der().unwrap(),
    );
    let seed = Seed {
        default_account: Some(ACCOUNT.into()),
        keys: vec![
            seed_sm2("key[0]", SIGNING, "SIGN_VERIFY", None),
            seed_sm2(
                "key[1]",
                ENCRYPTING,
                "ENCRYPT_DECRYPT",
                Some(encrypting_pkcs8.as_bytes()),
            ),
            seed_sm2(
                "key[2]",
                AGREEING,
                "KEY_AGREEMENT",
                Some(agreeing_pkcs8.as_bytes()),
            ),
        ],
        ..Seed::default()
    };
    let report = env.kms.apply_seed(&seed).await.unwrap();
    assert_eq!(report.created.len(), 3, "{:?}", report.created);
    for (id, usage) in [
        (SIGNING, "SIGN_VERIFY"),
        (ENCRYPTING, "ENCRYPT_DECRYPT"),
        (AGREEING, "KEY_AGREEMENT"),
    ] {
        let key = env
            .kms
            .describe_key(&env.root, Some(id), &[])
            .await
            .unwrap();
        assert_eq!(
            (key.key_spec.as_str(), key.key_usage.as_str()),
            ("SM2", usage)
        );
    }

    // The generated signing key signs, checked offline with its public key.
    let sig = sign(&env, SIGNING, "RAW", b"seeded SM2").await;
    assert!(
        verify_with_public_key(
            KeySpec::Sm2,
            &public_key(&env, SIGNING).await,
            SigningAlgorithm::Sm2Dsa,
            MessageType::Raw,
            b"seeded SM2",
            &sig,
        )
        .unwrap()
    );

    // The given materials are the keys': their public keys, SM2PKE ciphertext made here to the
    // material decrypts in Trent, and ECDH gives the secret computed here.
    assert_eq!(
        public_key(&env, ENCRYPTING).await,
        encrypting_secret
            .public_key()
            .to_public_key_der()
            .unwrap()
            .as_bytes()
    );
    let blob = sm2::pke::EncryptingKey::new(encrypting_secret.public_key())
        .encrypt_der(&mut SysRng, b"sealed before seeding")
        .unwrap();
    let opened = env
        .kms
        .decrypt(
            &env.root,
            DecryptInput {
                key_id: Some(ENCRYPTING.into()),
                ciphertext_blob: Some(blob),
                encryption_algorithm: Some("SM2PKE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"sealed before seeding");
    let peer = sm2::SecretKey::generate();
    let peer_spki = peer.public_key().to_public_key_der().unwrap();
    assert_eq!(
        derive(&env, AGREEING, peer_spki.as_bytes()).await.unwrap(),
        local_ecdh(&agreeing_secret, peer_spki.as_bytes())
    );

    // Applied again: nothing new, the same material kept.
    let again = env.kms.apply_seed(&seed).await.unwrap();
    assert!(again.created.is_empty(), "{:?}", again.created);
    assert_eq!(again.kept, 3);

    // Material of another curve for an SM2 seed key refuses the seed, naming the field.
    let p256 = trent_crypto::asymmetric::generate_pkcs8(KeySpec::EccNistP256).unwrap();
    let wrong = Seed {
        default_account: Some(ACCOUNT.into()),
        keys: vec![seed_sm2(
            "key[0]",
            "8a4cbd61-5f7e-4192-8d4e-6f8a0b2c3d45",
            "SIGN_VERIFY",
            Some(&p256),
        )],
        ..Seed::default()
    };
    let e = env.kms.apply_seed(&wrong).await.unwrap_err();
    assert_eq!(
        (e.entry.as_str(), e.field.as_str()),
        ("key[0]", "backing_keys[0]")
    );
}
