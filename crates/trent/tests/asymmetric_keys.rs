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

/// The raw ML-KEM encapsulation key of a GetPublicKey answer, checking the SPKI around it
/// (id-alg-ml-kem-*, RFC 9935) by hand rather than with Trent's own parser.
fn ml_kem_encapsulation_key(der: &[u8], last_arc: u8, ek_len: usize) -> &[u8] {
    assert_eq!(der.len(), 22 + ek_len);
    assert_eq!(
        &der[4..17],
        &[
            0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, last_arc
        ]
    );
    assert_eq!(&der[17..18], &[0x03]);
    assert_eq!(der[21], 0, "no unused bits");
    &der[22..]
}

#[tokio::test]
async fn ml_kem_keys_encapsulate_and_decapsulate_with_offline_parties() {
    use aws_lc_rs::kem::{EncapsulationKey, ML_KEM_512, ML_KEM_768, ML_KEM_1024};
    use aws_sdk_kms::types::EncapsulationAlgorithmSpec;
    let server = Server::start();
    let kms = server.kms_a();
    for (spec, alg, arc, ek_len, ct_len) in [
        (KeySpec::MlKem512, &ML_KEM_512, 1u8, 800, 768),
        (KeySpec::MlKem768, &ML_KEM_768, 2, 1184, 1088),
        (KeySpec::MlKem1024, &ML_KEM_1024, 3, 1568, 1568),
    ] {
        let key_id = create(&kms, spec.clone(), KeyUsageType::EncapsulateDecapsulate).await;
        let described = kms.describe_key().key_id(&key_id).send().await.unwrap();
        let meta = described.key_metadata().unwrap();
        assert_eq!(
            meta.key_usage(),
            Some(&KeyUsageType::EncapsulateDecapsulate)
        );
        assert_eq!(
            meta.encapsulation_algorithms(),
            &[EncapsulationAlgorithmSpec::MlKem]
        );
        let public = kms.get_public_key().key_id(&key_id).send().await.unwrap();
        assert_eq!(
            public.key_usage(),
            Some(&KeyUsageType::EncapsulateDecapsulate)
        );
        assert_eq!(public.key_spec(), Some(&spec));
        assert_eq!(
            public.encapsulation_algorithms(),
            &[EncapsulationAlgorithmSpec::MlKem]
        );
        assert!(public.signing_algorithms().is_empty());

        // An offline party encapsulates to the public key; Trent decapsulates the same secret.
        let der = public.public_key().unwrap().as_ref();
        let ek = EncapsulationKey::new(alg, ml_kem_encapsulation_key(der, arc, ek_len)).unwrap();
        let (ciphertext, offline_secret) = ek.encapsulate().unwrap();
        let out = kms
            .decapsulate()
            .key_id(&key_id)
            .shared_secret_ciphertext_blob(Blob::new(ciphertext.as_ref().to_vec()))
            .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.shared_secret().unwrap().as_ref(),
            offline_secret.as_ref()
        );
        assert_eq!(out.key_id(), Some(meta.arn().unwrap()));
        assert_eq!(
            out.encapsulation_algorithm(),
            Some(&EncapsulationAlgorithmSpec::MlKem)
        );

        // Trent encapsulates; Trent decapsulates the same secret.
        let enc = kms
            .encapsulate()
            .key_id(&key_id)
            .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
            .send()
            .await
            .unwrap();
        let blob = enc.shared_secret_ciphertext_blob().unwrap().clone();
        assert_eq!(blob.as_ref().len(), ct_len);
        assert_eq!(enc.shared_secret().unwrap().as_ref().len(), 32);
        let dec = kms
            .decapsulate()
            .key_id(&key_id)
            .shared_secret_ciphertext_blob(blob.clone())
            .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
            .send()
            .await
            .unwrap();
        assert_eq!(dec.shared_secret(), enc.shared_secret());

        // A tampered ciphertext of the right length: implicit rejection, another secret.
        let mut tampered = blob.as_ref().to_vec();
        tampered[0] ^= 1;
        let rejected = kms
            .decapsulate()
            .key_id(&key_id)
            .shared_secret_ciphertext_blob(Blob::new(tampered))
            .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
            .send()
            .await
            .unwrap();
        assert_eq!(rejected.shared_secret().unwrap().as_ref().len(), 32);
        assert_ne!(rejected.shared_secret(), enc.shared_secret());

        // The wrong length is InvalidCiphertextException.
        let short = kms
            .decapsulate()
            .key_id(&key_id)
            .shared_secret_ciphertext_blob(Blob::new(vec![0u8; ct_len - 1]))
            .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
            .send()
            .await;
        assert_eq!(code(short), "InvalidCiphertextException");
    }
}

#[tokio::test]
async fn ml_kem_data_key_pairs_decapsulate_what_their_public_key_encapsulates() {
    use aws_lc_rs::kem::{DecapsulationKey, EncapsulationKey, ML_KEM_512, ML_KEM_768, ML_KEM_1024};
    let server = Server::start();
    let kms = server.kms_a();
    let key_id = new_key_id(&kms).await;
    for (pair_spec, alg, arc, ek_len, dk_len) in [
        (DataKeyPairSpec::MlKem512, &ML_KEM_512, 1u8, 800, 1632usize),
        (DataKeyPairSpec::MlKem768, &ML_KEM_768, 2, 1184, 2400),
        (DataKeyPairSpec::MlKem1024, &ML_KEM_1024, 3, 1568, 3168),
    ] {
        let out = kms
            .generate_data_key_pair()
            .key_id(&key_id)
            .key_pair_spec(pair_spec.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_pair_spec(), Some(&pair_spec));
        let private = out.private_key_plaintext().unwrap().as_ref().to_vec();
        // RFC 9935 PKCS#8: OneAsymmetricKey { 0, id-alg-ml-kem-*, OCTET STRING { expandedKey
        // OCTET STRING } }, checked by hand.
        let [bhi, blo] = u16::try_from(dk_len + 24).unwrap().to_be_bytes();
        let [ihi, ilo] = u16::try_from(dk_len + 4).unwrap().to_be_bytes();
        let [hi, lo] = u16::try_from(dk_len).unwrap().to_be_bytes();
        assert_eq!(
            &private[..28],
            &[
                0x30, 0x82, bhi, blo, 0x02, 0x01, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                0x01, 0x65, 0x03, 0x04, 0x04, arc, 0x04, 0x82, ihi, ilo, 0x04, 0x82, hi, lo
            ]
        );
        assert_eq!(private.len(), 28 + dk_len);
        // A party holding the public key encapsulates; the private key decapsulates it (AWS-LC).
        let ek = EncapsulationKey::new(
            alg,
            ml_kem_encapsulation_key(out.public_key().unwrap().as_ref(), arc, ek_len),
        )
        .unwrap();
        let (ciphertext, secret) = ek.encapsulate().unwrap();
        let dk = DecapsulationKey::new(alg, &private[28..]).unwrap();
        assert_eq!(
            dk.decapsulate(ciphertext.as_ref().into()).unwrap().as_ref(),
            secret.as_ref()
        );
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
        assert!(without.private_key_ciphertext_blob().is_some());
        assert_eq!(without.public_key().unwrap().as_ref().len(), 22 + ek_len);
    }
}

#[tokio::test]
async fn ml_kem_misuse_is_refused_as_aws() {
    use aws_sdk_kms::types::EncapsulationAlgorithmSpec;
    let server = Server::start();
    let kms = server.kms_a();
    let wrong_usage = kms
        .create_key()
        .key_spec(KeySpec::MlKem768)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await;
    assert_eq!(code(wrong_usage), "ValidationException");
    let no_usage = kms.create_key().key_spec(KeySpec::MlKem768).send().await;
    assert_eq!(code(no_usage), "ValidationException");

    let kem = create(
        &kms,
        KeySpec::MlKem512,
        KeyUsageType::EncapsulateDecapsulate,
    )
    .await;
    let sign = kms
        .sign()
        .key_id(&kem)
        .message(Blob::new(b"m".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await;
    assert_eq!(code(sign), "InvalidKeyUsageException");

    let ecc = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let enc = kms
        .encapsulate()
        .key_id(&ecc)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .send()
        .await;
    let msg = message(enc);
    assert!(
        msg.ends_with("key usage is SIGN_VERIFY which is not valid for Encapsulate."),
        "{msg}"
    );
    let dec = kms
        .decapsulate()
        .key_id(&ecc)
        .shared_secret_ciphertext_blob(Blob::new(vec![0u8; 768]))
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .send()
        .await;
    assert_eq!(code(dec), "InvalidKeyUsageException");

    let dry = kms
        .encapsulate()
        .key_id(&kem)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .dry_run(true)
        .send()
        .await;
    assert_eq!(code(dry), "DryRunOperationException");

    kms.disable_key().key_id(&kem).send().await.unwrap();
    let disabled = kms
        .encapsulate()
        .key_id(&kem)
        .encapsulation_algorithm(EncapsulationAlgorithmSpec::MlKem)
        .send()
        .await;
    assert_eq!(code(disabled), "DisabledException");
}
