//! End-to-end tests of the key lifecycle with aws-sdk-kms: rotation, scheduled deletion,
//! imported key material and key states. Time moves through the operator's clock control.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, IncludeKeyMaterial, KeyState, OriginType, RotationType,
    WrappingKeySpec,
};
use common::{Server, code, message};

const DAY: i64 = 86_400;

async fn symmetric_key(kms: &aws_sdk_kms::Client) -> String {
    kms.create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id
}

async fn encrypt(kms: &aws_sdk_kms::Client, key: &str, text: &[u8]) -> Blob {
    kms.encrypt()
        .key_id(key)
        .plaintext(Blob::new(text))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotations_keep_every_earlier_ciphertext_decryptable() {
    let server = Server::start();
    let kms = server.kms_a();
    let key = symmetric_key(&kms).await;
    let first_material = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .current_key_material_id
        .unwrap();

    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled);
    kms.enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled);
    assert_eq!(status.rotation_period_in_days, Some(90));
    let next = status.next_rotation_date.unwrap().secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (next - (now + 90 * DAY)).abs() < 60,
        "next rotation in 90 days"
    );

    let mut blobs = vec![encrypt(&kms, &key, b"zero").await];
    for _ in 0..2 {
        kms.rotate_key_on_demand()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        blobs.push(encrypt(&kms, &key, b"more").await);
    }
    // Automatic rotation happens when the schedule says, and moves the schedule on.
    let done = server.advance_clock(91 * DAY);
    assert_eq!(done["Rotated"], 1, "{done}");
    blobs.push(encrypt(&kms, &key, b"last").await);
    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(status.next_rotation_date.unwrap().secs() > next + 80 * DAY);

    let mut materials = Vec::new();
    for blob in &blobs {
        let out = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .send()
            .await
            .unwrap();
        materials.push(out.key_material_id.unwrap());
    }
    assert_eq!(materials[0], first_material);
    let mut unique = materials.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "each rotation made new material");

    let rotations = kms.list_key_rotations().key_id(&key).send().await.unwrap();
    let entries = rotations.rotations();
    let kinds: Vec<_> = entries.iter().map(|e| e.rotation_type().cloned()).collect();
    assert_eq!(
        kinds,
        vec![
            Some(RotationType::OnDemand),
            Some(RotationType::OnDemand),
            Some(RotationType::Automatic)
        ]
    );
    assert_eq!(entries[2].key_material_id(), Some(materials[3].as_str()));
    let all = kms
        .list_key_rotations()
        .key_id(&key)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    assert_eq!(all.rotations().len(), 4);
    let page = kms
        .list_key_rotations()
        .key_id(&key)
        .limit(2)
        .send()
        .await
        .unwrap();
    assert!(page.truncated);
    let rest = kms
        .list_key_rotations()
        .key_id(&key)
        .marker(page.next_marker.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.rotations().len(), 1);
    let current = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .current_key_material_id
        .unwrap();
    assert_eq!(current, materials[3]);

    kms.disable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled);
    assert!(status.next_rotation_date.is_none());
    assert_eq!(server.advance_clock(400 * DAY)["Rotated"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_rules_and_limits() {
    let server = Server::start();
    let kms = server.kms_a();
    let key = symmetric_key(&kms).await;
    for bad in [89, 2561] {
        let r = kms
            .enable_key_rotation()
            .key_id(&key)
            .rotation_period_in_days(bad)
            .send()
            .await;
        assert_eq!(code(r), "ValidationException");
    }
    kms.enable_key_rotation().key_id(&key).send().await.unwrap();
    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(status.rotation_period_in_days, Some(365));

    kms.disable_key().key_id(&key).send().await.unwrap();
    let r = kms.enable_key_rotation().key_id(&key).send().await;
    assert_eq!(code(r), "DisabledException");
    let r = kms.rotate_key_on_demand().key_id(&key).send().await;
    assert_eq!(code(r), "DisabledException");
    // A disabled key does not rotate on schedule.
    assert_eq!(server.advance_clock(366 * DAY)["Rotated"], 0);
    kms.enable_key().key_id(&key).send().await.unwrap();
    // Enabled again with the date passed: it catches up with one rotation, not several.
    assert_eq!(server.advance_clock(1)["Rotated"], 1);

    for _ in 0..25 {
        kms.rotate_key_on_demand()
            .key_id(&key)
            .send()
            .await
            .unwrap();
    }
    let r = kms.rotate_key_on_demand().key_id(&key).send().await;
    assert_eq!(code(r), "LimitExceededException");

    let external = kms
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let (external, external_arn) = (external.key_id, external.arn.unwrap());
    let r = kms.enable_key_rotation().key_id(&external).send().await;
    assert_eq!(code(r), "UnsupportedOperationException");
    // AWS checks the key state first: an EXTERNAL key waiting for material is pending import
    // (recorded `test_rotate_key_on_demand_on_external_key_with_no_key_material`).
    let r = kms.rotate_key_on_demand().key_id(&external).send().await;
    assert_eq!(message(r), format!("{external_arn} is pending import."));
    let r = kms.rotate_key_on_demand().key_id(&external).send().await;
    assert_eq!(code(r), "KMSInvalidStateException");

    // Other accounts cannot touch the schedule.
    let r = server
        .kms_b()
        .enable_key_rotation()
        .key_id(format!(
            "arn:aws:kms:us-east-1:{}:key/{key}",
            common::ACCOUNT_A
        ))
        .send()
        .await;
    assert_eq!(code(r), "AccessDeniedException");
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_deletion_can_be_cancelled_and_blocks_use() {
    let server = Server::start();
    let kms = server.kms_a();
    let key = symmetric_key(&kms).await;
    let blob = encrypt(&kms, &key, b"secret").await;
    for bad in [6, 31] {
        let r = kms
            .schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(bad)
            .send()
            .await;
        assert_eq!(code(r), "ValidationException");
    }
    let out = kms
        .schedule_key_deletion()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_state, Some(KeyState::PendingDeletion));
    assert_eq!(out.pending_window_in_days, Some(30));
    let meta = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, Some(KeyState::PendingDeletion));
    assert!(!meta.enabled);
    assert_eq!(meta.deletion_date, out.deletion_date);
    assert_eq!(meta.pending_deletion_window_in_days, Some(30));

    let arn = meta.arn.unwrap();
    let r = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("x"))
        .send()
        .await;
    assert_eq!(message(r), format!("{arn} is pending deletion."));
    let r = kms.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_eq!(code(r), "KMSInvalidStateException");
    let r = kms.schedule_key_deletion().key_id(&key).send().await;
    assert_eq!(code(r), "KMSInvalidStateException");
    let r = kms.enable_key().key_id(&key).send().await;
    assert_eq!(code(r), "KMSInvalidStateException");
    let r = kms
        .create_alias()
        .alias_name("alias/late")
        .target_key_id(&key)
        .send()
        .await;
    assert_eq!(code(r), "KMSInvalidStateException");
    let r = kms
        .tag_resource()
        .key_id(&key)
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key("a")
                .tag_value("b")
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_eq!(code(r), "KMSInvalidStateException");

    kms.cancel_key_deletion().key_id(&key).send().await.unwrap();
    let meta = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, Some(KeyState::Disabled));
    assert!(meta.deletion_date.is_none());
    let r = kms.cancel_key_deletion().key_id(&key).send().await;
    assert_eq!(message(r), format!("{arn} is not pending deletion."));
    let r = kms.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_eq!(code(r), "DisabledException");
    kms.enable_key().key_id(&key).send().await.unwrap();
    kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    // Cancelled: the old date passing does nothing.
    assert_eq!(server.advance_clock(31 * DAY)["Deleted"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_completes_across_a_restart_with_aliases() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut server = Server::start_in(&data_dir, true);
    let kms = server.kms_a();
    let doomed = symmetric_key(&kms).await;
    let kept = symmetric_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/doomed")
        .target_key_id(&doomed)
        .send()
        .await
        .unwrap();
    let out = kms
        .schedule_key_deletion()
        .key_id(&doomed)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let deletion = out.deletion_date.unwrap().secs();
    assert_eq!(server.advance_clock(6 * DAY)["Deleted"], 0);
    assert_eq!(server.terminate().code(), Some(0));

    // The moved clock survives the restart; the key is still pending deletion.
    let server = Server::start_in(&data_dir, true);
    let kms = server.kms_a();
    let meta = kms
        .describe_key()
        .key_id(&doomed)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, Some(KeyState::PendingDeletion));
    assert_eq!(meta.deletion_date.unwrap().secs(), deletion);
    let done = server.advance_clock(DAY + 60);
    assert_eq!(done["Deleted"], 1, "{done}");

    let r = kms.describe_key().key_id(&doomed).send().await;
    assert_eq!(code(r), "NotFoundException");
    let r = kms.describe_key().key_id("alias/doomed").send().await;
    assert_eq!(code(r), "NotFoundException");
    let aliases = kms.list_aliases().send().await.unwrap();
    assert!(
        aliases
            .aliases()
            .iter()
            .all(|a| a.alias_name() != Some("alias/doomed"))
    );
    let keys = kms.list_keys().send().await.unwrap();
    let ids: Vec<_> = keys.keys().iter().filter_map(|k| k.key_id()).collect();
    assert_eq!(ids, vec![kept.as_str()]);
    // The alias name is free again.
    kms.create_alias()
        .alias_name("alias/doomed")
        .target_key_id(&kept)
        .send()
        .await
        .unwrap();
}

fn wrap_oaep_sha256(public_key_der: &[u8], material: &[u8]) -> Vec<u8> {
    let pk = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(public_key_der).unwrap())
        .unwrap();
    let mut out = vec![0u8; pk.ciphertext_size()];
    let n = pk
        .encrypt(&OAEP_SHA256_MGF1SHA256, material, &mut out, None)
        .unwrap()
        .len();
    out.truncate(n);
    out
}

async fn import(
    kms: &aws_sdk_kms::Client,
    key: &str,
    material: &[u8],
    valid_to: Option<i64>,
) -> Result<
    aws_sdk_kms::operation::import_key_material::ImportKeyMaterialOutput,
    aws_sdk_kms::error::SdkError<
        aws_sdk_kms::operation::import_key_material::ImportKeyMaterialError,
        aws_sdk_kms::config::http::HttpResponse,
    >,
> {
    let params = kms
        .get_parameters_for_import()
        .key_id(key)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    let wrapped = wrap_oaep_sha256(params.public_key.unwrap().as_ref(), material);
    let mut request = kms
        .import_key_material()
        .key_id(key)
        .import_token(params.import_token.unwrap())
        .encrypted_key_material(Blob::new(wrapped));
    request = match valid_to {
        Some(t) => request
            .expiration_model(ExpirationModelType::KeyMaterialExpires)
            .valid_to(DateTime::from_secs(t)),
        // AWS's default model is KEY_MATERIAL_EXPIRES, which needs a ValidTo.
        None => request.expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire),
    };
    request.send().await
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_material_expires_and_can_be_reimported() {
    let server = Server::start();
    let kms = server.kms_a();
    let meta = kms
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let key = meta.key_id.clone();
    assert_eq!(meta.key_state, Some(KeyState::PendingImport));
    assert_eq!(meta.origin, Some(OriginType::External));
    assert!(meta.current_key_material_id.is_none());
    let arn = meta.arn.unwrap();
    let r = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("x"))
        .send()
        .await;
    assert_eq!(message(r), format!("{arn} is pending import."));
    let r = kms.enable_key().key_id(&key).send().await;
    assert_eq!(code(r), "KMSInvalidStateException");

    let material = [0x42u8; 32];
    let now = server.advance_clock(0)["Now"].as_i64().unwrap();
    let out = import(&kms, &key, &material, Some(now + 2 * DAY))
        .await
        .unwrap();
    let material_id = out.key_material_id.unwrap();
    let meta = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, Some(KeyState::Enabled));
    assert_eq!(
        meta.expiration_model,
        Some(ExpirationModelType::KeyMaterialExpires)
    );
    assert_eq!(meta.valid_to.unwrap().secs(), now + 2 * DAY);
    assert_eq!(
        meta.current_key_material_id.as_deref(),
        Some(material_id.as_str())
    );
    let blob = encrypt(&kms, &key, b"imported").await;

    // The same material again is fine (and may change the expiry); different material is not.
    let again = import(&kms, &key, &material, None).await.unwrap();
    assert_eq!(again.key_material_id.unwrap(), material_id);
    let r = import(&kms, &key, &[0x43u8; 32], None).await;
    assert_eq!(code(r), "IncorrectKeyMaterialException");
    let r = import(&kms, &key, &[0x42u8; 16], None).await;
    assert_eq!(code(r), "IncorrectKeyMaterialException");
    import(&kms, &key, &material, Some(now + 2 * DAY))
        .await
        .unwrap();

    // The material expires: the key is PendingImport until the same material returns.
    let done = server.advance_clock(2 * DAY + 1);
    assert_eq!(done["Expired"], 1, "{done}");
    let r = kms.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_eq!(code(r), "KMSInvalidStateException");
    let meta = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, Some(KeyState::PendingImport));
    assert!(meta.valid_to.is_none());
    let r = import(&kms, &key, &[0x43u8; 32], None).await;
    assert_eq!(code(r), "IncorrectKeyMaterialException");
    import(&kms, &key, &material, None).await.unwrap();
    let out = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext.unwrap().as_ref(), b"imported");

    // DeleteImportedKeyMaterial.
    let out = kms
        .delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_material_id.as_deref(), Some(material_id.as_str()));
    let meta = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, Some(KeyState::PendingImport));
    // AWS's `describe-key-after-deleted-import` (test_import_key_symmetric): no ExpirationModel,
    // but the symmetric key keeps its CurrentKeyMaterialId.
    assert_eq!(meta.expiration_model, None);
    assert_eq!(
        meta.current_key_material_id.as_deref(),
        Some(material_id.as_str())
    );
    let r = kms.decrypt().ciphertext_blob(blob).send().await;
    assert_eq!(code(r), "KMSInvalidStateException");

    // Import operations on an AWS_KMS key are unsupported.
    let own = symmetric_key(&kms).await;
    let r = kms
        .get_parameters_for_import()
        .key_id(&own)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await;
    assert_eq!(code(r), "UnsupportedOperationException");
    let r = kms.delete_imported_key_material().key_id(&own).send().await;
    assert_eq!(code(r), "UnsupportedOperationException");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_tokens_expire_and_are_bound_to_their_key() {
    let server = Server::start();
    let kms = server.kms_a();
    let create = || async {
        kms.create_key()
            .origin(OriginType::External)
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id
    };
    let (a, b) = (create().await, create().await);
    let params = kms
        .get_parameters_for_import()
        .key_id(&a)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa3072)
        .send()
        .await
        .unwrap();
    let valid_to = params.parameters_valid_to.unwrap().secs();
    let now = server.advance_clock(0)["Now"].as_i64().unwrap();
    assert!((valid_to - (now + DAY)).abs() < 60, "valid for 24 hours");
    let wrapped = Blob::new(wrap_oaep_sha256(
        params.public_key.unwrap().as_ref(),
        &[1u8; 32],
    ));
    let token = params.import_token.unwrap();

    let r = kms
        .import_key_material()
        .key_id(&b)
        .import_token(token.clone())
        .encrypted_key_material(wrapped.clone())
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await;
    assert_eq!(code(r), "InvalidImportTokenException");
    let r = kms
        .import_key_material()
        .key_id(&a)
        .import_token(token.clone())
        .encrypted_key_material(Blob::new(vec![0u8; 384]))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await;
    assert_eq!(code(r), "InvalidCiphertextException");
    let r = kms
        .import_key_material()
        .key_id(&a)
        .import_token(token.clone())
        .encrypted_key_material(wrapped.clone())
        .expiration_model(ExpirationModelType::KeyMaterialExpires)
        .send()
        .await;
    assert_eq!(code(r), "ValidationException");
    let r = kms
        .get_parameters_for_import()
        .key_id(&a)
        .wrapping_algorithm(AlgorithmSpec::RsaesPkcs1V15)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await;
    assert_eq!(code(r), "UnsupportedOperationException");

    server.advance_clock(DAY + 1);
    let r = kms
        .import_key_material()
        .key_id(&a)
        .import_token(token)
        .encrypted_key_material(wrapped)
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await;
    // Expired tokens are forgotten by the background task, so they are no longer known.
    let c = code(r);
    assert!(
        c == "ExpiredImportTokenException" || c == "InvalidImportTokenException",
        "{c}"
    );

    // A key pending import can be scheduled for deletion; cancelling returns it to PendingImport.
    kms.schedule_key_deletion().key_id(&a).send().await.unwrap();
    kms.cancel_key_deletion().key_id(&a).send().await.unwrap();
    let meta = kms
        .describe_key()
        .key_id(&a)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, Some(KeyState::PendingImport));
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_hmac_and_ecc_material_is_usable_and_expires() {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
        UnparsedPublicKey,
    };
    use aws_sdk_kms::types::{KeySpec, KeyUsageType, MacAlgorithmSpec, SigningAlgorithmSpec};

    let server = Server::start();
    let kms = server.kms_a();

    // HMAC_512 with 100 bytes of material (64..=128 allowed), expiring in a day.
    let key = kms
        .create_key()
        .origin(OriginType::External)
        .key_spec(KeySpec::Hmac512)
        .key_usage(KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    assert_eq!(
        code(import(&kms, &key, &[7u8; 63], None).await),
        "IncorrectKeyMaterialException"
    );
    let material = [0x5au8; 100];
    let now = server.advance_clock(0)["Now"].as_i64().unwrap();
    import(&kms, &key, &material, Some(now + DAY))
        .await
        .unwrap();
    let mac = kms
        .generate_mac()
        .key_id(&key)
        .mac_algorithm(MacAlgorithmSpec::HmacSha512)
        .message(Blob::new("imported mac"))
        .send()
        .await
        .unwrap()
        .mac
        .unwrap();
    let local = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, &material),
        b"imported mac",
    );
    assert_eq!(mac.as_ref(), local.as_ref());
    assert_eq!(server.advance_clock(DAY + 1)["Expired"], 1);
    let r = kms
        .generate_mac()
        .key_id(&key)
        .mac_algorithm(MacAlgorithmSpec::HmacSha512)
        .message(Blob::new("imported mac"))
        .send()
        .await;
    assert_eq!(code(r), "KMSInvalidStateException");

    // ECC_NIST_P256: a small PKCS#8 fits RSAES-OAEP directly.
    let key = kms
        .create_key()
        .origin(OriginType::External)
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    import(&kms, &key, pkcs8.as_ref(), None).await.unwrap();
    let public = kms
        .get_public_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .public_key
        .unwrap();
    let signature = kms
        .sign()
        .key_id(&key)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .message(Blob::new("imported ecc"))
        .send()
        .await
        .unwrap()
        .signature
        .unwrap();
    // GetPublicKey is SubjectPublicKeyInfo; its tail is the uncompressed point AWS-LC gives.
    assert!(public.as_ref().ends_with(pair.public_key().as_ref()));
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, pair.public_key().as_ref())
        .verify(b"imported ecc", signature.as_ref())
        .unwrap();
    kms.delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let r = kms.get_public_key().key_id(&key).send().await;
    assert_eq!(code(r), "KMSInvalidStateException");
}

/// Several materials per imported symmetric key through aws-sdk-kms (its typed `ImportType`,
/// `KeyMaterialState` and `ImportState` parse Trent's answers): new material waits
/// PENDING_ROTATION, RotateKeyOnDemand makes it current, the first material still decrypts.
#[tokio::test(flavor = "multi_thread")]
async fn imported_key_rotates_on_demand_to_new_material() {
    use aws_sdk_kms::types::{ImportState, ImportType, KeyMaterialState};
    let server = Server::start();
    let kms = server.kms_a();
    let key = kms
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let first = import(&kms, &key, &[1; 32], None)
        .await
        .unwrap()
        .key_material_id
        .unwrap();
    let before = encrypt(&kms, &key, b"first material").await;

    let params = kms
        .get_parameters_for_import()
        .key_id(&key)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    let second = kms
        .import_key_material()
        .key_id(&key)
        .import_token(params.import_token.unwrap())
        .encrypted_key_material(Blob::new(wrap_oaep_sha256(
            params.public_key.unwrap().as_ref(),
            &[2; 32],
        )))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .import_type(ImportType::NewKeyMaterial)
        .key_material_description("next one")
        .send()
        .await
        .unwrap()
        .key_material_id
        .unwrap();
    let listed = kms
        .list_key_rotations()
        .key_id(&key)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap()
        .rotations
        .unwrap();
    let states: Vec<_> = listed
        .iter()
        .map(|e| {
            (
                e.key_material_id.clone().unwrap(),
                e.key_material_state.clone().unwrap(),
                e.import_state.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (
                first.clone(),
                KeyMaterialState::Current,
                ImportState::Imported
            ),
            (
                second.clone(),
                KeyMaterialState::PendingRotation,
                ImportState::Imported
            ),
        ]
    );
    assert_eq!(
        listed[1].key_material_description.as_deref(),
        Some("next one")
    );

    kms.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let meta = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(
        meta.current_key_material_id.as_deref(),
        Some(second.as_str())
    );
    let rotations = kms
        .list_key_rotations()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .rotations
        .unwrap();
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].rotation_type, Some(RotationType::OnDemand));
    assert_eq!(
        rotations[0].key_material_state,
        Some(KeyMaterialState::Current)
    );
    let out = kms.decrypt().ciphertext_blob(before).send().await.unwrap();
    assert_eq!(out.plaintext.unwrap().as_ref(), b"first material");
    assert_eq!(out.key_material_id.as_deref(), Some(first.as_str()));

    let deleted = kms
        .delete_imported_key_material()
        .key_id(&key)
        .key_material_id(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.key_material_id.as_deref(), Some(first.as_str()));
    let meta = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, Some(KeyState::PendingImport));
}
