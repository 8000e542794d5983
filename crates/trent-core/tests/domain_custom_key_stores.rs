//! AWS_CLOUDHSM-type custom key stores over MemoryStore, with a real SoftHSM2 token behind
//! the PKCS#11 custodian: create (cluster, trust anchor, name, quota checks), describe
//! (filters, paging), update and delete rules by connection state, connect with the right
//! and a wrong PIN, disconnect, GenerateRandom from the token, the service-linked role, and
//! the password kept only root-wrapped; KMS keys in a store (made and used in the token,
//! Unavailable while disconnected, the store's key quota, deletion destroying the token key
//! at once or, if the store is disconnected, at its next connect, CustomKeyStoreHasCMKs);
//! token calls made without the service's write lock (a connect or a key generation held in
//! the token blocks no other write; a disconnect during CONNECTING wins), no token key left
//! by a CreateKey that fails after the token, and a key that was Unavailable while its token
//! was down recovering once it is back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::sync::Arc;

use common::*;
use trent_core::Caller;
use trent_core::KmsError;
use trent_core::Store;
use trent_core::crypto::{GenerateDataKeyInput, ReEncryptInput};
use trent_core::custom_key_stores::{
    CreateCustomKeyStoreInput, HsmCluster, UpdateCustomKeyStoreInput,
};
use trent_core::keys::CreateKeyInput;
use trent_crypto::custody::{HsmProvider, HsmTokenLocation};
use trent_crypto::spec::{KeyState, Origin};
use trent_custody_pkcs11::Pkcs11Provider;
use trent_custody_pkcs11::test_token::{TEST_PIN, run_with_token, softhsm_module};
use zeroize::Zeroizing;

const CLUSTER: &str = "cluster-1a2b3c4d5e6";
const OTHER_CLUSTER: &str = "cluster-7a2b3c4d5e6";
const ANCHOR: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUTrent\n-----END CERTIFICATE-----\n";

fn clusters(label: &str) -> Vec<HsmCluster> {
    let module = softhsm_module().unwrap();
    vec![
        HsmCluster {
            id: CLUSTER.into(),
            token: HsmTokenLocation {
                module: module.clone(),
                token_label: label.into(),
            },
            trust_anchor_certificate: ANCHOR.into(),
            max_keys: 2,
        },
        // Declared, but its token does not exist.
        HsmCluster {
            id: OTHER_CLUSTER.into(),
            token: HsmTokenLocation {
                module,
                token_label: "no-such-token".into(),
            },
            trust_anchor_certificate: ANCHOR.into(),
            max_keys: 2,
        },
    ]
}

fn create_input(name: &str, cluster: &str, pin: &str) -> CreateCustomKeyStoreInput {
    CreateCustomKeyStoreInput {
        custom_key_store_name: name.into(),
        cloud_hsm_cluster_id: Some(cluster.into()),
        // Line endings differ from the declared file's: the certificate is the same.
        trust_anchor_certificate: Some(ANCHOR.replace('\n', "\r\n")),
        key_store_password: Some(Zeroizing::new(pin.into())),
        ..Default::default()
    }
}

async fn env_with(label: &str) -> Env {
    let mut env = env().await;
    env.kms = env
        .kms
        .with_hsm_clusters(clusters(label), Arc::new(Pkcs11Provider::new()));
    env
}

async fn state(env: &Env, id: &str) -> (String, Option<String>) {
    let list = env
        .kms
        .describe_custom_key_stores(&env.root, Some(id), None, None, None)
        .await
        .unwrap();
    let e = &list.custom_key_stores[0];
    (e.connection_state.clone(), e.connection_error_code.clone())
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn create_validates_cluster_anchor_name_and_creates_the_role() {
    run_with_token(
        "create_validates_cluster_anchor_name_and_creates_the_role",
        "trent-cks-create",
        |label| {
            block_on(async {
                let env = env_with(label).await;
                let role = trent_core::iam::aws_managed::CKS_ROLE_NAME;
                assert!(env.kms.iam_get_role(&env.root, role).await.is_err());

                let undeclared = create_input("s", "cluster-234567abcdefg", "some-pin");
                assert!(matches!(
                    env.kms.create_custom_key_store(&env.root, undeclared).await,
                    Err(KmsError::CloudHsmClusterNotFound(_))
                ));
                let mut wrong_anchor = create_input("s", CLUSTER, "some-pin");
                wrong_anchor.trust_anchor_certificate =
                    Some("-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----\n".into());
                assert!(matches!(
                    env.kms
                        .create_custom_key_store(&env.root, wrong_anchor)
                        .await,
                    Err(KmsError::IncorrectTrustAnchor(_))
                ));
                let short = create_input("s", CLUSTER, "123456");
                assert!(matches!(
                    env.kms.create_custom_key_store(&env.root, short).await,
                    Err(KmsError::Validation(m)) if !m.contains("123456")
                ));
                // No role until a store is created.
                assert!(env.kms.iam_get_role(&env.root, role).await.is_err());

                // The PIN is not checked at create: a wrong one is accepted here.
                let id = env
                    .kms
                    .create_custom_key_store(&env.root, create_input("first", CLUSTER, "wrong-pin"))
                    .await
                    .unwrap();
                assert!(id.starts_with("cks-") && id.len() == 21, "{id}");
                assert_eq!(state(&env, &id).await, ("DISCONNECTED".into(), None));
                let got = env.kms.iam_get_role(&env.root, role).await.unwrap();
                assert_eq!(got.path, "/aws-service-role/cks.kms.amazonaws.com/");
                assert!(got.trust_policy.contains("cks.kms.amazonaws.com"));
                assert!(got.attached.iter().any(|a| {
                    a.ends_with("AWSKeyManagementServiceCustomKeyStoresServiceRolePolicy")
                }));

                // Name and cluster are each one store's.
                assert!(matches!(
                    env.kms
                        .create_custom_key_store(
                            &env.root,
                            create_input("first", OTHER_CLUSTER, "pin-pin-pin")
                        )
                        .await,
                    Err(KmsError::CustomKeyStoreNameInUse(_))
                ));
                assert!(matches!(
                    env.kms
                        .create_custom_key_store(
                            &env.root,
                            create_input("second", CLUSTER, "pin-pin-pin")
                        )
                        .await,
                    Err(KmsError::CloudHsmClusterInUse(_))
                ));

                // The password is stored wrapped, never in clear.
                let rows = env.store.custom_key_stores(ACCOUNT, REGION).await.unwrap();
                assert_eq!(rows.len(), 1);
                let wrapped = &rows[0].wrapped_password;
                assert!(!wrapped.windows(9).any(|w| w == b"wrong-pin"));
                assert!(!format!("{:?}", rows[0]).contains("wrong-pin"));

                // A key in a store that is not connected is refused (never created outside
                // it); an unknown store is not found.
                let in_store = trent_core::keys::CreateKeyInput {
                    custom_key_store_id: Some(id.clone()),
                    origin: Some("AWS_CLOUDHSM".into()),
                    ..Default::default()
                };
                assert!(matches!(
                    env.kms.create_key(&env.root, in_store).await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));
                let unknown = trent_core::keys::CreateKeyInput {
                    custom_key_store_id: Some("cks-00000000000000000".into()),
                    origin: Some("AWS_CLOUDHSM".into()),
                    ..Default::default()
                };
                assert!(matches!(
                    env.kms.create_key(&env.root, unknown).await,
                    Err(KmsError::CustomKeyStoreNotFound(_))
                ));

                // Another account sees nothing.
                assert!(matches!(
                    env.kms
                        .describe_custom_key_stores(&env.other_root, Some(&id), None, None, None)
                        .await,
                    Err(KmsError::CustomKeyStoreNotFound(_))
                ));
            })
        },
    );
}

#[test]
fn connect_wrong_pin_fails_then_update_password_connects_and_disconnects() {
    run_with_token(
        "connect_wrong_pin_fails_then_update_password_connects_and_disconnects",
        "trent-cks-connect",
        |label| {
            block_on(async {
                let env = env_with(label).await;
                let id = env
                    .kms
                    .create_custom_key_store(&env.root, create_input("s", CLUSTER, "wrong-pin"))
                    .await
                    .unwrap();
                // GenerateRandom needs a connected store.
                assert!(matches!(
                    env.kms
                        .generate_random(&env.root, Some(16), Some(&id), false)
                        .await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));
                env.kms
                    .connect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
                assert_eq!(
                    state(&env, &id).await,
                    ("FAILED".into(), Some("INVALID_CREDENTIALS".into()))
                );
                // FAILED: connect again is refused, update of the password too (not
                // disconnected), delete too.
                assert!(matches!(
                    env.kms.connect_custom_key_store(&env.root, &id).await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));
                let fix = UpdateCustomKeyStoreInput {
                    custom_key_store_id: id.clone(),
                    key_store_password: Some(Zeroizing::new(TEST_PIN.repeat(2))),
                    ..Default::default()
                };
                assert!(matches!(
                    env.kms
                        .update_custom_key_store(&env.root, fix.clone())
                        .await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));
                assert!(matches!(
                    env.kms.delete_custom_key_store(&env.root, &id).await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));
                env.kms
                    .disconnect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
                assert_eq!(state(&env, &id).await, ("DISCONNECTED".into(), None));
                assert!(matches!(
                    env.kms.disconnect_custom_key_store(&env.root, &id).await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));

                // Still a wrong one (the token's PIN is TEST_PIN): FAILED again.
                env.kms
                    .update_custom_key_store(&env.root, fix)
                    .await
                    .unwrap();
                env.kms
                    .connect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
                assert_eq!(
                    state(&env, &id).await.1.as_deref(),
                    Some("INVALID_CREDENTIALS")
                );
                env.kms
                    .disconnect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();

                // The token's PIN, through an update while disconnected.
                let right = UpdateCustomKeyStoreInput {
                    custom_key_store_id: id.clone(),
                    key_store_password: Some(Zeroizing::new(TEST_PIN.into())),
                    ..Default::default()
                };
                env.kms
                    .update_custom_key_store(&env.root, right)
                    .await
                    .unwrap();
                env.kms
                    .connect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
                assert_eq!(state(&env, &id).await, ("CONNECTED".into(), None));
                // Connecting a connected store succeeds and changes nothing.
                env.kms
                    .connect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
                let random = env
                    .kms
                    .generate_random(&env.root, Some(32), Some(&id), false)
                    .await
                    .unwrap();
                assert_eq!(random.len(), 32);
                // While connected: the name may change, the password may not; no delete.
                let rename = UpdateCustomKeyStoreInput {
                    custom_key_store_id: id.clone(),
                    new_custom_key_store_name: Some("renamed".into()),
                    ..Default::default()
                };
                env.kms
                    .update_custom_key_store(&env.root, rename)
                    .await
                    .unwrap();
                assert!(matches!(
                    env.kms.delete_custom_key_store(&env.root, &id).await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));

                // A restarted node finds the store CONNECTED and opens its own connection.
                let again = common::open(&env.store, &env.clock)
                    .await
                    .with_hsm_clusters(clusters(label), Arc::new(Pkcs11Provider::new()));
                assert_eq!(
                    again
                        .generate_random(&env.root, Some(8), Some(&id), false)
                        .await
                        .unwrap()
                        .len(),
                    8
                );
                again
                    .disconnect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();

                env.kms
                    .delete_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
                assert!(matches!(
                    env.kms
                        .describe_custom_key_stores(&env.root, Some(&id), None, None, None)
                        .await,
                    Err(KmsError::CustomKeyStoreNotFound(_))
                ));
            })
        },
    );
}

#[test]
fn undeclared_token_fails_with_cluster_not_found_and_describe_pages() {
    run_with_token(
        "undeclared_token_fails_with_cluster_not_found_and_describe_pages",
        "trent-cks-describe",
        |label| {
            block_on(async {
                let env = env_with(label).await;
                let a = env
                    .kms
                    .create_custom_key_store(&env.root, create_input("a", CLUSTER, "pin-pin-pin"))
                    .await
                    .unwrap();
                let b = env
                    .kms
                    .create_custom_key_store(
                        &env.root,
                        create_input("b", OTHER_CLUSTER, "pin-pin-pin"),
                    )
                    .await
                    .unwrap();
                env.kms
                    .connect_custom_key_store(&env.root, &b)
                    .await
                    .unwrap();
                assert_eq!(
                    state(&env, &b).await,
                    ("FAILED".into(), Some("CLUSTER_NOT_FOUND".into()))
                );

                let all = env
                    .kms
                    .describe_custom_key_stores(&env.root, None, None, None, None)
                    .await
                    .unwrap();
                assert_eq!(all.custom_key_stores.len(), 2);
                assert!(all.next_marker.is_none());
                let first = env
                    .kms
                    .describe_custom_key_stores(&env.root, None, None, Some(1), None)
                    .await
                    .unwrap();
                assert_eq!(first.custom_key_stores.len(), 1);
                let marker = first.next_marker.clone().unwrap();
                let second = env
                    .kms
                    .describe_custom_key_stores(&env.root, None, None, Some(1), Some(&marker))
                    .await
                    .unwrap();
                assert_eq!(second.custom_key_stores.len(), 1);
                assert!(second.next_marker.is_none());
                let mut ids = vec![
                    first.custom_key_stores[0].custom_key_store_id.clone(),
                    second.custom_key_stores[0].custom_key_store_id.clone(),
                ];
                ids.sort();
                let mut want = vec![a.clone(), b.clone()];
                want.sort();
                assert_eq!(ids, want);

                let by_name = env
                    .kms
                    .describe_custom_key_stores(&env.root, None, Some("a"), None, None)
                    .await
                    .unwrap();
                assert_eq!(by_name.custom_key_stores[0].custom_key_store_id, a);
                assert_eq!(by_name.custom_key_stores[0].cloud_hsm_cluster_id, CLUSTER);
                assert_eq!(
                    by_name.custom_key_stores[0].custom_key_store_type,
                    "AWS_CLOUDHSM"
                );
                assert!(matches!(
                    env.kms
                        .describe_custom_key_stores(&env.root, None, Some("zzz"), None, None)
                        .await,
                    Err(KmsError::CustomKeyStoreNotFound(_))
                ));
                assert!(matches!(
                    env.kms
                        .describe_custom_key_stores(&env.root, Some(&a), Some("a"), None, None)
                        .await,
                    Err(KmsError::Validation(_))
                ));
                assert!(matches!(
                    env.kms
                        .describe_custom_key_stores(&env.root, None, None, None, Some("garbage"))
                        .await,
                    Err(KmsError::InvalidMarker(_))
                ));

                // Quota: 10 stores per account and Region (clusters are checked first, so
                // fill the account with store rows directly).
                for i in 0..8 {
                    let mut r = trent_core::store_contract::custom_key_store(
                        &format!("cks-1000000000000000{i}"),
                        ACCOUNT,
                        REGION,
                        &format!("filler-{i}"),
                    );
                    r.cluster_id = format!("cluster-filler{i}aaaaaa");
                    env.store.insert_custom_key_store(&r).await.unwrap();
                }
                env.kms
                    .disconnect_custom_key_store(&env.root, &b)
                    .await
                    .unwrap();
                env.kms
                    .delete_custom_key_store(&env.root, &b)
                    .await
                    .unwrap();
                let filler = trent_core::store_contract::custom_key_store(
                    "cks-10000000000000009",
                    ACCOUNT,
                    REGION,
                    "filler-9",
                );
                env.store.insert_custom_key_store(&filler).await.unwrap();
                assert!(matches!(
                    env.kms
                        .create_custom_key_store(
                            &env.root,
                            create_input("c", OTHER_CLUSTER, "pin-pin-pin")
                        )
                        .await,
                    Err(KmsError::LimitExceeded(_))
                ));
            })
        },
    );
}

fn store_key_input(store: Option<&str>) -> CreateKeyInput {
    CreateKeyInput {
        origin: Some("AWS_CLOUDHSM".into()),
        custom_key_store_id: store.map(str::to_string),
        ..Default::default()
    }
}

/// A second session on the test token, as an operator's tool would open: what the token
/// holds, independently of Trent's connection.
fn token_holds(label: &str, key_label: &str) -> bool {
    let conn = Pkcs11Provider::new()
        .connect(
            &HsmTokenLocation {
                module: softhsm_module().unwrap(),
                token_label: label.into(),
            },
            TEST_PIN,
        )
        .unwrap();
    conn.find_aes_key(key_label).unwrap().is_some()
}

async fn key_state_of(env: &Env, key_id: &str) -> KeyState {
    env.kms
        .describe_key(&env.root, Some(key_id), &[])
        .await
        .unwrap()
        .effective_state()
}

#[test]
fn keys_in_a_store_are_made_and_used_in_the_token_and_follow_its_connection() {
    run_with_token(
        "keys_in_a_store_are_made_and_used_in_the_token_and_follow_its_connection",
        "trent-cks-keys",
        |label| {
            block_on(async {
                let env = env_with(label).await;
                let store = env
                    .kms
                    .create_custom_key_store(&env.root, create_input("s", CLUSTER, TEST_PIN))
                    .await
                    .unwrap();

                // Unknown store, disconnected store, and the combinations AWS refuses.
                assert!(matches!(
                    env.kms
                        .create_key(&env.root, store_key_input(Some("cks-1234567890abcdef0")))
                        .await,
                    Err(KmsError::CustomKeyStoreNotFound(_))
                ));
                assert!(matches!(
                    env.kms
                        .create_key(&env.root, store_key_input(Some(&store)))
                        .await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));
                env.kms
                    .connect_custom_key_store(&env.root, &store)
                    .await
                    .unwrap();
                assert!(matches!(
                    env.kms.create_key(&env.root, store_key_input(None)).await,
                    Err(KmsError::Validation(_))
                ));
                let wrong_origin = CreateKeyInput {
                    origin: None,
                    ..store_key_input(Some(&store))
                };
                assert!(matches!(
                    env.kms.create_key(&env.root, wrong_origin).await,
                    Err(KmsError::Validation(_))
                ));
                let hmac = CreateKeyInput {
                    key_spec: Some("HMAC_256".into()),
                    key_usage: Some("GENERATE_VERIFY_MAC".into()),
                    ..store_key_input(Some(&store))
                };
                assert!(matches!(
                    env.kms.create_key(&env.root, hmac).await,
                    Err(KmsError::UnsupportedOperation(_))
                ));
                let mrk = CreateKeyInput {
                    multi_region: true,
                    ..store_key_input(Some(&store))
                };
                assert!(matches!(
                    env.kms.create_key(&env.root, mrk).await,
                    Err(KmsError::UnsupportedOperation(_))
                ));

                let key = env
                    .kms
                    .create_key(&env.root, store_key_input(Some(&store)))
                    .await
                    .unwrap();
                assert_eq!(key.origin, Origin::AwsCloudHsm);
                let held = key.custody.held().unwrap();
                assert_eq!(held.custom_key_store_id, store);
                assert_eq!(held.cloud_hsm_cluster_id, CLUSTER);
                assert_eq!(key.effective_state(), KeyState::Enabled);

                // The material is in the token, labelled with the key id; the database
                // holds only a reference to it.
                assert!(token_holds(label, &key.key_id));
                let (_, stored) = env.store.key(&key.key_id).await.unwrap().unwrap();
                let root = trent_crypto::RootKey::from_bytes(&[7; 32]).unwrap();
                let raw = root
                    .unwrap(
                        &stored[0].wrapped,
                        &trent_core::model::material_aad(&key.key_id, &stored[0].material_id),
                    )
                    .unwrap();
                assert!(
                    raw.starts_with(b"trent:held-key:v1:"),
                    "no key bytes at rest"
                );

                // Encrypt, Decrypt, GenerateDataKey, ReEncrypt in both directions.
                let ctx = context(&[("purpose", "hsm")]);
                let sealed = encrypt(&env.kms, &env.root, &key.key_id, ctx.clone())
                    .await
                    .unwrap();
                let opened = decrypt(&env.kms, &env.root, &sealed.ciphertext_blob, ctx.clone())
                    .await
                    .unwrap();
                assert_eq!(opened.plaintext.as_slice(), b"attack at dawn");
                assert_eq!(opened.key_arn, key.arn());
                assert!(matches!(
                    decrypt(&env.kms, &env.root, &sealed.ciphertext_blob, context(&[])).await,
                    Err(KmsError::InvalidCiphertext)
                ));
                let data_key = env
                    .kms
                    .generate_data_key(
                        &env.root,
                        GenerateDataKeyInput {
                            key_id: Some(key.key_id.clone()),
                            number_of_bytes: Some(32),
                            ..Default::default()
                        },
                        true,
                    )
                    .await
                    .unwrap();
                let unwrapped =
                    decrypt(&env.kms, &env.root, &data_key.ciphertext_blob, context(&[]))
                        .await
                        .unwrap();
                assert_eq!(
                    unwrapped.plaintext.as_slice(),
                    data_key.plaintext.unwrap().as_slice()
                );
                let builtin = create_key(&env, None).await;
                let moved = env
                    .kms
                    .re_encrypt(
                        &env.root,
                        ReEncryptInput {
                            ciphertext_blob: Some(sealed.ciphertext_blob.clone()),
                            source_encryption_context: ctx.clone(),
                            destination_key_id: Some(builtin.key_id.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                let back = env
                    .kms
                    .re_encrypt(
                        &env.root,
                        ReEncryptInput {
                            ciphertext_blob: Some(moved.ciphertext_blob),
                            destination_key_id: Some(key.key_id.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(back.key_arn, key.arn());
                assert_eq!(
                    decrypt(&env.kms, &env.root, &back.ciphertext_blob, context(&[]))
                        .await
                        .unwrap()
                        .plaintext
                        .as_slice(),
                    b"attack at dawn"
                );

                // Rotation and import are not for these keys (AWS's UnsupportedOperation).
                assert!(matches!(
                    env.kms.enable_key_rotation(&env.root, Some(&key.key_id), None).await,
                    Err(KmsError::UnsupportedOperation(m)) if m.contains("AWS_CLOUDHSM")
                ));
                assert!(matches!(
                    env.kms
                        .get_parameters_for_import(
                            &env.root,
                            Some(&key.key_id),
                            Some("RSAES_OAEP_SHA_256"),
                            Some("RSA_2048")
                        )
                        .await,
                    Err(KmsError::UnsupportedOperation(_))
                ));

                // Disconnected: the key is Unavailable, crypto is refused with AWS's
                // message; DisableKey is accepted and shows after the reconnect.
                env.kms
                    .disconnect_custom_key_store(&env.root, &store)
                    .await
                    .unwrap();
                assert_eq!(key_state_of(&env, &key.key_id).await, KeyState::Unavailable);
                assert_eq!(
                    encrypt(&env.kms, &env.root, &key.key_id, ctx.clone())
                        .await
                        .err(),
                    Some(KmsError::InvalidState(format!(
                        "{} is unavailable.",
                        key.arn()
                    )))
                );
                assert!(matches!(
                    decrypt(&env.kms, &env.root, &sealed.ciphertext_blob, ctx.clone()).await,
                    Err(KmsError::InvalidState(_))
                ));
                env.kms
                    .disable_key(&env.root, Some(&key.key_id))
                    .await
                    .unwrap();
                assert_eq!(key_state_of(&env, &key.key_id).await, KeyState::Unavailable);
                assert!(matches!(
                    env.kms.delete_custom_key_store(&env.root, &store).await,
                    Err(KmsError::CustomKeyStoreHasCmks(_))
                ));
                env.kms
                    .connect_custom_key_store(&env.root, &store)
                    .await
                    .unwrap();
                assert_eq!(key_state_of(&env, &key.key_id).await, KeyState::Disabled);
                env.kms
                    .enable_key(&env.root, Some(&key.key_id))
                    .await
                    .unwrap();
                assert_eq!(
                    decrypt(&env.kms, &env.root, &sealed.ciphertext_blob, ctx.clone())
                        .await
                        .unwrap()
                        .plaintext
                        .as_slice(),
                    b"attack at dawn"
                );

                // Per-store quota: this cluster declares max_keys = 2.
                let second = env
                    .kms
                    .create_key(&env.root, store_key_input(Some(&store)))
                    .await
                    .unwrap();
                assert!(matches!(
                    env.kms
                        .create_key(&env.root, store_key_input(Some(&store)))
                        .await,
                    Err(KmsError::LimitExceeded(_))
                ));

                // Deletion while connected destroys the token key; a key whose store is
                // disconnected when its deletion comes is deleted and its token key kept.
                for k in [&key.key_id, &second.key_id] {
                    env.kms
                        .schedule_key_deletion(&env.root, Some(k), Some(7))
                        .await
                        .unwrap();
                }
                env.clock.advance(7 * DAY_MS);
                env.kms
                    .disconnect_custom_key_store(&env.root, &store)
                    .await
                    .unwrap();
                // PendingDeletion stays PendingDeletion while disconnected.
                assert_eq!(
                    key_state_of(&env, &second.key_id).await,
                    KeyState::PendingDeletion
                );
                env.kms
                    .cancel_key_deletion(&env.root, Some(&key.key_id))
                    .await
                    .unwrap();
                assert_eq!(env.kms.run_due_work().await.unwrap().deleted, 1);
                assert!(
                    token_holds(label, &second.key_id),
                    "kept while the store is disconnected"
                );
                assert_eq!(
                    env.store.pending_token_destructions(&store).await.unwrap(),
                    std::slice::from_ref(&second.key_id)
                );
                // A restart in between changes nothing: the destruction is recorded durably.
                let restarted = common::open(&env.store, &env.clock)
                    .await
                    .with_hsm_clusters(clusters(label), Arc::new(Pkcs11Provider::new()));
                restarted
                    .connect_custom_key_store(&env.root, &store)
                    .await
                    .unwrap();
                // The next connect destroyed it (counted through a session of the test's own).
                assert_eq!(token_keys(label), vec![key.key_id.clone()]);
                assert!(
                    env.store
                        .pending_token_destructions(&store)
                        .await
                        .unwrap()
                        .is_empty()
                );
                restarted
                    .disconnect_custom_key_store(&env.root, &store)
                    .await
                    .unwrap();
                env.kms
                    .connect_custom_key_store(&env.root, &store)
                    .await
                    .unwrap();
                env.kms
                    .schedule_key_deletion(&env.root, Some(&key.key_id), Some(7))
                    .await
                    .unwrap();
                env.clock.advance(7 * DAY_MS);
                assert_eq!(env.kms.run_due_work().await.unwrap().deleted, 1);
                assert!(
                    !token_holds(label, &key.key_id),
                    "destroyed with its KMS key"
                );
                assert!(
                    env.store
                        .pending_token_destructions(&store)
                        .await
                        .unwrap()
                        .is_empty()
                );

                // No keys left: the store can go once disconnected.
                env.kms
                    .disconnect_custom_key_store(&env.root, &store)
                    .await
                    .unwrap();
                env.kms
                    .delete_custom_key_store(&env.root, &store)
                    .await
                    .unwrap();
            })
        },
    );
}

/// A cluster backs at most one custom key store in the whole service (not per account):
/// while account A's store is connected, account B can neither create a store on A's
/// cluster (with any password) nor, therefore, connect to A's token; another Region of A
/// is refused the same way.
#[test]
fn a_cluster_in_use_by_another_account_is_refused() {
    run_with_token(
        "a_cluster_in_use_by_another_account_is_refused",
        "trent-cks-cross-account",
        |label| {
            block_on(async {
                let env = env_with(label).await;
                let id = env
                    .kms
                    .create_custom_key_store(&env.root, create_input("a-store", CLUSTER, TEST_PIN))
                    .await
                    .unwrap();
                env.kms
                    .connect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
                let refused = env
                    .kms
                    .create_custom_key_store(
                        &env.other_root,
                        create_input("b-store", CLUSTER, "wrong-password"),
                    )
                    .await;
                match refused {
                    Err(KmsError::CloudHsmClusterInUse(m)) => assert_eq!(
                        m,
                        format!(
                            "The specified AWS CloudHSM cluster {CLUSTER} is already associated with a custom key store."
                        )
                    ),
                    other => panic!("expected CloudHsmClusterInUse, got {:?}", other.err()),
                }
                let listed = env
                    .kms
                    .describe_custom_key_stores(&env.other_root, None, None, None, None)
                    .await
                    .unwrap();
                assert!(listed.custom_key_stores.is_empty());
                let other_region =
                    Caller::root(common::ACCOUNT, common::ROOT_ACCESS_KEY, "eu-west-1");
                assert!(matches!(
                    env.kms
                        .create_custom_key_store(
                            &other_region,
                            create_input("a-elsewhere", CLUSTER, TEST_PIN)
                        )
                        .await,
                    Err(KmsError::CloudHsmClusterInUse(_))
                ));
                env.kms
                    .disconnect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
            })
        },
    );
}

// ---------------------------------------------------------------------------------------
// Token calls outside the write lock, failures after the token, and a token that was down.

/// A gate a token call waits at (on its blocking thread) until the test opens it.
#[derive(Default)]
struct Gate {
    armed: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
    /// Calls that have reached the gate while it was armed.
    entered: std::sync::atomic::AtomicUsize,
}

impl Gate {
    fn arm(&self) {
        *self.armed.lock().unwrap() = true;
    }

    fn open(&self) {
        *self.armed.lock().unwrap() = false;
        self.opened.notify_all();
    }

    /// Blocks while armed; the first call to arrive disarms it for the calls after it (one
    /// call is held, the others pass).
    fn pass(&self) {
        let mut armed = self.armed.lock().unwrap();
        if !*armed {
            return;
        }
        if self
            .entered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            return; // one call is held already
        }
        // Bounded, so a broken test fails instead of hanging its process.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while *armed && std::time::Instant::now() < deadline {
            armed = self
                .opened
                .wait_timeout(armed, std::time::Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }

    async fn wait_entered(&self) {
        for _ in 0..3000 {
            if self.entered.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the token call never reached the gate");
    }
}

/// Opens the gate when dropped, so a failing assertion does not leave a token call blocked.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// The PKCS#11 custodian with test hooks: a connect can be held at a gate (a slow HSM), the
/// token can be "down" (connects fail as unreachable), and a key generation can be held
/// after the key is made in the token.
struct HookProvider {
    inner: Pkcs11Provider,
    connect_gate: Arc<Gate>,
    generate_gate: Arc<Gate>,
    down: std::sync::atomic::AtomicBool,
}

impl HookProvider {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Pkcs11Provider::new(),
            connect_gate: Arc::default(),
            generate_gate: Arc::default(),
            down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }
}

impl HsmProvider for HookProvider {
    fn connect(
        &self,
        location: &HsmTokenLocation,
        pin: &str,
    ) -> Result<Arc<dyn trent_crypto::custody::HsmConnection>, trent_crypto::custody::HsmConnectError>
    {
        self.connect_gate.pass();
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(trent_crypto::custody::HsmConnectError::Network(
                "test: token down".into(),
            ));
        }
        let inner = self.inner.connect(location, pin)?;
        Ok(Arc::new(HookConnection {
            inner,
            generate_gate: self.generate_gate.clone(),
        }))
    }
}

struct HookConnection {
    inner: Arc<dyn trent_crypto::custody::HsmConnection>,
    generate_gate: Arc<Gate>,
}

impl trent_crypto::custody::HsmConnection for HookConnection {
    fn generate_aes_key(
        &self,
        label: &str,
    ) -> Result<Arc<dyn trent_crypto::custody::SymmetricCustody>, trent_crypto::custody::CustodyError>
    {
        let made = self.inner.generate_aes_key(label);
        // Held after the key exists in the token: what follows decides whether it stays.
        self.generate_gate.pass();
        made
    }

    fn find_aes_key(
        &self,
        label: &str,
    ) -> Result<
        Option<Arc<dyn trent_crypto::custody::SymmetricCustody>>,
        trent_crypto::custody::CustodyError,
    > {
        self.inner.find_aes_key(label)
    }

    fn destroy_aes_key(&self, label: &str) -> Result<bool, trent_crypto::custody::CustodyError> {
        self.inner.destroy_aes_key(label)
    }

    fn random(
        &self,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, trent_crypto::custody::CustodyError> {
        self.inner.random(len)
    }

    fn close(&self) {
        self.inner.close();
    }
}

/// The built-in root key, with its wraps made to fail on request (an injected failure).
struct FailingRoot {
    inner: trent_crypto::RootKey,
    fail_wraps: std::sync::atomic::AtomicBool,
}

impl trent_crypto::custody::RootCustodian for FailingRoot {
    fn wrap(&self, secret: &[u8], aad: &[u8]) -> Result<Vec<u8>, trent_crypto::RootKeyError> {
        if self.fail_wraps.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(trent_crypto::RootKeyError::Custodian(
                "test: injected wrap failure".into(),
            ));
        }
        self.inner.wrap(secret, aad)
    }

    fn unwrap(
        &self,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, trent_crypto::RootKeyError> {
        self.inner.unwrap(wrapped, aad)
    }

    fn derive_subkey(
        &self,
        label: &str,
    ) -> Result<trent_crypto::SymmetricKey, trent_crypto::RootKeyError> {
        self.inner.derive_subkey(label)
    }
}

/// The secret keys in the test token, through a session of the test's own.
fn token_keys(label: &str) -> Vec<String> {
    trent_custody_pkcs11::test_token::secret_key_labels(&softhsm_module().unwrap(), label, TEST_PIN)
        .unwrap()
}

async fn env_with_provider(label: &str, provider: Arc<HookProvider>) -> Env {
    let mut env = env().await;
    env.kms = env.kms.with_hsm_clusters(clusters(label), provider);
    env
}

/// Issue 13 review: ConnectCustomKeyStore does its token work (module, login) without the
/// service's write lock. While a connect is held inside the token, an unrelated CreateAlias
/// completes, DescribeCustomKeyStores shows CONNECTING, DeleteCustomKeyStore is refused, and
/// a DisconnectCustomKeyStore is accepted and wins: the late connect leaves the store
/// DISCONNECTED (AWS: disconnecting a CONNECTING store cancels the connect).
#[test]
fn a_connect_in_the_token_blocks_no_other_write_and_a_disconnect_during_it_wins() {
    run_with_token(
        "a_connect_in_the_token_blocks_no_other_write_and_a_disconnect_during_it_wins",
        "trent-cks-slow-connect",
        |label| {
            block_on(async {
                let hook = HookProvider::new();
                let env = env_with_provider(label, hook.clone()).await;
                let id = env
                    .kms
                    .create_custom_key_store(&env.root, create_input("slow", CLUSTER, TEST_PIN))
                    .await
                    .unwrap();
                let unrelated = create_key(&env, None).await;
                let Env { kms, root, .. } = env;
                let kms = Arc::new(kms);
                let _open = OpenOnDrop(hook.connect_gate.clone());

                hook.connect_gate.arm();
                let connecting = tokio::spawn({
                    let (kms, root, id) = (kms.clone(), root.clone(), id.clone());
                    async move { kms.connect_custom_key_store(&root, &id).await }
                });
                hook.connect_gate.wait_entered().await;

                let describe = |kms: Arc<trent_core::Kms>, root: Caller, id: String| async move {
                    let list = kms
                        .describe_custom_key_stores(&root, Some(&id), None, None, None)
                        .await
                        .unwrap();
                    list.custom_key_stores[0].connection_state.clone()
                };
                assert_eq!(
                    describe(kms.clone(), root.clone(), id.clone()).await,
                    "CONNECTING"
                );
                // Another write is not held behind the token (the deadline only turns a
                // deadlock into a failure).
                tokio::time::timeout(
                    std::time::Duration::from_secs(30),
                    kms.create_alias(
                        &root,
                        Some("alias/while-connecting"),
                        Some(&unrelated.key_id),
                    ),
                )
                .await
                .expect("CreateAlias waited for the token connect")
                .unwrap();
                assert!(matches!(
                    kms.delete_custom_key_store(&root, &id).await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));
                tokio::time::timeout(
                    std::time::Duration::from_secs(30),
                    kms.disconnect_custom_key_store(&root, &id),
                )
                .await
                .expect("DisconnectCustomKeyStore waited for the token connect")
                .unwrap();

                hook.connect_gate.open();
                connecting.await.unwrap().unwrap();
                assert_eq!(
                    describe(kms.clone(), root.clone(), id.clone()).await,
                    "DISCONNECTED"
                );
                assert!(matches!(
                    kms.generate_random(&root, Some(8), Some(&id), false).await,
                    Err(KmsError::CustomKeyStoreInvalidState(_))
                ));

                // Not held: an ordinary connect now.
                kms.connect_custom_key_store(&root, &id).await.unwrap();
                assert_eq!(
                    describe(kms.clone(), root.clone(), id.clone()).await,
                    "CONNECTED"
                );
                assert_eq!(
                    kms.generate_random(&root, Some(8), Some(&id), false)
                        .await
                        .unwrap()
                        .len(),
                    8
                );
                kms.disconnect_custom_key_store(&root, &id).await.unwrap();
            })
        },
    );
}

/// Issue 13 review: a CloudHSM key's token key is generated without the write lock and
/// never left behind when the KMS key is not created: while one CreateKey is held after its
/// key was made in the token, another CreateKey completes (not blocked) and fills the
/// store's quota (2), so the held one fails its check under the lock with
/// LimitExceededException and its token key is destroyed; and a root wrap that fails leaves
/// nothing in the token.
#[test]
fn a_create_key_that_fails_after_the_token_leaves_no_token_key() {
    run_with_token(
        "a_create_key_that_fails_after_the_token_leaves_no_token_key",
        "trent-cks-orphans",
        |label| {
            block_on(async {
                let hook = HookProvider::new();
                let root_key = Arc::new(FailingRoot {
                    inner: trent_crypto::RootKey::from_bytes(&[7; 32]).unwrap(),
                    fail_wraps: std::sync::atomic::AtomicBool::new(false),
                });
                let store = Arc::new(trent_core::memory_store::MemoryStore::new());
                let clock = Arc::new(TestClock::new(START_MS));
                let kms = trent_core::Kms::open_with_custodian(
                    store.clone(),
                    root_key.clone(),
                    clock.clone(),
                )
                .await
                .unwrap()
                .with_hsm_clusters(clusters(label), hook.clone());
                kms.ensure_account(ACCOUNT, ROOT_ACCESS_KEY, "root-secret-of-the-first-account")
                    .await
                    .unwrap();
                let root = Caller::root(ACCOUNT, ROOT_ACCESS_KEY, REGION);
                let id = kms
                    .create_custom_key_store(&root, create_input("orphans", CLUSTER, TEST_PIN))
                    .await
                    .unwrap();
                kms.connect_custom_key_store(&root, &id).await.unwrap();
                let first = kms
                    .create_key(&root, store_key_input(Some(&id)))
                    .await
                    .unwrap();
                assert_eq!(token_keys(label), vec![first.key_id.clone()]);

                // The root wrap of the key's reference fails: nothing was made in the token.
                root_key
                    .fail_wraps
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                assert!(
                    kms.create_key(&root, store_key_input(Some(&id)))
                        .await
                        .is_err()
                );
                root_key
                    .fail_wraps
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                assert_eq!(token_keys(label), vec![first.key_id.clone()]);

                // Two CreateKeys race for the last place in the store.
                let kms = Arc::new(kms);
                let _open = OpenOnDrop(hook.generate_gate.clone());
                hook.generate_gate.arm();
                let held = tokio::spawn({
                    let (kms, root, id) = (kms.clone(), root.clone(), id.clone());
                    async move { kms.create_key(&root, store_key_input(Some(&id))).await }
                });
                hook.generate_gate.wait_entered().await;
                assert_eq!(token_keys(label).len(), 2, "the held key is in the token");
                let second = tokio::time::timeout(
                    std::time::Duration::from_secs(30),
                    kms.create_key(&root, store_key_input(Some(&id))),
                )
                .await
                .expect("CreateKey waited for another CreateKey's token call")
                .unwrap();
                hook.generate_gate.open();
                assert!(matches!(
                    held.await.unwrap(),
                    Err(KmsError::LimitExceeded(_))
                ));
                let mut want = vec![first.key_id.clone(), second.key_id.clone()];
                want.sort();
                assert_eq!(
                    token_keys(label),
                    want,
                    "the refused key's token key is gone"
                );
                assert_eq!(store.custom_key_store_keys(&id).await.unwrap().len(), 2);
                kms.disconnect_custom_key_store(&root, &id).await.unwrap();
            })
        },
    );
}

/// Issue 13 review: a key loaded while its store (persisted CONNECTED) could not open its
/// token reads Unavailable; once the token is reachable again it recovers without a
/// disconnect and reconnect: the token is tried again `TOKEN_RETRY_MS` later (not by
/// every request before that), and the key's cached Unavailable copy is dropped.
#[test]
fn a_key_unavailable_while_its_token_was_down_recovers_when_it_is_back() {
    run_with_token(
        "a_key_unavailable_while_its_token_was_down_recovers_when_it_is_back",
        "trent-cks-token-down",
        |label| {
            block_on(async {
                let hook = HookProvider::new();
                let env = env_with_provider(label, hook.clone()).await;
                let id = env
                    .kms
                    .create_custom_key_store(&env.root, create_input("down", CLUSTER, TEST_PIN))
                    .await
                    .unwrap();
                env.kms
                    .connect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
                let key = env
                    .kms
                    .create_key(&env.root, store_key_input(Some(&id)))
                    .await
                    .unwrap();
                let ctx = context(&[("k", "v")]);
                let sealed = encrypt(&env.kms, &env.root, &key.key_id, ctx.clone())
                    .await
                    .unwrap();

                // A restarted node, while the token is down.
                hook.set_down(true);
                let node = common::open(&env.store, &env.clock)
                    .await
                    .with_hsm_clusters(clusters(label), hook.clone());
                let state_on = async |kms: &trent_core::Kms| {
                    kms.describe_key(&env.root, Some(&key.key_id), &[])
                        .await
                        .unwrap()
                        .effective_state()
                };
                assert_eq!(state_on(&node).await, KeyState::Unavailable);
                assert!(matches!(
                    decrypt(&node, &env.root, &sealed.ciphertext_blob, ctx.clone()).await,
                    Err(KmsError::InvalidState(_))
                ));

                // Back; within the retry interval the node does not try again yet.
                hook.set_down(false);
                assert_eq!(state_on(&node).await, KeyState::Unavailable);
                env.clock
                    .advance(trent_core::custom_key_stores::TOKEN_RETRY_MS);
                assert_eq!(state_on(&node).await, KeyState::Enabled);
                assert_eq!(
                    decrypt(&node, &env.root, &sealed.ciphertext_blob, ctx.clone())
                        .await
                        .unwrap()
                        .plaintext
                        .as_slice(),
                    b"attack at dawn"
                );
                node.disconnect_custom_key_store(&env.root, &id)
                    .await
                    .unwrap();
            })
        },
    );
}
