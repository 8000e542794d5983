//! `Recipient` (Nitro Enclaves and NitroTPM attestation) through `Kms` over `MemoryStore` with
//! the test clock: documents from a test Nitro PKI (`trent_crypto::nitro::test_pki`) are
//! verified against the configured root, the answers carry `CiphertextForRecipient` (opened here
//! with the RSA private key, independently of the envelope code) and no plaintext, refused
//! documents get ValidationException, no configured root keeps UnsupportedOperationException,
//! and the `kms:RecipientAttestation:*` condition keys of a key policy (`PCR<n>` for an
//! enclave's document, `NitroTPMPCR<n>` for a NitroTPM's) allow or deny.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
use common::*;
use serde_json::json;
use trent_core::KmsError;
use trent_core::crypto::{
    DecryptInput, DeriveSharedSecretInput, GenerateDataKeyInput, GenerateDataKeyPairInput,
    RecipientInput,
};
use trent_crypto::nitro::TrustAnchors;
use trent_crypto::nitro::test_pki::{Document, TestPki, open_envelope};

struct Enclave {
    pki: TestPki,
    key: PrivateDecryptingKey,
    spki: Vec<u8>,
}

impl Enclave {
    fn new() -> Self {
        let key = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let spki = key.public_key().as_der().unwrap().as_ref().to_vec();
        Self {
            pki: TestPki::new(START_MS),
            key,
            spki,
        }
    }

    fn recipient(&self, document: &Document) -> RecipientInput {
        RecipientInput {
            key_encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
            attestation_document: Some(self.pki.document(document)),
        }
    }

    fn good(&self) -> RecipientInput {
        self.recipient(&Document::new(Some(self.spki.clone()), START_MS as u64))
    }

    fn roots(&self) -> TrustAnchors {
        TrustAnchors::parse(self.pki.root.pem().as_bytes()).unwrap()
    }
}

/// `env()` whose `Kms` trusts `enclave`'s root.
async fn env_trusting(enclave: &Enclave) -> Env {
    let Env {
        kms,
        store,
        clock,
        root,
        other_root,
    } = env().await;
    Env {
        kms: kms.with_nitro_roots(enclave.roots()),
        store,
        clock,
        root,
        other_root,
    }
}

fn validation(r: Result<impl Sized, KmsError>) -> String {
    match r {
        Err(KmsError::Validation(m)) => m,
        Err(e) => panic!("expected ValidationException, got {e:?}"),
        Ok(_) => panic!("expected ValidationException, got success"),
    }
}

#[tokio::test]
async fn each_operation_answers_ciphertext_for_recipient_and_no_plaintext() {
    let enclave = Enclave::new();
    let env = env_trusting(&enclave).await;
    let key = create_key(&env, None).await;

    // GenerateDataKey: the data key only in the envelope; the blob decrypts to the same key.
    let out = env
        .kms
        .generate_data_key(
            &env.root,
            GenerateDataKeyInput {
                key_id: Some(key.key_id.clone()),
                key_spec: Some("AES_256".into()),
                recipient: Some(enclave.good()),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    assert!(out.plaintext.is_none(), "no Plaintext with a Recipient");
    let data_key = open_envelope(&enclave.key, out.ciphertext_for_recipient.as_ref().unwrap())
        .expect("the enclave's key opens the envelope");
    assert_eq!(data_key.len(), 32);
    let plain = decrypt(
        &env.kms,
        &env.root,
        &out.ciphertext_blob,
        Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(plain.plaintext.as_slice(), data_key.as_slice());
    assert!(plain.ciphertext_for_recipient.is_none());

    // Decrypt with a Recipient: the plaintext only in the envelope.
    let enc = encrypt(&env.kms, &env.root, &key.key_id, Default::default())
        .await
        .unwrap();
    let out = env
        .kms
        .decrypt(
            &env.root,
            DecryptInput {
                ciphertext_blob: Some(enc.ciphertext_blob.clone()),
                recipient: Some(enclave.good()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(out.plaintext.is_empty());
    assert_eq!(
        open_envelope(&enclave.key, out.ciphertext_for_recipient.as_ref().unwrap()).unwrap(),
        b"attack at dawn"
    );

    // GenerateRandom.
    let (plain, for_recipient) = env
        .kms
        .generate_random_for(&env.root, Some(64), None, Some(&enclave.good()))
        .await
        .unwrap();
    assert!(plain.is_none());
    assert_eq!(
        open_envelope(&enclave.key, &for_recipient.unwrap())
            .unwrap()
            .len(),
        64
    );

    // GenerateDataKeyPair: the PKCS#8 private key only in the envelope.
    let out = env
        .kms
        .generate_data_key_pair(
            &env.root,
            GenerateDataKeyPairInput {
                key_id: Some(key.key_id.clone()),
                key_pair_spec: Some("ECC_NIST_P256".into()),
                recipient: Some(enclave.good()),
                ..Default::default()
            },
            true,
        )
        .await
        .unwrap();
    assert!(out.private_key_plaintext.is_none());
    let pkcs8 =
        open_envelope(&enclave.key, out.ciphertext_for_recipient.as_ref().unwrap()).unwrap();
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &pkcs8,
    )
    .expect("the enveloped private key is the pair's PKCS#8");
    use aws_lc_rs::signature::KeyPair;
    assert_eq!(
        pair.public_key().as_der().unwrap().as_ref(),
        out.public_key.as_slice(),
        "it is the private half of the returned public key"
    );
}

#[tokio::test]
async fn derive_shared_secret_envelopes_the_secret() {
    let enclave = Enclave::new();
    let env = env_trusting(&enclave).await;
    let key = env
        .kms
        .create_key(
            &env.root,
            trent_core::keys::CreateKeyInput {
                key_spec: Some("ECC_NIST_P256".into()),
                key_usage: Some("KEY_AGREEMENT".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let peer =
        aws_lc_rs::agreement::PrivateKey::generate(&aws_lc_rs::agreement::ECDH_P256).unwrap();
    let peer_public = peer
        .compute_public_key()
        .unwrap()
        .as_der()
        .unwrap()
        .as_ref()
        .to_vec();
    let input = |recipient| DeriveSharedSecretInput {
        key_id: Some(key.key_id.clone()),
        key_agreement_algorithm: Some("ECDH".into()),
        public_key: Some(peer_public.clone()),
        recipient,
        ..Default::default()
    };
    let plain = env
        .kms
        .derive_shared_secret(&env.root, input(None))
        .await
        .unwrap();
    let out = env
        .kms
        .derive_shared_secret(&env.root, input(Some(enclave.good())))
        .await
        .unwrap();
    assert!(out.shared_secret.is_empty());
    assert_eq!(
        open_envelope(&enclave.key, out.ciphertext_for_recipient.as_ref().unwrap()).unwrap(),
        plain.shared_secret.as_slice()
    );
}

#[tokio::test]
async fn refused_documents_are_validation_errors() {
    let enclave = Enclave::new();
    let env = env_trusting(&enclave).await;
    let key = create_key(&env, None).await;
    let gdk = |recipient| GenerateDataKeyInput {
        key_id: Some(key.key_id.clone()),
        key_spec: Some("AES_256".into()),
        recipient: Some(recipient),
        ..Default::default()
    };
    let run = |recipient| env.kms.generate_data_key(&env.root, gdk(recipient), true);

    // Another PKI's document: untrusted chain.
    let stranger = Enclave::new();
    let m = validation(run(stranger.good()).await);
    assert!(m.contains("could not be verified"), "{m}");

    // Tampered: a byte of PCR4 flipped.
    let mut tampered = enclave.good();
    let doc = tampered.attestation_document.as_mut().unwrap();
    let at = doc.windows(48).position(|w| w == [5u8; 48]).unwrap();
    doc[at] ^= 0x80;
    assert!(validation(run(tampered).await).contains("could not be verified"));

    // No public key.
    let no_key = enclave.recipient(&Document::new(None, START_MS as u64));
    assert!(validation(run(no_key).await).contains("does not include a public key"));

    // Not CBOR at all.
    let garbage = RecipientInput {
        key_encryption_algorithm: None,
        attestation_document: Some(b"not an attestation document".to_vec()),
    };
    assert!(validation(run(garbage).await).contains("not a valid Nitro Enclaves"));

    // A wrong algorithm name, and no document.
    let mut wrong = enclave.good();
    wrong.key_encryption_algorithm = Some("RSAES_OAEP_SHA_1".into());
    assert!(validation(run(wrong).await).contains("recipient.keyEncryptionAlgorithm"));
    let empty = RecipientInput::default();
    assert!(validation(run(empty).await).contains("recipient.attestationDocument"));

    // Expired: two days later the leaf (valid a day either side) is out of date.
    env.clock.advance(2 * DAY_MS);
    assert!(validation(run(enclave.good()).await).contains("could not be verified"));
}

#[tokio::test]
async fn without_a_configured_root_recipient_is_unsupported() {
    let enclave = Enclave::new();
    let env = env().await;
    let key = create_key(&env, None).await;
    let r = env
        .kms
        .generate_data_key(
            &env.root,
            GenerateDataKeyInput {
                key_id: Some(key.key_id.clone()),
                key_spec: Some("AES_256".into()),
                recipient: Some(enclave.good()),
                ..Default::default()
            },
            true,
        )
        .await;
    assert!(matches!(r, Err(KmsError::UnsupportedOperation(_))));
}

#[tokio::test]
async fn pcr_conditions_in_a_key_policy_allow_and_deny() {
    let enclave = Enclave::new();
    let env = env_trusting(&enclave).await;
    let alice = user(&env, "enclave-app").await;
    // PCR0 (= ImageSha384) is 01…01 and PCR1 02…02 in the test documents.
    let policy = key_policy(vec![json!({
        "Sid": "Enclave only",
        "Effect": "Allow",
        "Principal": { "AWS": alice.arn() },
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {
            "StringEqualsIgnoreCase": {
                "kms:RecipientAttestation:ImageSha384": "01".repeat(48),
                "kms:RecipientAttestation:PCR1": "02".repeat(48)
            }
        }
    })]);
    let key = create_key(&env, Some(policy)).await;
    let caller = alice.caller(&env.kms);
    let gdk = |recipient| GenerateDataKeyInput {
        key_id: Some(key.key_id.clone()),
        key_spec: Some("AES_256".into()),
        recipient,
        ..Default::default()
    };
    // The measured enclave: allowed.
    let out = env
        .kms
        .generate_data_key(&caller, gdk(Some(enclave.good())), true)
        .await
        .unwrap();
    assert!(out.ciphertext_for_recipient.is_some());
    // Without a Recipient the keys are absent: denied.
    let r = env.kms.generate_data_key(&caller, gdk(None), true).await;
    assert!(
        matches!(r, Err(KmsError::AccessDenied(_))),
        "no Recipient must be denied"
    );
    // Another image (PCR0 differs): denied.
    let mut other = Document::new(Some(enclave.spki.clone()), START_MS as u64);
    other.pcrs.insert(0, vec![0xee; 48]);
    let r = env
        .kms
        .generate_data_key(&caller, gdk(Some(enclave.recipient(&other))), true)
        .await;
    assert!(
        matches!(r, Err(KmsError::AccessDenied(_))),
        "another image must be denied"
    );
    // PCR1 differs: denied.
    let mut other = Document::new(Some(enclave.spki.clone()), START_MS as u64);
    other.pcrs.insert(1, vec![0xee; 48]);
    let r = env
        .kms
        .generate_data_key(&caller, gdk(Some(enclave.recipient(&other))), true)
        .await;
    assert!(matches!(r, Err(KmsError::AccessDenied(_))));
}

#[tokio::test]
async fn nitrotpm_documents_answer_and_their_pcr_conditions_allow_and_deny() {
    let enclave = Enclave::new();
    let env = env_trusting(&enclave).await;
    let alice = user(&env, "instance-app").await;
    // Document::nitrotpm: PCRn is 48 bytes of 0x80 + n (PCR4 84…84, PCR7 87…87).
    let tpm_policy = key_policy(vec![json!({
        "Sid": "Attested instance only",
        "Effect": "Allow",
        "Principal": { "AWS": alice.arn() },
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {
            "StringEqualsIgnoreCase": {
                "kms:RecipientAttestation:NitroTPMPCR4": "84".repeat(48),
                "kms:RecipientAttestation:NitroTPMPCR7": "87".repeat(48)
            }
        }
    })]);
    let tpm_key = create_key(&env, Some(tpm_policy)).await;
    let caller = alice.caller(&env.kms);
    let gdk = |key_id: &str, recipient| GenerateDataKeyInput {
        key_id: Some(key_id.into()),
        key_spec: Some("AES_256".into()),
        recipient,
        ..Default::default()
    };
    let instance = enclave.recipient(&Document::nitrotpm(
        Some(enclave.spki.clone()),
        START_MS as u64,
    ));

    // The measured instance: allowed, and the data key travels only in the envelope.
    let out = env
        .kms
        .generate_data_key(&caller, gdk(&tpm_key.key_id, Some(instance.clone())), true)
        .await
        .unwrap();
    assert!(out.plaintext.is_none(), "no Plaintext with a Recipient");
    let data_key = open_envelope(&enclave.key, out.ciphertext_for_recipient.as_ref().unwrap())
        .expect("the instance's key opens the envelope");
    assert_eq!(data_key.len(), 32);
    // No Recipient, or an enclave's document (it has no NitroTPM PCRs): denied.
    for recipient in [None, Some(enclave.good())] {
        let r = env
            .kms
            .generate_data_key(&caller, gdk(&tpm_key.key_id, recipient), true)
            .await;
        assert!(matches!(r, Err(KmsError::AccessDenied(_))), "{:?}", r.err());
    }
    // PCR7 differs: denied.
    let mut other = Document::nitrotpm(Some(enclave.spki.clone()), START_MS as u64);
    other.pcrs.insert(7, vec![0xee; 48]);
    let r = env
        .kms
        .generate_data_key(
            &caller,
            gdk(&tpm_key.key_id, Some(enclave.recipient(&other))),
            true,
        )
        .await;
    assert!(matches!(r, Err(KmsError::AccessDenied(_))));

    // An enclave-PCR condition is not met by a NitroTPM document, even with equal bytes.
    let enclave_policy = key_policy(vec![json!({
        "Sid": "Enclave only",
        "Effect": "Allow",
        "Principal": { "AWS": alice.arn() },
        "Action": ["kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {
            "StringEqualsIgnoreCase": { "kms:RecipientAttestation:PCR4": "84".repeat(48) }
        }
    })]);
    let enclave_key = create_key(&env, Some(enclave_policy)).await;
    let r = env
        .kms
        .generate_data_key(&caller, gdk(&enclave_key.key_id, Some(instance)), true)
        .await;
    assert!(matches!(r, Err(KmsError::AccessDenied(_))), "{:?}", r.err());
}
