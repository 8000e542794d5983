//! EXTERNAL_KEY_STORE custom key stores in the domain (`trent_core::external_key_stores`)
//! over a MemoryStore, reaching a real `trent xks-proxy` on loopback TLS through this crate's
//! custodian: create (validation, the health check's errors, uniqueness), describe, connect
//! (CONNECTED; FAILED with the spec's codes), the secret kept only root-wrapped.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use trent_core::custom_key_stores::CreateCustomKeyStoreInput;
use trent_core::external_key_stores::{XksCredentialInput, XksStoreInput};
use trent_core::memory_store::MemoryStore;
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
    let store = Arc::new(MemoryStore::new());
    let dyn_store: Arc<dyn Store> = store.clone();
    let kms = Kms::open(
        dyn_store,
        RootKey::from_bytes(&[7u8; 32]).unwrap(),
        Arc::new(SystemClock::default()),
    )
    .await
    .unwrap();
    kms.ensure_account(ACCOUNT, "AKIAROOTROOTROOT0001", "root-secret")
        .await
        .unwrap();
    let settings =
        ClientSettings::new(Some(&fixture("ca.pem")), Duration::from_secs(5), Some(port)).unwrap();
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
