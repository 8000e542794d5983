//! AWS fidelity (issue 11): the codes and messages real AWS KMS gave in the recorded responses
//! (`../shared/aws-recorded/kms-responses.snapshot.json`), driven through `Kms` over
//! `MemoryStore`. Each test names the recorded scenario it reproduces; every expected string is
//! AWS's, with the recording's placeholders filled in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use trent_core::crypto::{
    DecryptInput, DeriveSharedSecretInput, EncryptInput, GenerateDataKeyInput, MacInput, SignInput,
    VerifyInput,
};
use trent_core::import::ImportKeyMaterialInput;
use trent_core::keys::CreateKeyInput;
use trent_core::model::{KeyRecord, Tag};
use trent_core::{Caller, KmsError};
use zeroize::Zeroizing;

async fn key(env: &Env, spec: &str, usage: &str) -> KeyRecord {
    env.kms
        .create_key(
            &env.root,
            CreateKeyInput {
                key_spec: Some(spec.into()),
                key_usage: Some(usage.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

async fn external_key(env: &Env, spec: &str, usage: &str) -> KeyRecord {
    env.kms
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
        .unwrap()
}

fn usage_error(record: &KeyRecord, usage: &str, operation: &str) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "{} key usage is {usage} which is not valid for {operation}.",
        record.arn()
    ))
}

fn mac_input(key_id: &str, alg: &str, mac: Option<Vec<u8>>) -> MacInput {
    MacInput {
        key_id: Some(key_id.into()),
        message: Some(Zeroizing::new(b"some important message".to_vec())),
        mac_algorithm: Some(alg.into()),
        mac,
        ..Default::default()
    }
}

fn sign_input(key_id: &str, alg: &str, message_type: &str, message: &[u8]) -> SignInput {
    SignInput {
        key_id: Some(key_id.into()),
        message: Some(Zeroizing::new(message.to_vec())),
        message_type: Some(message_type.into()),
        signing_algorithm: Some(alg.into()),
        ..Default::default()
    }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect()
}

async fn create_with_tags(env: &Env, tags: Vec<Tag>) -> Result<KeyRecord, KmsError> {
    env.kms
        .create_key(
            &env.root,
            CreateKeyInput {
                tags,
                ..Default::default()
            },
        )
        .await
}

/// `test_error_messaging_for_invalid_keys` and `test_derive_shared_secret`: a key of the wrong
/// usage names the operation.
#[tokio::test]
async fn wrong_key_usage_names_the_operation() {
    let env = env().await;
    let hmac = key(&env, "HMAC_224", "GENERATE_VERIFY_MAC").await;
    let symmetric = create_key(&env, None).await;
    let rsa_sign = key(&env, "RSA_2048", "SIGN_VERIFY").await;
    let ecc_sign = key(&env, "ECC_NIST_P256", "SIGN_VERIFY").await;
    let ecc_agree = key(&env, "ECC_NIST_P256", "KEY_AGREEMENT").await;

    let r = env
        .kms
        .mac(
            &env.root,
            mac_input(&symmetric.key_id, "HMAC_SHA_224", None),
            false,
        )
        .await;
    assert_eq!(
        r.err(),
        Some(usage_error(&symmetric, "ENCRYPT_DECRYPT", "GenerateMac"))
    );
    let r = env
        .kms
        .mac(
            &env.root,
            mac_input(&symmetric.key_id, "HMAC_SHA_224", Some(vec![1; 28])),
            true,
        )
        .await;
    assert_eq!(
        r.err(),
        Some(usage_error(&symmetric, "ENCRYPT_DECRYPT", "VerifyMac"))
    );
    let r = env
        .kms
        .sign(
            &env.root,
            sign_input(&hmac.key_id, "RSASSA_PSS_SHA_256", "RAW", b"hello"),
        )
        .await;
    assert_eq!(
        r.err(),
        Some(usage_error(&hmac, "GENERATE_VERIFY_MAC", "Sign"))
    );
    let r = env
        .kms
        .verify(
            &env.root,
            VerifyInput {
                key_id: Some(symmetric.key_id.clone()),
                message: Some(Zeroizing::new(b"hello".to_vec())),
                signature: Some(vec![1; 256]),
                signing_algorithm: Some("RSASSA_PSS_SHA_256".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        r.err(),
        Some(usage_error(&symmetric, "ENCRYPT_DECRYPT", "Verify"))
    );
    let r = encrypt(&env.kms, &env.root, &rsa_sign.key_id, context(&[])).await;
    assert_eq!(
        r.err(),
        Some(usage_error(&rsa_sign, "SIGN_VERIFY", "Encrypt"))
    );
    // With an RSA algorithm too.
    let r = env
        .kms
        .encrypt(
            &env.root,
            EncryptInput {
                key_id: Some(rsa_sign.key_id.clone()),
                plaintext: Some(Zeroizing::new(b"hello".to_vec())),
                encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        r.err(),
        Some(usage_error(&rsa_sign, "SIGN_VERIFY", "Encrypt"))
    );
    let r = env
        .kms
        .decrypt(
            &env.root,
            DecryptInput {
                key_id: Some(rsa_sign.key_id.clone()),
                ciphertext_blob: Some(vec![1; 256]),
                encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        r.err(),
        Some(usage_error(&rsa_sign, "SIGN_VERIFY", "Decrypt"))
    );
    // Decrypt naming a key other than the blob's: AWS's IncorrectKeyException.
    let blob = encrypt(&env.kms, &env.root, &symmetric.key_id, context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;
    let r = env
        .kms
        .decrypt(
            &env.root,
            DecryptInput {
                key_id: Some(hmac.key_id.clone()),
                ciphertext_blob: Some(blob),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        r.err(),
        Some(KmsError::IncorrectKey(
            "The key ID in the request does not identify a CMK that can perform this operation."
                .into()
        ))
    );
    for (with_plaintext, operation) in [
        (true, "GenerateDataKey"),
        (false, "GenerateDataKeyWithoutPlaintext"),
    ] {
        let r = env
            .kms
            .generate_data_key(
                &env.root,
                GenerateDataKeyInput {
                    key_id: Some(hmac.key_id.clone()),
                    key_spec: Some("AES_256".into()),
                    ..Default::default()
                },
                with_plaintext,
            )
            .await;
        assert_eq!(
            r.err(),
            Some(usage_error(&hmac, "GENERATE_VERIFY_MAC", operation))
        );
    }
    let public_key = env
        .kms
        .get_public_key(&env.root, Some(&ecc_agree.key_id), &[])
        .await
        .unwrap()
        .public_key;
    for (record, usage) in [(&ecc_sign, "SIGN_VERIFY"), (&symmetric, "ENCRYPT_DECRYPT")] {
        let r = env
            .kms
            .derive_shared_secret(
                &env.root,
                DeriveSharedSecretInput {
                    key_id: Some(record.key_id.clone()),
                    key_agreement_algorithm: Some("ECDH".into()),
                    public_key: Some(public_key.clone()),
                    ..Default::default()
                },
            )
            .await;
        assert_eq!(
            r.err(),
            Some(usage_error(record, usage, "DeriveSharedSecret"))
        );
    }
    // `response-invalid-key-agreement-algo` and `response-invalid-public-key`.
    let r = env
        .kms
        .derive_shared_secret(
            &env.root,
            DeriveSharedSecretInput {
                key_id: Some(ecc_agree.key_id.clone()),
                key_agreement_algorithm: Some("INVALID".into()),
                public_key: Some(public_key.clone()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        r.err(),
        Some(KmsError::Validation("1 validation error detected: Value 'INVALID' at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ECDH]".into()))
    );
    let r = env
        .kms
        .derive_shared_secret(
            &env.root,
            DeriveSharedSecretInput {
                key_id: Some(ecc_agree.key_id.clone()),
                key_agreement_algorithm: Some("ECDH".into()),
                public_key: Some(b"InvalidPublicKey".to_vec()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(r.err(), Some(KmsError::Validation(String::new())));
}

/// `test_encrypt_validate_plaintext_size_per_key_type`: AWS's limit message for RSAES_OAEP.
#[tokio::test]
async fn rsa_plaintext_too_long_has_aws_message() {
    let env = env().await;
    for (spec, alg, max) in [
        ("RSA_2048", "RSAES_OAEP_SHA_1", 214),
        ("RSA_2048", "RSAES_OAEP_SHA_256", 190),
        ("RSA_3072", "RSAES_OAEP_SHA_1", 342),
        ("RSA_4096", "RSAES_OAEP_SHA_256", 446),
    ] {
        let record = key(&env, spec, "ENCRYPT_DECRYPT").await;
        let encrypt_len = |len: usize| {
            env.kms.encrypt(
                &env.root,
                EncryptInput {
                    key_id: Some(record.key_id.clone()),
                    plaintext: Some(Zeroizing::new(vec![7; len])),
                    encryption_algorithm: Some(alg.into()),
                    ..Default::default()
                },
            )
        };
        encrypt_len(max).await.unwrap();
        assert_eq!(
            encrypt_len(max + 1).await.err(),
            Some(KmsError::Validation(format!(
                "Algorithm {alg} and key spec {spec} cannot encrypt data larger than {max} bytes."
            )))
        );
    }
}

/// `test_hmac_create_key_invalid_operations`: no KeyUsage for a non-symmetric spec, and the enum
/// lists in AWS's order.
#[tokio::test]
async fn create_key_validation_has_aws_messages() {
    let env = env().await;
    let create = |spec: &str, usage: Option<&str>| {
        env.kms.create_key(
            &env.root,
            CreateKeyInput {
                key_spec: Some(spec.into()),
                key_usage: usage.map(Into::into),
                ..Default::default()
            },
        )
    };
    let must_specify = || {
        KmsError::Validation(
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
                .into(),
        )
    };
    assert_eq!(create("HMAC_256", None).await.err(), Some(must_specify()));
    assert_eq!(
        create("ECC_NIST_P256", None).await.err(),
        Some(must_specify())
    );
    let KmsError::Validation(m) = create("HMAC_random", Some("GENERATE_VERIFY_MAC"))
        .await
        .unwrap_err()
    else {
        panic!("not a ValidationException")
    };
    // AWS's recording lists the twelve specs of 2023 in this order; later specs follow them.
    assert!(
        m.starts_with("1 validation error detected: Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072, ECC_SECG_P256K1, RSA_4096, SYMMETRIC_DEFAULT, HMAC_256, HMAC_224, HMAC_512"),
        "{m}"
    );
    let KmsError::Validation(m) = create("HMAC_256", Some("RANDOM")).await.unwrap_err() else {
        panic!("not a ValidationException")
    };
    assert!(
        m.starts_with("1 validation error detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC"),
        "{m}"
    );
    // `response-invalid-key-spec` of `test_derive_shared_secret`.
    assert_eq!(
        create("RSA_2048", Some("KEY_AGREEMENT")).await.err(),
        Some(KmsError::Validation(
            "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048".into()
        ))
    );
}

/// `test_invalid_generate_mac`, `test_invalid_verify_mac`: MacAlgorithm's list in AWS's order,
/// an algorithm of another spec, and a MAC that does not verify (no message).
#[tokio::test]
async fn mac_errors_have_aws_messages() {
    let env = env().await;
    let hmac = key(&env, "HMAC_256", "GENERATE_VERIFY_MAC").await;
    let r = env
        .kms
        .mac(&env.root, mac_input(&hmac.key_id, "INVALID", None), false)
        .await;
    assert_eq!(
        r.err(),
        Some(KmsError::Validation("1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]".into()))
    );
    let r = env
        .kms
        .mac(
            &env.root,
            mac_input(&hmac.key_id, "HMAC_SHA_512", Some(vec![1; 64])),
            true,
        )
        .await;
    assert_eq!(
        r.err(),
        Some(KmsError::InvalidKeyUsage(
            "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.".into()
        ))
    );
    let mac = env
        .kms
        .mac(
            &env.root,
            mac_input(&hmac.key_id, "HMAC_SHA_256", None),
            false,
        )
        .await
        .unwrap()
        .mac;
    let mut other = mac_input(&hmac.key_id, "HMAC_SHA_256", Some(mac));
    other.message = Some(Zeroizing::new(b"some different important message".to_vec()));
    let r = env.kms.mac(&env.root, other, true).await;
    assert_eq!(r.err(), Some(KmsError::InvalidMac(String::new())));
}

/// `test_sign_verify`: a digest of the wrong length, and a signature that does not verify (no
/// message).
#[tokio::test]
async fn sign_verify_errors_have_aws_messages() {
    let env = env().await;
    let rsa = key(&env, "RSA_2048", "SIGN_VERIFY").await;
    let r = env
        .kms
        .sign(
            &env.root,
            sign_input(
                &rsa.key_id,
                "RSASSA_PSS_SHA_256",
                "DIGEST",
                b"test message !%$@ 1234567890",
            ),
        )
        .await;
    assert_eq!(
        r.err(),
        Some(KmsError::Validation(
            "Digest is invalid length for algorithm RSASSA_PSS_SHA_256.".into()
        ))
    );
    let bad_signature = env
        .kms
        .sign(
            &env.root,
            sign_input(&rsa.key_id, "RSASSA_PSS_SHA_256", "RAW", b"bad"),
        )
        .await
        .unwrap()
        .signature;
    let r = env
        .kms
        .verify(
            &env.root,
            VerifyInput {
                key_id: Some(rsa.key_id.clone()),
                message: Some(Zeroizing::new(b"test message !%$@ 1234567890".to_vec())),
                message_type: Some("RAW".into()),
                signature: Some(bad_signature),
                signing_algorithm: Some("RSASSA_PSS_SHA_256".into()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(r.err(), Some(KmsError::InvalidSignature(String::new())));
}

/// `test_tag_key_with_duplicate_tag_keys_raises_error`, `test_create_key_with_too_many_tags_raises_error`,
/// `test_key_with_long_tag_value_raises_error`, `test_create_key_with_invalid_tag_key[*]`,
/// `test_tag_existing_key_with_invalid_tag_key`.
#[tokio::test]
async fn tag_errors_have_aws_codes_and_messages() {
    let env = env().await;
    let record = create_key(&env, None).await;
    let r = env
        .kms
        .tag_resource(
            &env.root,
            Some(&record.key_id),
            Some(tags(&[("tag1", "value1"), ("tag1", "another-value1")])),
        )
        .await;
    assert_eq!(r.err(), Some(KmsError::Tag("Duplicate tag keys".into())));

    let many: Vec<Tag> = (0..=50)
        .map(|i| Tag {
            key: format!("key{i}"),
            value: format!("value{i}"),
        })
        .collect();
    assert_eq!(
        create_with_tags(&env, many).await.err(),
        Some(KmsError::Tag("Too many tags".into()))
    );
    // Over 50 once merged with the key's tags: the same answer.
    let forty: Vec<Tag> = (0..40)
        .map(|i| Tag {
            key: format!("a{i}"),
            value: String::new(),
        })
        .collect();
    let tagged = create_with_tags(&env, forty).await.unwrap();
    let twenty: Vec<Tag> = (0..20)
        .map(|i| Tag {
            key: format!("b{i}"),
            value: String::new(),
        })
        .collect();
    let r = env
        .kms
        .tag_resource(&env.root, Some(&tagged.key_id), Some(twenty))
        .await;
    assert_eq!(r.err(), Some(KmsError::Tag("Too many tags".into())));

    let long_value = "v".repeat(257);
    assert_eq!(
        create_with_tags(&env, tags(&[("tag1", &long_value)]))
            .await
            .err(),
        Some(KmsError::Validation(format!(
            "1 validation error detected: Value '{long_value}' at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256"
        )))
    );
    let long_key = "a".repeat(129);
    assert_eq!(
        create_with_tags(&env, tags(&[("ok", "x"), (&long_key, "value1")]))
            .await
            .err(),
        Some(KmsError::Validation(format!(
            "1 validation error detected: Value '{long_key}' at 'tags.2.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"
        )))
    );
    for reserved in ["aws:key1", "AWS:key1"] {
        assert_eq!(
            create_with_tags(&env, tags(&[(reserved, "value1")]))
                .await
                .err(),
            Some(KmsError::Tag(
                "Tags beginning with aws: are reserved".into()
            ))
        );
    }
    let r = env
        .kms
        .tag_resource(
            &env.root,
            Some(&record.key_id),
            Some(tags(&[("aws:key1", "value1")])),
        )
        .await;
    assert_eq!(
        r.err(),
        Some(KmsError::Tag(
            "Tags beginning with aws: are reserved".into()
        ))
    );
}

/// `test_get_key_in_different_region`, `test_get_key_does_not_exist`,
/// `test_get_key_invalid_uuid`.
#[tokio::test]
async fn describe_key_not_found_messages() {
    let env = env().await;
    let west = Caller::root(ACCOUNT, ROOT_ACCESS_KEY, "us-west-2");
    let record = env
        .kms
        .create_key(&west, CreateKeyInput::default())
        .await
        .unwrap();
    let describe = |caller: &Caller, id: &str| {
        let (caller, id) = (caller.clone(), id.to_string());
        let kms = &env.kms;
        async move { kms.describe_key(&caller, Some(&id), &[]).await.err() }
    };
    assert_eq!(
        describe(&env.root, &record.key_id).await,
        Some(KmsError::NotFound(format!(
            "Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{}' does not exist",
            record.key_id
        )))
    );
    assert_eq!(
        describe(&env.root, &record.arn()).await,
        Some(KmsError::NotFound("Invalid arn us-west-2".into()))
    );
    assert!(describe(&west, &record.arn()).await.is_none());
    assert!(describe(&west, &record.key_id).await.is_none());

    let mrk = "mrk-e4b2ea8ffcd4461e9821c9b9521a8896";
    assert_eq!(
        describe(&env.root, mrk).await,
        Some(KmsError::NotFound(format!(
            "Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{mrk}' does not exist"
        )))
    );
    let mrk_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{mrk}");
    assert_eq!(
        describe(&env.root, &mrk_arn).await,
        Some(KmsError::NotFound(format!(
            "Key '{mrk_arn}' does not exist"
        )))
    );
    for invalid in [
        "fake-key-id",
        "134f2428cec14b25a1ae9048164dba47",
        "mrk-fake-key-id",
    ] {
        assert_eq!(
            describe(&env.root, invalid).await,
            Some(KmsError::NotFound(format!("Invalid keyId '{invalid}'")))
        );
    }
}

/// `test_rotate_key_on_demand_raises_error_given_*` and
/// `test_rotate_key_on_demand_on_external_key_with_no_key_material`: the key's state is checked
/// before its type.
#[tokio::test]
async fn rotate_on_demand_checks_state_before_type() {
    let env = env().await;
    let rsa = key(&env, "RSA_2048", "ENCRYPT_DECRYPT").await;
    assert_eq!(
        env.kms
            .rotate_key_on_demand(&env.root, Some(&rsa.key_id))
            .await
            .err(),
        Some(KmsError::UnsupportedOperation(String::new()))
    );
    env.kms
        .disable_key(&env.root, Some(&rsa.key_id))
        .await
        .unwrap();
    assert_eq!(
        env.kms
            .rotate_key_on_demand(&env.root, Some(&rsa.key_id))
            .await
            .err(),
        Some(KmsError::Disabled(format!("{} is disabled.", rsa.arn())))
    );
    for (spec, usage) in [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        ("RSA_4096", "SIGN_VERIFY"),
    ] {
        let external = external_key(&env, spec, usage).await;
        assert_eq!(
            env.kms
                .rotate_key_on_demand(&env.root, Some(&external.key_id))
                .await
                .err(),
            Some(KmsError::InvalidState(format!(
                "{} is pending import.",
                external.arn()
            )))
        );
    }
}

/// `test_import_key_symmetric` (`import-expiring-key-without-valid-to`): AWS's default
/// ExpirationModel is KEY_MATERIAL_EXPIRES, so neither it nor ValidTo is refused.
#[tokio::test]
async fn import_without_expiration_model_needs_valid_to() {
    let env = env().await;
    let external = external_key(&env, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT").await;
    let r = env
        .kms
        .import_key_material(
            &env.root,
            ImportKeyMaterialInput {
                key_id: Some(external.key_id.clone()),
                import_token: Some(vec![1; 32]),
                encrypted_key_material: Some(vec![1; 256]),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(
        r.err(),
        Some(KmsError::Validation(
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES".into()
        ))
    );
}
