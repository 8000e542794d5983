//! The XKS client against the real proxy over HTTPS on loopback: every operation, SigV4
//! failures, unknown keys, key state and usage, tampering, TLS trust, unreachable and
//! unresponsive proxies, and the spec's request validation sent as raw signed requests.
//!
//! The TLS fixtures (`tests/fixtures`) are a test CA and a leaf for `localhost`/`127.0.0.1`
//! valid until 2126, plus an unrelated CA; they protect nothing.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use trent_custody_xks::keys;
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

struct Running {
    port: u16,
    keys_file: PathBuf,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_proxy(prefix: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let config = ProxyConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        tls_cert: Some(fixture("server.pem")),
        tls_key: Some(fixture("server.key")),
        region: REGION.into(),
        uri_path_prefix: prefix.into(),
        pkcs11: None,
        credentials: vec![Credential {
            access_key_id: AKID.into(),
            secret_access_key: Zeroizing::new(SECRET.into()),
        }],
    };
    let keys_file = config.keys_file();
    let both = ["ENCRYPT".to_string(), "DECRYPT".to_string()];
    keys::create_key(&keys_file, "key-1", &both, true).unwrap();
    keys::create_key(&keys_file, "encrypt-only", &both[..1], true).unwrap();
    keys::create_key(&keys_file, "disabled", &both, false).unwrap();
    let (listener, addr) = trent_custody_xks::proxy::bind(&config).await.unwrap();
    let proxy = Proxy::new(config).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(proxy.serve(listener, async {
        let _ = stopped.await;
    }));
    Running {
        port: addr.port(),
        keys_file,
        _dir: dir,
        _stop: stop,
    }
}

fn settings(port: u16, ca: &str) -> ClientSettings {
    // Loopback: allowed explicitly (the client refuses it by default).
    ClientSettings::new(Some(&fixture(ca)), Duration::from_secs(5), Some(port))
        .unwrap()
        .allow_hosts(["localhost".to_string(), "127.0.0.1".to_string()])
}

fn client_with(port: u16, path: &str, akid: &str, secret: &str) -> XksClient {
    XksClient::new(
        &settings(port, "ca.pem"),
        ProxyTarget {
            uri_endpoint: "https://localhost".into(),
            uri_path: path.into(),
            access_key_id: akid.into(),
            secret_access_key: Zeroizing::new(secret.into()),
            region: REGION.into(),
        },
    )
    .unwrap()
}

fn client(port: u16) -> XksClient {
    client_with(port, "/kms/xks/v1", AKID, SECRET)
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

#[tokio::test]
async fn health_metadata_and_round_trip() {
    let proxy = start_proxy("").await;
    let c = client(proxy.port);
    let health = c.get_health_status(meta("KmsHealthCheck")).await.unwrap();
    assert_eq!(health.xks_proxy_fleet_size, 1);
    assert_eq!(health.ekm_fleet_details.len(), 1);
    assert_eq!(
        health.ekm_fleet_details.first().unwrap().health_status,
        "ACTIVE"
    );

    let m = c
        .get_key_metadata("key-1", meta("CreateKey"))
        .await
        .unwrap();
    assert_eq!(m.key_spec, "AES_256");
    assert!(m.usable_by_kms());
    let m = c
        .get_key_metadata("encrypt-only", meta("CreateKey"))
        .await
        .unwrap();
    assert!(!m.usable_by_kms());
    let m = c
        .get_key_metadata("disabled", meta("CreateKey"))
        .await
        .unwrap();
    assert_eq!(m.key_status, "DISABLED");
    assert!(!m.usable_by_kms());

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
    assert!(sealed.ciphertext_metadata.as_ref().unwrap().len() <= 20);
    let opened = c
        .decrypt("key-1", meta("Decrypt"), &sealed, Some(&aad))
        .await
        .unwrap();
    assert_eq!(opened.as_slice(), plaintext.as_slice());

    // Without AAD, and pooled connections reused many times (timed for the record).
    let started = std::time::Instant::now();
    for i in 0..200u8 {
        let sealed = c
            .encrypt("key-1", meta("Encrypt"), &[i; 33], None)
            .await
            .unwrap();
        let opened = c
            .decrypt("key-1", meta("Decrypt"), &sealed, None)
            .await
            .unwrap();
        assert_eq!(opened.as_slice(), &[i; 33]);
    }
    eprintln!(
        "200 encrypt+decrypt pairs: {:?} per proxy call",
        started.elapsed() / 400
    );
}

#[tokio::test]
async fn tampering_is_invalid_ciphertext() {
    let proxy = start_proxy("").await;
    let c = client(proxy.port);
    let sealed = c
        .encrypt(
            "key-1",
            meta("Encrypt"),
            b"inner kms ciphertext",
            Some(b"header"),
        )
        .await
        .unwrap();

    let mut bad = sealed.clone();
    if let Some(b) = bad.ciphertext.first_mut() {
        *b ^= 1;
    }
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
    if let Some(b) = bad.authentication_tag.last_mut() {
        *b ^= 0x80;
    }
    let r = c
        .decrypt("key-1", meta("Decrypt"), &bad, Some(b"header"))
        .await;
    let err = r.unwrap_err();
    assert!(matches!(
        err,
        XksError::Proxy {
            name: ProxyErrorName::InvalidCiphertextException,
            ..
        }
    ));
    assert_eq!(err.for_crypto().code, "KMSInvalidStateException");

    let mut bad = sealed.clone();
    bad.initialization_vector.truncate(8);
    let r = c
        .decrypt("key-1", meta("Decrypt"), &bad, Some(b"header"))
        .await;
    assert_eq!(proxy_error(r), ProxyErrorName::InvalidCiphertextException);

    // Sealed under one key, opened under another.
    let r = c
        .decrypt("disabled", meta("Decrypt"), &sealed, Some(b"header"))
        .await;
    assert_eq!(proxy_error(r), ProxyErrorName::InvalidStateException);
}

#[tokio::test]
async fn unknown_keys_state_and_usage() {
    let proxy = start_proxy("").await;
    let c = client(proxy.port);
    let err = c
        .get_key_metadata("no-such-key", meta("CreateKey"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        XksError::Proxy {
            name: ProxyErrorName::KeyNotFoundException,
            ..
        }
    ));
    assert_eq!(err.for_create_key().code, "XksKeyNotFoundException");
    let r = c.encrypt("no-such-key", meta("Encrypt"), b"x", None).await;
    assert_eq!(proxy_error(r), ProxyErrorName::KeyNotFoundException);

    let r = c.encrypt("disabled", meta("Encrypt"), b"x", None).await;
    assert_eq!(proxy_error(r), ProxyErrorName::InvalidStateException);

    let sealed = c
        .encrypt("encrypt-only", meta("Encrypt"), b"x", None)
        .await
        .unwrap();
    let err = c
        .decrypt("encrypt-only", meta("Decrypt"), &sealed, None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        XksError::Proxy {
            name: ProxyErrorName::InvalidKeyUsageException,
            ..
        }
    ));
    assert_eq!(
        err.for_create_key().code,
        "XksKeyInvalidConfigurationException"
    );

    // A key added while the proxy runs is served without a restart.
    let r = c.get_key_metadata("later", meta("CreateKey")).await;
    assert_eq!(proxy_error(r), ProxyErrorName::KeyNotFoundException);
    // Filesystems with coarse timestamps: make sure the modification time moves.
    tokio::time::sleep(Duration::from_millis(20)).await;
    keys::create_key(
        &proxy.keys_file,
        "later",
        &["ENCRYPT".into(), "DECRYPT".into()],
        true,
    )
    .unwrap();
    let m = c
        .get_key_metadata("later", meta("CreateKey"))
        .await
        .unwrap();
    assert!(m.usable_by_kms());
}

#[tokio::test]
async fn authentication_failures() {
    let proxy = start_proxy("").await;
    let other_secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for c in [
        client_with(proxy.port, "/kms/xks/v1", AKID, other_secret),
        client_with(proxy.port, "/kms/xks/v1", "AKIAUNKNOWNKEY234567", SECRET),
    ] {
        let err = c
            .get_health_status(meta("KmsHealthCheck"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                XksError::Proxy {
                    name: ProxyErrorName::AuthenticationFailedException,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.connection_error_code(), "INVALID_CREDENTIALS");
        assert_eq!(
            err.for_store_management().code,
            "XksProxyIncorrectAuthenticationCredentialException"
        );
        let r = c.encrypt("key-1", meta("Encrypt"), b"x", None).await;
        assert_eq!(
            proxy_error(r),
            ProxyErrorName::AuthenticationFailedException
        );
    }

    // Signed for another Region.
    let c = XksClient::new(
        &settings(proxy.port, "ca.pem"),
        ProxyTarget {
            uri_endpoint: "https://localhost".into(),
            uri_path: "/kms/xks/v1".into(),
            access_key_id: AKID.into(),
            secret_access_key: Zeroizing::new(SECRET.into()),
            region: "eu-west-1".into(),
        },
    )
    .unwrap();
    let r = c.get_health_status(meta("KmsHealthCheck")).await;
    assert_eq!(
        proxy_error(r),
        ProxyErrorName::AuthenticationFailedException
    );
}

#[tokio::test]
async fn uri_path_prefix() {
    let proxy = start_proxy("/tenant-a").await;
    let good = client_with(proxy.port, "/tenant-a/kms/xks/v1", AKID, SECRET);
    good.get_health_status(meta("KmsHealthCheck"))
        .await
        .unwrap();
    for path in [
        "/kms/xks/v1",
        "/tenant-b/kms/xks/v1",
        "/tenant-a/kms/xks/v2",
    ] {
        let err = client_with(proxy.port, path, AKID, SECRET)
            .get_health_status(meta("KmsHealthCheck"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                XksError::Proxy {
                    name: ProxyErrorName::InvalidUriPathException,
                    ..
                }
            ),
            "{path}: {err:?}"
        );
        assert_eq!(
            err.connection_error_code(),
            "XKS_PROXY_INVALID_CONFIGURATION"
        );
    }
}

#[tokio::test]
async fn transport_failures() {
    let proxy = start_proxy("").await;
    // A proxy certificate from a CA the client does not trust.
    let untrusted = XksClient::new(
        &settings(proxy.port, "other-ca.pem"),
        ProxyTarget {
            uri_endpoint: "https://localhost".into(),
            uri_path: "/kms/xks/v1".into(),
            access_key_id: AKID.into(),
            secret_access_key: Zeroizing::new(SECRET.into()),
            region: REGION.into(),
        },
    )
    .unwrap();
    let err = untrusted
        .get_health_status(meta("KmsHealthCheck"))
        .await
        .unwrap_err();
    assert!(matches!(err, XksError::Tls(_)), "{err:?}");
    assert_eq!(
        err.connection_error_code(),
        "XKS_PROXY_INVALID_TLS_CONFIGURATION"
    );

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = client(port)
        .get_health_status(meta("KmsHealthCheck"))
        .await
        .unwrap_err();
    assert!(matches!(err, XksError::Unreachable(_)), "{err:?}");
    assert_eq!(
        err.for_store_management().code,
        "XksProxyUriUnreachableException"
    );
    assert_eq!(err.connection_error_code(), "XKS_PROXY_NOT_REACHABLE");

    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let slow = XksClient::new(
        &ClientSettings::new(
            Some(&fixture("ca.pem")),
            Duration::from_millis(200),
            Some(port),
        )
        .unwrap()
        .allow_hosts(["localhost".to_string()]),
        ProxyTarget {
            uri_endpoint: "https://localhost".into(),
            uri_path: "/kms/xks/v1".into(),
            access_key_id: AKID.into(),
            secret_access_key: Zeroizing::new(SECRET.into()),
            region: REGION.into(),
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = slow
        .get_health_status(meta("KmsHealthCheck"))
        .await
        .unwrap_err();
    assert_eq!(err, XksError::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.connection_error_code(), "XKS_PROXY_TIMED_OUT");
}

/// One raw HTTPS request, signed (unless `sign` is false) like the client signs.
async fn raw(
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
    sign: bool,
) -> (u16, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let authority = format!("localhost:{port}");
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &authority);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if sign {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        for (n, v) in trent_sigv4::sign(
            method,
            path,
            "",
            &authority,
            &[],
            body.as_bytes(),
            AKID,
            SECRET,
            None,
            REGION,
            "kms-xks-proxy",
            now,
        ) {
            request = request.header(n, v);
        }
    }
    let response = sender
        .send_request(
            request
                .body(Full::new(bytes::Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn error_name(answer: &serde_json::Value) -> &str {
    answer["errorName"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn spec_request_validation() {
    let proxy = start_proxy("").await;
    let p = proxy.port;
    let json = Some("application/json");
    let md = r#"{"awsPrincipalArn":"arn:aws:iam::111122223333:root","kmsKeyArn":"arn:aws:kms:us-east-1:111122223333:key/k","kmsOperation":"Encrypt","kmsRequestId":"r1","someFutureField":"ignored"}"#;

    // A GET on the API's URIs is 405.
    let (status, _) = raw(p, "GET", "/kms/xks/v1/health", json, "", true).await;
    assert_eq!(status, 405);
    // Unknown paths are InvalidUriPathException, before authentication.
    let (status, a) = raw(p, "POST", "/kms/xks/v1/keys/key-1/sign", json, "{}", false).await;
    assert_eq!((status, error_name(&a)), (404, "InvalidUriPathException"));
    // Unsigned.
    let (status, a) = raw(p, "POST", "/kms/xks/v1/health", json, "{}", false).await;
    assert_eq!(
        (status, error_name(&a)),
        (401, "AuthenticationFailedException")
    );
    // Missing or empty requestMetadata, also for health (as the conformance client expects).
    for body in [
        "{}",
        r#"{"requestMetadata":{}}"#,
        r#"{"requestMetadata":{"kmsRequestId":"","kmsOperation":"KmsHealthCheck"}}"#,
        "not json",
    ] {
        let (status, a) = raw(p, "POST", "/kms/xks/v1/health", json, body, true).await;
        assert_eq!(
            (status, error_name(&a)),
            (400, "ValidationException"),
            "{body}"
        );
    }
    let body = r#"{"requestMetadata":{"kmsRequestId":"r","kmsOperation":"KmsHealthCheck"}}"#;
    let (status, _) = raw(p, "POST", "/kms/xks/v1/health", json, body, true).await;
    assert_eq!(status, 200);
    let (status, a) = raw(
        p,
        "POST",
        "/kms/xks/v1/health",
        Some("text/plain"),
        body,
        true,
    )
    .await;
    assert_eq!((status, error_name(&a)), (400, "ValidationException"));
    // GetKeyMetadata needs awsPrincipalArn.
    let (status, a) = raw(
        p,
        "POST",
        "/kms/xks/v1/keys/key-1/metadata",
        json,
        body,
        true,
    )
    .await;
    assert_eq!((status, error_name(&a)), (400, "ValidationException"));

    let pt = STANDARD.encode(b"hello");
    let enc = |alg: &str, extra: &str| {
        format!(
            r#"{{"requestMetadata":{md},"plaintext":"{pt}","encryptionAlgorithm":"{alg}"{extra}}}"#
        )
    };
    let (status, a) = raw(
        p,
        "POST",
        "/kms/xks/v1/keys/key-1/encrypt",
        json,
        &enc("AES_GCM", ""),
        true,
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert!(a.get("ciphertextDataIntegrityValue").is_none());
    let (status, a) = raw(
        p,
        "POST",
        "/kms/xks/v1/keys/key-1/encrypt",
        json,
        &enc("AES_CBC", ""),
        true,
    )
    .await;
    assert_eq!((status, error_name(&a)), (400, "ValidationException"));
    let (status, a) = raw(
        p,
        "POST",
        "/kms/xks/v1/keys/key-1/encrypt",
        json,
        &enc(
            "AES_GCM",
            r#","ciphertextDataIntegrityValueAlgorithm":"MD5""#,
        ),
        true,
    )
    .await;
    assert_eq!((status, error_name(&a)), (400, "ValidationException"));
    let (status, a) = raw(
        p,
        "POST",
        "/kms/xks/v1/keys/key-1/encrypt",
        json,
        &enc("AES_GCM", r#","additionalAuthenticatedData":"!!notbase64""#),
        true,
    )
    .await;
    assert_eq!((status, error_name(&a)), (400, "ValidationException"));
    // Above this proxy's maximum: 501.
    let big = STANDARD.encode(vec![0u8; 9000]);
    let body = format!(
        r#"{{"requestMetadata":{md},"plaintext":"{big}","encryptionAlgorithm":"AES_GCM"}}"#
    );
    let (status, a) = raw(
        p,
        "POST",
        "/kms/xks/v1/keys/key-1/encrypt",
        json,
        &body,
        true,
    )
    .await;
    assert_eq!(
        (status, error_name(&a)),
        (501, "UnsupportedOperationException")
    );
    // Decrypt with oversize ciphertextMetadata.
    let body = format!(
        r#"{{"requestMetadata":{md},"ciphertext":"{pt}","encryptionAlgorithm":"AES_GCM","initializationVector":"{}","authenticationTag":"{}","ciphertextMetadata":"{}"}}"#,
        STANDARD.encode([0u8; 12]),
        STANDARD.encode([0u8; 16]),
        STANDARD.encode([0u8; 21]),
    );
    let (status, a) = raw(
        p,
        "POST",
        "/kms/xks/v1/keys/key-1/decrypt",
        json,
        &body,
        true,
    )
    .await;
    assert_eq!((status, error_name(&a)), (400, "ValidationException"));
}

#[tokio::test]
async fn double_encryption_layer() {
    use trent_crypto::custody::xks as blob;
    let proxy = start_proxy("").await;
    let c = client(proxy.port);
    let key_id = [0x42u8; 16];
    let inner = vec![0x11u8; 4096 + 62 + 16];
    let outer = c
        .seal_layer("key-1", meta("Encrypt"), key_id, b"ctx", &inner)
        .await
        .unwrap();
    assert_eq!(blob::external_blob_key_id(&outer), Some(key_id));
    let (parsed_id, sealed) = blob::decode_external_blob(&outer).unwrap();
    assert_eq!(parsed_id, key_id);
    let opened = c
        .open_layer("key-1", meta("Decrypt"), key_id, b"ctx", &sealed)
        .await
        .unwrap();
    assert_eq!(opened.as_slice(), inner.as_slice());
    // Another encryption context or another KMS key id: the proxy's tag fails.
    for (id, ctx) in [(key_id, &b"ctx2"[..]), ([0x43; 16], &b"ctx"[..])] {
        let r = c
            .open_layer("key-1", meta("Decrypt"), id, ctx, &sealed)
            .await;
        assert_eq!(proxy_error(r), ProxyErrorName::InvalidCiphertextException);
    }
}

#[tokio::test]
async fn through_the_custody_seam() {
    use trent_crypto::custody::xks::{XksProvider, XksProxyLocation, XksRequestContext};
    use trent_custody_xks::custody::XksClientProvider;
    let proxy = start_proxy("").await;
    let provider = XksClientProvider::new(settings(proxy.port, "ca.pem"));
    let location = |secret: &str| XksProxyLocation {
        uri_endpoint: "https://localhost".into(),
        uri_path: "/kms/xks/v1".into(),
        access_key_id: AKID.into(),
        secret_access_key: Zeroizing::new(secret.into()),
        region: REGION.into(),
    };
    let ctx = XksRequestContext {
        kms_request_id: "r-1".into(),
        kms_operation: "Encrypt".into(),
        aws_principal_arn: Some("arn:aws:iam::111122223333:root".into()),
        kms_key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
    };
    let seam = provider.proxy(location(SECRET)).map_err(|_| ()).unwrap();
    seam.health(&ctx).await.unwrap();
    assert!(
        seam.key_metadata("key-1", &ctx)
            .await
            .unwrap()
            .usable_by_kms()
    );
    let outer = seam
        .seal("key-1", &ctx, [5; 16], b"c", b"inner blob")
        .await
        .unwrap();
    let inner = seam.open("key-1", &ctx, b"c", &outer).await.unwrap();
    assert_eq!(inner.as_slice(), b"inner blob");
    let failure = seam
        .open("key-1", &ctx, b"other", &outer)
        .await
        .unwrap_err();
    assert_eq!(failure.crypto.code, "KMSInvalidStateException");
    let failure = seam.key_metadata("missing", &ctx).await.unwrap_err();
    assert_eq!(failure.create_key.code, "XksKeyNotFoundException");

    let bad = provider
        .proxy(location("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="))
        .map_err(|_| ())
        .unwrap();
    let failure = bad.health(&ctx).await.unwrap_err();
    assert_eq!(failure.connection_error_code, "INVALID_CREDENTIALS");
    assert_eq!(
        failure.store_management.code,
        "XksProxyIncorrectAuthenticationCredentialException"
    );
    assert!(!failure.detail.contains(SECRET));
}
