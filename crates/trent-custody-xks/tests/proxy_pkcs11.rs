//! The proxy over its PKCS#11 backend (a private SoftHSM2 token), driven by the XKS client
//! over HTTPS on loopback: GetHealthStatus from the token, GetKeyMetadata from key
//! attributes, AES-GCM in the token with the spec's AAD, and the spec's error for a missing
//! key, a key without encrypt/decrypt, a disabled or non-AES-256 key, wrong-length IV and tag,
//! tampered ciphertext / AAD / metadata, and a wrong SigV4 secret.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when the module initializes, so each test re-runs itself in
//! a child process with a fresh token (`trent_custody_pkcs11::test_token::run_with_token`).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::PathBuf;
use std::time::Duration;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use trent_custody_pkcs11::test_token::{TEST_PIN, run_with_token, softhsm_module};
use trent_custody_xks::pkcs11::{Pkcs11Config, admin, open_session};
use trent_custody_xks::proxy::{Credential, Proxy, ProxyConfig};
use trent_custody_xks::wire::RequestMetadata;
use trent_custody_xks::{ClientSettings, ProxyErrorName, ProxyTarget, XksClient, XksError};
use zeroize::Zeroizing;

const AKID: &str = "AKIAXKSPROXYTESTKEY2345";
const SECRET: &str = "K7gm0U1p5fKZC7mXxSV9o8bR8T2wXQ0hZ7R7mNn4gXs=";
const REGION: &str = "us-east-1";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn meta(operation: &str) -> RequestMetadata {
    RequestMetadata {
        aws_principal_arn: Some("arn:aws:iam::111122223333:user/alice".into()),
        kms_key_arn: Some(
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        ),
        kms_operation: Some(operation.into()),
        kms_request_id: Some(uuid::Uuid::new_v4().to_string()),
        ..Default::default()
    }
}

fn proxy_error(result: Result<impl std::fmt::Debug, XksError>) -> ProxyErrorName {
    match result {
        Err(XksError::Proxy { name, .. }) => name,
        other => panic!("expected a proxy error, got {other:?}"),
    }
}

fn client(port: u16, secret: &str) -> XksClient {
    // Loopback: allowed explicitly (the client refuses it by default).
    let settings =
        ClientSettings::new(Some(&fixture("ca.pem")), Duration::from_secs(5), Some(port))
            .unwrap()
            .allow_hosts(["localhost".to_string()]);
    XksClient::new(
        &settings,
        ProxyTarget {
            uri_endpoint: "https://localhost".into(),
            uri_path: "/kms/xks/v1".into(),
            access_key_id: AKID.into(),
            secret_access_key: Zeroizing::new(secret.into()),
            region: REGION.into(),
        },
    )
    .unwrap()
}

/// The token's keys: `key-1` (AES-256, encrypt+decrypt), `encrypt-only`, `disabled`
/// (neither flag), `aes-128` (a 16-byte AES key with both flags).
fn make_keys(token: &Pkcs11Config) {
    let both = ["ENCRYPT".to_string(), "DECRYPT".to_string()];
    admin::create_key(token, "key-1", &both).unwrap();
    admin::create_key(token, "encrypt-only", &both[..1]).unwrap();
    admin::create_key(token, "disabled", &both).unwrap();
    admin::set_enabled(token, "disabled", false).unwrap();
    assert!(
        admin::create_key(token, "key-1", &both).is_err(),
        "labels are unique"
    );
    let (session, _) = open_session(token).unwrap();
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Token(true),
                Attribute::Label(b"aes-128".to_vec()),
                Attribute::ValueLen(16.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
}

/// Runs `body(port, token)` against a proxy over the child's token.
fn with_proxy<F, Fut>(label: &str, body: F)
where
    F: FnOnce(u16, Pkcs11Config) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("ekm.pin");
    std::fs::write(&pin_file, format!("{TEST_PIN}\n")).unwrap();
    let token = Pkcs11Config {
        module: softhsm_module().unwrap(),
        token_label: label.into(),
        pin_file: Some(pin_file),
    };
    make_keys(&token);
    let config = ProxyConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: PathBuf::new(),
        pkcs11: Some(token.clone()),
        tls_cert: Some(fixture("server.pem")),
        tls_key: Some(fixture("server.key")),
        region: REGION.into(),
        uri_path_prefix: String::new(),
        credentials: vec![Credential {
            access_key_id: AKID.into(),
            secret_access_key: Zeroizing::new(SECRET.into()),
        }],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (listener, addr) = trent_custody_xks::proxy::bind(&config).await.unwrap();
        let proxy = Proxy::new(config).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(proxy.serve(listener, async {
            let _ = stopped.await;
        }));
        body(addr.port(), token).await;
        drop(stop);
    });
}

#[test]
fn pkcs11_health_metadata_round_trip() {
    run_with_token("pkcs11_health_metadata_round_trip", "xks-ekm-1", |label| {
        with_proxy(label, |port, _| async move {
            let c = client(port, SECRET);
            let health = c.get_health_status(meta("KmsHealthCheck")).await.unwrap();
            assert_eq!(health.xks_proxy_fleet_size, 1);
            let ekm = health.ekm_fleet_details.first().unwrap();
            assert_eq!(ekm.health_status, "ACTIVE");
            // Reported from C_GetTokenInfo.
            assert!(
                health.ekm_vendor.contains("SoftHSM"),
                "{}",
                health.ekm_vendor
            );
            assert!(ekm.id.starts_with("xks-ekm-1"), "{}", ekm.id);

            let m = c
                .get_key_metadata("key-1", meta("CreateKey"))
                .await
                .unwrap();
            assert_eq!(m.key_spec, "AES_256");
            assert_eq!(m.key_usage, ["ENCRYPT", "DECRYPT"]);
            assert_eq!(m.key_status, "ENABLED");
            assert!(m.usable_by_kms());
            let m = c
                .get_key_metadata("encrypt-only", meta("CreateKey"))
                .await
                .unwrap();
            assert_eq!(m.key_usage, ["ENCRYPT"]);
            assert!(!m.usable_by_kms());
            let m = c
                .get_key_metadata("disabled", meta("CreateKey"))
                .await
                .unwrap();
            assert_eq!((m.key_status.as_str(), m.key_usage.len()), ("DISABLED", 0));
            let m = c
                .get_key_metadata("aes-128", meta("CreateKey"))
                .await
                .unwrap();
            assert_eq!(m.key_spec, "AES_128");
            assert!(!m.usable_by_kms());
            let err = c
                .get_key_metadata("no-such-key", meta("CreateKey"))
                .await
                .unwrap_err();
            assert_eq!(err.for_create_key().code, "XksKeyNotFoundException");

            // The spec's minimum sizes: 4300 bytes of plaintext, 8192 of AAD.
            let plaintext = vec![0x5au8; 4300];
            let aad = vec![0xa5u8; 8192];
            let sealed = c
                .encrypt("key-1", meta("Encrypt"), &plaintext, Some(&aad))
                .await
                .unwrap();
            assert_eq!(sealed.ciphertext.len(), plaintext.len());
            assert_ne!(sealed.ciphertext, plaintext);
            assert_eq!(sealed.initialization_vector.len(), 12);
            assert_eq!(sealed.authentication_tag.len(), 16);
            let opened = c
                .decrypt("key-1", meta("Decrypt"), &sealed, Some(&aad))
                .await
                .unwrap();
            assert_eq!(opened.as_slice(), plaintext.as_slice());
            let sealed = c
                .encrypt("key-1", meta("Encrypt"), b"no aad", None)
                .await
                .unwrap();
            let opened = c
                .decrypt("key-1", meta("Decrypt"), &sealed, None)
                .await
                .unwrap();
            assert_eq!(opened.as_slice(), b"no aad");
        });
    });
}

#[test]
fn pkcs11_errors() {
    run_with_token("pkcs11_errors", "xks-ekm-2", |label| {
        with_proxy(label, |port, token| async move {
            let c = client(port, SECRET);
            let sealed = c
                .encrypt(
                    "key-1",
                    meta("Encrypt"),
                    b"inner kms ciphertext",
                    Some(b"header"),
                )
                .await
                .unwrap();

            // Unknown key, disabled key, key without the usage, not an AES-256 key.
            let r = c.encrypt("no-such-key", meta("Encrypt"), b"x", None).await;
            assert_eq!(proxy_error(r), ProxyErrorName::KeyNotFoundException);
            let r = c.encrypt("disabled", meta("Encrypt"), b"x", None).await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidStateException);
            let r = c.encrypt("aes-128", meta("Encrypt"), b"x", None).await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidKeyUsageException);
            let only = c
                .encrypt("encrypt-only", meta("Encrypt"), b"x", None)
                .await
                .unwrap();
            let r = c
                .decrypt("encrypt-only", meta("Decrypt"), &only, None)
                .await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidKeyUsageException);

            // Tampering: ciphertext, AAD, metadata, tag; wrong-length IV and tag.
            let mut bad = sealed.clone();
            bad.ciphertext[0] ^= 1;
            let r = c
                .decrypt("key-1", meta("Decrypt"), &bad, Some(b"header"))
                .await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidCiphertextException);
            let r = c
                .decrypt("key-1", meta("Decrypt"), &sealed, Some(b"headex"))
                .await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidCiphertextException);
            let r = c.decrypt("key-1", meta("Decrypt"), &sealed, None).await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidCiphertextException);
            let mut bad = sealed.clone();
            bad.ciphertext_metadata = Some(b"trent-xks/2".to_vec());
            let r = c
                .decrypt("key-1", meta("Decrypt"), &bad, Some(b"header"))
                .await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidCiphertextException);
            let mut bad = sealed.clone();
            bad.authentication_tag[15] ^= 0x80;
            let err = c
                .decrypt("key-1", meta("Decrypt"), &bad, Some(b"header"))
                .await
                .unwrap_err();
            assert!(matches!(
                err,
                XksError::Proxy {
                    name: ProxyErrorName::InvalidCiphertextException,
                    ..
                }
            ));
            assert_eq!(err.for_crypto().code, "KMSInvalidStateException");
            let mut bad = sealed.clone();
            bad.initialization_vector.extend_from_slice(&[0; 4]);
            let r = c
                .decrypt("key-1", meta("Decrypt"), &bad, Some(b"header"))
                .await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidCiphertextException);
            let mut bad = sealed.clone();
            bad.authentication_tag.truncate(15);
            let r = c
                .decrypt("key-1", meta("Decrypt"), &bad, Some(b"header"))
                .await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidCiphertextException);
            // The untouched ciphertext still opens.
            let ok = c
                .decrypt("key-1", meta("Decrypt"), &sealed, Some(b"header"))
                .await;
            assert_eq!(ok.unwrap().as_slice(), b"inner kms ciphertext");

            // A wrong SigV4 secret.
            let wrong = client(port, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
            let r = wrong.get_health_status(meta("KmsHealthCheck")).await;
            assert_eq!(
                proxy_error(r),
                ProxyErrorName::AuthenticationFailedException
            );

            // The key disabled, enabled again, then destroyed in the token while the proxy
            // runs: each change is seen by the next request.
            admin::set_enabled(&token, "key-1", false).unwrap();
            let r = c
                .decrypt("key-1", meta("Decrypt"), &sealed, Some(b"header"))
                .await;
            assert_eq!(proxy_error(r), ProxyErrorName::InvalidStateException);
            admin::set_enabled(&token, "key-1", true).unwrap();
            c.decrypt("key-1", meta("Decrypt"), &sealed, Some(b"header"))
                .await
                .unwrap();
            admin::delete_key(&token, "key-1").unwrap();
            let r = c
                .decrypt("key-1", meta("Decrypt"), &sealed, Some(b"header"))
                .await;
            assert_eq!(proxy_error(r), ProxyErrorName::KeyNotFoundException);
        });
    });
}

/// The backend survives a token restart (the module finalized under it: every session gone,
/// so the next call answers `CKR_CRYPTOKI_NOT_INITIALIZED`): it reopens, logs in, makes the
/// health key again and retries. And enabling an encrypt-only key keeps it encrypt-only.
#[test]
fn pkcs11_reopens_after_token_restart_and_enable_keeps_usage() {
    use trent_custody_xks::backend::KeyBackend;
    use trent_custody_xks::pkcs11::Pkcs11Backend;
    run_with_token(
        "pkcs11_reopens_after_token_restart_and_enable_keeps_usage",
        "xks-ekm-3",
        |label| {
            let dir = tempfile::tempdir().unwrap();
            let pin_file = dir.path().join("ekm.pin");
            std::fs::write(&pin_file, format!("{TEST_PIN}\n")).unwrap();
            let token = Pkcs11Config {
                module: softhsm_module().unwrap(),
                token_label: label.into(),
                pin_file: Some(pin_file),
            };
            make_keys(&token);
            let backend = Pkcs11Backend::open(&token).unwrap();
            assert!(backend.health().active);
            let mut data = *b"before restart";
            let tag = backend.seal("key-1", [1; 12], b"aad", &mut data).unwrap();

            // The token "restarts": C_Finalize from another context of the same module.
            let other = cryptoki::context::Pkcs11::new(&token.module).unwrap();
            other.finalize().unwrap();

            let plain = backend.open("key-1", [1; 12], b"aad", &data, &tag).unwrap();
            assert_eq!(plain.as_slice(), b"before restart");
            assert!(backend.health().active);
            let mut more = *b"after restart";
            backend.seal("key-1", [2; 12], b"aad", &mut more).unwrap();

            // Disable and enable an encrypt-only key: still encrypt-only.
            admin::set_enabled(&token, "encrypt-only", false).unwrap();
            assert!(!backend.describe("encrypt-only").unwrap().enabled);
            admin::enable_key(&token, "encrypt-only", &["ENCRYPT".into()]).unwrap();
            let info = backend.describe("encrypt-only").unwrap();
            assert!(info.enabled);
            assert_eq!(info.usage, ["ENCRYPT"]);
            assert!(admin::enable_key(&token, "encrypt-only", &[]).is_err());
            assert!(admin::enable_key(&token, "encrypt-only", &["SIGN".into()]).is_err());

            // seal / open reuse the handle `describe` found; a key destroyed in between is
            // found again (not found), not an internal error on the stale handle.
            backend.describe("key-1").unwrap();
            admin::delete_key(&token, "key-1").unwrap();
            let mut gone = *b"destroyed";
            assert!(matches!(
                backend.seal("key-1", [3; 12], b"aad", &mut gone),
                Err(trent_custody_xks::backend::BackendError::NotFound)
            ));
        },
    );
}
