//! EXTERNAL_KEY_STORE custom key stores in the domain (`trent_core::external_key_stores`)
//! over a MemoryStore, reaching a real `trent xks-proxy` on loopback TLS through this crate's
//! custodian: create (validation, the health check's errors, uniqueness), describe, connect
//! (CONNECTED; FAILED with the spec's codes), the secret kept only root-wrapped; the
//! endpoint allowlist (SSRF guard), UpdateCustomKeyStore of the `XksProxy*` parameters, the
//! periodic health check and the per-store request quota.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use trent_core::crypto::EncryptInput;
use trent_core::custom_key_stores::{CreateCustomKeyStoreInput, UpdateCustomKeyStoreInput};
use trent_core::external_key_stores::{XksCredentialInput, XksStoreInput};
use trent_core::keys::CreateKeyInput;
use trent_core::memory_store::MemoryStore;
use trent_core::quotas::{QuotaSettings, Rate, RateQuota};
use trent_core::{Caller, Kms, KmsError, Store, SystemClock};
use trent_crypto::RootKey;
use trent_custody_xks::ClientSettings;
use trent_custody_xks::custody::XksClientProvider;
use trent_custody_xks::keys;
use trent_custody_xks::proxy::{Credential, Proxy, ProxyConfig};
use zeroize::Zeroizing;

const AKID: &str = "AKIAXKSPROXYTESTKEY2345";
const SECRET: &str = "K7gm0U1p5fKZC7mXxSV9o8bR8T2wXQ0hZ7R7mNn4gXs=";
const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn start_proxy(dir: &std::path::Path) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let config = ProxyConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_owned(),
        tls_cert: Some(fixture("server.pem")),
        tls_key: Some(fixture("server.key")),
        region: REGION.into(),
        uri_path_prefix: String::new(),
        pkcs11: None,
        credentials: vec![Credential {
            access_key_id: AKID.into(),
            secret_access_key: Zeroizing::new(SECRET.into()),
        }],
    };
    keys::create_key(
        &config.keys_file(),
        "key-1",
        &["ENCRYPT".into(), "DECRYPT".into()],
        true,
    )
    .unwrap();
    let (listener, addr) = trent_custody_xks::proxy::bind(&config).await.unwrap();
    let proxy = Proxy::new(config).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(proxy.serve(listener, async {
        let _ = stopped.await;
    }));
    (addr.port(), stop)
}

async fn kms(port: u16) -> (Kms, Arc<MemoryStore>, Caller) {
    kms_with(port, &["localhost"], QuotaSettings::default()).await
}

async fn kms_with(
    port: u16,
    allowed: &[&str],
    quotas: QuotaSettings,
) -> (Kms, Arc<MemoryStore>, Caller) {
    let store = Arc::new(MemoryStore::new());
    let dyn_store: Arc<dyn Store> = store.clone();
    let kms = Kms::open(
        dyn_store,
        RootKey::from_bytes(&[7u8; 32]).unwrap(),
        Arc::new(SystemClock::default()),
    )
    .await
    .unwrap()
    .with_quotas(quotas);
    kms.ensure_account(ACCOUNT, "AKIAROOTROOTROOT0001", "root-secret")
        .await
        .unwrap();
    // The proxy is on loopback: allowed explicitly (the default refuses it).
    let settings =
        ClientSettings::new(Some(&fixture("ca.pem")), Duration::from_secs(5), Some(port))
            .unwrap()
            .allow_hosts(allowed.iter().map(|h| h.to_string()));
    let kms = kms.with_xks_provider(Arc::new(XksClientProvider::new(settings)));
    (
        kms,
        store,
        Caller::root(ACCOUNT, "AKIAROOTROOTROOT0001", REGION),
    )
}

fn input(name: &str, path: &str, secret: &str) -> CreateCustomKeyStoreInput {
    CreateCustomKeyStoreInput {
        custom_key_store_name: name.into(),
        custom_key_store_type: Some("EXTERNAL_KEY_STORE".into()),
        xks_parameters: true,
        xks: XksStoreInput {
            uri_endpoint: Some("https://localhost".into()),
            uri_path: Some(path.into()),
            connectivity: Some("PUBLIC_ENDPOINT".into()),
            credential: Some(XksCredentialInput {
                access_key_id: Some(AKID.into()),
                raw_secret_access_key: Some(Zeroizing::new(secret.into())),
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn state(kms: &Kms, root: &Caller, id: &str) -> (String, Option<String>) {
    let list = kms
        .describe_custom_key_stores(root, Some(id), None, None, None)
        .await
        .unwrap();
    let e = &list.custom_key_stores[0];
    (e.connection_state.clone(), e.connection_error_code.clone())
}

fn code(e: KmsError) -> &'static str {
    match e {
        KmsError::ExternalKeyStore { code, .. } => code,
        KmsError::Validation(_) => "ValidationException",
        KmsError::CustomKeyStoreNameInUse(_) => "CustomKeyStoreNameInUseException",
        KmsError::CustomKeyStoreInvalidState(_) => "CustomKeyStoreInvalidStateException",
        KmsError::Throttling(_) => "ThrottlingException",
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn create_describe_connect() {
    let dir = tempfile::tempdir().unwrap();
    let (port, stop) = start_proxy(dir.path()).await;
    let (kms, store, root) = kms(port).await;

    let bad = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let e = kms
        .create_custom_key_store(&root, input("s", "/kms/xks/v1", bad))
        .await
        .unwrap_err();
    assert_eq!(
        code(e),
        "XksProxyIncorrectAuthenticationCredentialException"
    );
    let e = kms
        .create_custom_key_store(&root, input("s", "/x/kms/xks/v1", SECRET))
        .await
        .unwrap_err();
    assert_eq!(code(e), "XksProxyInvalidConfigurationException");
    let e = kms
        .create_custom_key_store(&root, input("s", "/kms/xks/v1/", SECRET))
        .await
        .unwrap_err();
    assert_eq!(code(e), "ValidationException");

    let id = kms
        .create_custom_key_store(&root, input("s", "/kms/xks/v1", SECRET))
        .await
        .unwrap();
    let e = kms
        .create_custom_key_store(&root, input("t", "/kms/xks/v1", SECRET))
        .await
        .unwrap_err();
    assert_eq!(code(e), "XksProxyUriInUseException");

    let list = kms
        .describe_custom_key_stores(&root, Some(&id), None, None, None)
        .await
        .unwrap();
    let entry = &list.custom_key_stores[0];
    assert_eq!(entry.custom_key_store_type, "EXTERNAL_KEY_STORE");
    assert_eq!(entry.connection_state, "DISCONNECTED");
    assert_eq!(entry.trust_anchor_certificate, "");
    let config = entry.xks_proxy_configuration.clone().unwrap();
    assert_eq!(config.access_key_id, AKID);
    assert_eq!(config.uri_path, "/kms/xks/v1");

    // The secret is stored only wrapped.
    let rows = store.custom_key_stores(ACCOUNT, REGION).await.unwrap();
    let row = rows.iter().find(|r| r.id == id).unwrap();
    assert!(!format!("{row:?}").contains(SECRET));
    assert!(!row.trust_anchor_certificate.contains(SECRET));
    assert!(
        !row.wrapped_password
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes())
    );

    kms.connect_custom_key_store(&root, &id).await.unwrap();
    assert_eq!(state(&kms, &root, &id).await, ("CONNECTED".into(), None));
    kms.disconnect_custom_key_store(&root, &id).await.unwrap();

    // The proxy gone: FAILED, XKS_PROXY_NOT_REACHABLE.
    drop(stop);
    tokio::time::sleep(Duration::from_millis(50)).await;
    kms.connect_custom_key_store(&root, &id).await.unwrap();
    assert_eq!(
        state(&kms, &root, &id).await,
        ("FAILED".into(), Some("XKS_PROXY_NOT_REACHABLE".into()))
    );
    kms.disconnect_custom_key_store(&root, &id).await.unwrap();
    kms.delete_custom_key_store(&root, &id).await.unwrap();
}

fn update(id: &str, xks: XksStoreInput) -> UpdateCustomKeyStoreInput {
    UpdateCustomKeyStoreInput {
        custom_key_store_id: id.into(),
        xks_parameters: true,
        xks,
        ..Default::default()
    }
}

fn credential(akid: &str, secret: Option<&str>) -> Option<XksCredentialInput> {
    Some(XksCredentialInput {
        access_key_id: Some(akid.into()),
        raw_secret_access_key: secret.map(|s| Zeroizing::new(s.into())),
    })
}

#[tokio::test]
async fn endpoints_refused_unless_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (port, _stop) = start_proxy(dir.path()).await;
    // Nothing listed: loopback, private and metadata endpoints are refused before any call.
    let (kms, _, root) = kms_with(port, &[], QuotaSettings::default()).await;
    for endpoint in [
        "https://localhost",
        "https://127.0.0.1",
        "https://10.1.2.3",
        "https://169.254.169.254",
    ] {
        let mut i = input("s", "/kms/xks/v1", SECRET);
        i.xks.uri_endpoint = Some(endpoint.into());
        let e = kms.create_custom_key_store(&root, i).await.unwrap_err();
        assert_eq!(
            code(e),
            "XksProxyInvalidConfigurationException",
            "{endpoint}"
        );
    }
    // A name that resolves to loopback is refused at connection time, just as well.
    let mut i = input("s", "/kms/xks/v1", SECRET);
    i.xks.uri_endpoint = Some("https://localtest.me".into());
    if tokio::net::lookup_host(("localtest.me", 443)).await.is_ok() {
        let e = kms.create_custom_key_store(&root, i).await.unwrap_err();
        assert_eq!(code(e), "XksProxyInvalidConfigurationException");
    }

    // Listed: the same proxy is accepted.
    let (kms, _, root) = kms_with(port, &["localhost"], QuotaSettings::default()).await;
    kms.create_custom_key_store(&root, input("s", "/kms/xks/v1", SECRET))
        .await
        .unwrap();
}

async fn xks_config(
    kms: &Kms,
    root: &Caller,
    id: &str,
) -> trent_core::external_key_stores::XksProxyConfiguration {
    kms.describe_custom_key_stores(root, Some(id), None, None, None)
        .await
        .unwrap()
        .custom_key_stores[0]
        .xks_proxy_configuration
        .clone()
        .unwrap()
}

#[tokio::test]
async fn update_health_check_and_quota() {
    let dir = tempfile::tempdir().unwrap();
    let (port, stop) = start_proxy(dir.path()).await;
    let quotas = QuotaSettings {
        // A day-long window: three proxy calls, then ThrottlingException.
        rate_overrides: vec![(
            RateQuota::CustomKeyStore,
            Rate {
                count: 3,
                period_secs: 86_400,
            },
        )],
        ..QuotaSettings::default()
    };
    let (kms, _, root) = kms_with(port, &["localhost"], quotas).await;
    let id = kms
        .create_custom_key_store(&root, input("s", "/kms/xks/v1", SECRET))
        .await
        .unwrap();
    // Each change is checked against the proxy before it is written.
    let bad_secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let e = kms
        .update_custom_key_store(
            &root,
            update(
                &id,
                XksStoreInput {
                    credential: credential("AKIAOTHERKEY22334455", Some(bad_secret)),
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        code(e),
        "XksProxyIncorrectAuthenticationCredentialException"
    );
    let e = kms
        .update_custom_key_store(
            &root,
            update(
                &id,
                XksStoreInput {
                    uri_path: Some("/other/kms/xks/v1".into()),
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), "XksProxyInvalidConfigurationException");
    let e = kms
        .update_custom_key_store(
            &root,
            update(
                &id,
                XksStoreInput {
                    uri_endpoint: Some("https://10.0.0.1".into()),
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), "XksProxyInvalidConfigurationException");
    // Both halves of the credential, validated before anything else.
    let e = kms
        .update_custom_key_store(
            &root,
            update(
                &id,
                XksStoreInput {
                    credential: credential(AKID, None),
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), "ValidationException");
    let e = kms
        .update_custom_key_store(
            &root,
            update(
                &id,
                XksStoreInput {
                    connectivity: Some("VPC_ENDPOINT_SERVICE".into()),
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), "XksProxyVpcEndpointServiceNotFoundException");
    assert_eq!(xks_config(&kms, &root, &id).await.uri_path, "/kms/xks/v1");

    // CONNECTED: the endpoint and connectivity need a disconnect; the credential (and the
    // name, and the path) do not.
    kms.connect_custom_key_store(&root, &id).await.unwrap();
    assert_eq!(state(&kms, &root, &id).await, ("CONNECTED".into(), None));
    for xks in [
        XksStoreInput {
            uri_endpoint: Some("https://localhost".into()),
            ..Default::default()
        },
        XksStoreInput {
            connectivity: Some("PUBLIC_ENDPOINT".into()),
            ..Default::default()
        },
    ] {
        let e = kms
            .update_custom_key_store(&root, update(&id, xks))
            .await
            .unwrap_err();
        assert_eq!(code(e), "CustomKeyStoreInvalidStateException");
    }
    let e = kms
        .update_custom_key_store(
            &root,
            update(
                &id,
                XksStoreInput {
                    uri_path: Some("/other/kms/xks/v1".into()),
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        code(e),
        "XksProxyInvalidConfigurationException",
        "allowed, then refused by the proxy"
    );
    let mut renamed = update(
        &id,
        XksStoreInput {
            credential: credential(AKID, Some(SECRET)),
            ..Default::default()
        },
    );
    renamed.new_custom_key_store_name = Some("renamed".into());
    kms.update_custom_key_store(&root, renamed).await.unwrap();
    assert_eq!(state(&kms, &root, &id).await, ("CONNECTED".into(), None));

    // The store's request quota: every proxy call of its keys counts, whoever calls.
    let key = kms
        .create_key(
            &root,
            CreateKeyInput {
                origin: Some("EXTERNAL_KEY_STORE".into()),
                custom_key_store_id: Some(id.clone()),
                xks_key_id: Some("key-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let encrypt = || EncryptInput {
        key_id: Some(key.key_id.clone()),
        plaintext: Some(Zeroizing::new(b"p".to_vec())),
        ..Default::default()
    };
    for _ in 0..3 {
        kms.encrypt(&root, encrypt()).await.unwrap();
    }
    let e = kms.encrypt(&root, encrypt()).await.err().unwrap();
    assert_eq!(code(e), "ThrottlingException");
    // Built-in keys are not counted against the store.
    let plain = kms
        .create_key(&root, CreateKeyInput::default())
        .await
        .unwrap();
    kms.encrypt(
        &root,
        EncryptInput {
            key_id: Some(plain.key_id.clone()),
            plaintext: Some(Zeroizing::new(b"p".to_vec())),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    // The periodic health check: healthy, then the proxy stopped. As AWS, the store stays
    // CONNECTED (its state says only that the last connect succeeded).
    let checked = kms.check_external_key_stores().await;
    assert_eq!(checked.len(), 1);
    assert_eq!(checked[0].1.error_code, None);
    drop(stop);
    tokio::time::sleep(Duration::from_millis(50)).await;
    kms.check_external_key_stores().await;
    assert_eq!(
        kms.xks_store_health(&id).unwrap().error_code,
        Some("XKS_PROXY_NOT_REACHABLE")
    );
    assert_eq!(state(&kms, &root, &id).await, ("CONNECTED".into(), None));
    // A disconnected store is not checked.
    kms.disconnect_custom_key_store(&root, &id).await.unwrap();
    assert!(kms.check_external_key_stores().await.is_empty());
}
