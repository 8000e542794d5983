//! AWS_CLOUDHSM-type custom key stores over MemoryStore, with a real SoftHSM2 token behind
//! the PKCS#11 custodian: create (cluster, trust anchor, name, quota checks), describe
//! (filters, paging), update and delete rules by connection state, connect with the right
//! and a wrong PIN, disconnect, GenerateRandom from the token, the service-linked role, and
//! the password kept only root-wrapped.

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
use trent_core::KmsError;
use trent_core::Store;
use trent_core::custom_key_stores::{
    CreateCustomKeyStoreInput, HsmCluster, UpdateCustomKeyStoreInput,
};
use trent_crypto::custody::HsmTokenLocation;
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
        },
        // Declared, but its token does not exist.
        HsmCluster {
            id: OTHER_CLUSTER.into(),
            token: HsmTokenLocation {
                module,
                token_label: "no-such-token".into(),
            },
            trust_anchor_certificate: ANCHOR.into(),
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

                // Keys in a store are not built yet: refused, never created outside it; an
                // unknown store is not found.
                let in_store = trent_core::keys::CreateKeyInput {
                    custom_key_store_id: Some(id.clone()),
                    origin: Some("AWS_CLOUDHSM".into()),
                    ..Default::default()
                };
                assert!(matches!(
                    env.kms.create_key(&env.root, in_store).await,
                    Err(KmsError::UnsupportedOperation(_))
                ));
                let unknown = trent_core::keys::CreateKeyInput {
                    custom_key_store_id: Some("cks-00000000000000000".into()),
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
