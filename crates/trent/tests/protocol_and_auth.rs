//! End to end: the awsJson1.1 protocol and SigV4 authentication, with hand-built requests where
//! an SDK would refuse to send what we need to test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_kms::primitives::Blob;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

struct Reply {
    status: u16,
    request_id: Option<String>,
    json: serde_json::Value,
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Sends a request to Trent; `sign_as` signs it with (akid, secret, time offset seconds).
async fn send(
    server: &Server,
    target: Option<&str>,
    body: &str,
    sign_as: Option<(&str, &str, i64)>,
) -> Reply {
    send_scoped(server, target, body, sign_as, "kms").await
}

/// [`send`], signed with a credential scope for `service`.
async fn send_scoped(
    server: &Server,
    target: Option<&str>,
    body: &str,
    sign_as: Option<(&str, &str, i64)>,
    service: &str,
) -> Reply {
    let host = server.endpoint.trim_start_matches("http://").to_string();
    let mut req = hyper::Request::post("/")
        .header("host", &host)
        .header("content-type", "application/x-amz-json-1.1");
    let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/x-amz-json-1.1")];
    if let Some(t) = target {
        req = req.header("x-amz-target", t);
        headers.push(("x-amz-target", t));
    }
    if let Some((akid, secret, offset)) = sign_as {
        for (k, v) in trent_sigv4::sign(
            "POST",
            "/",
            "",
            &host,
            &headers,
            body.as_bytes(),
            akid,
            secret,
            None,
            "us-east-1",
            service,
            now() + offset,
        ) {
            req = req.header(k, v);
        }
    }
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-amzn-requestid")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        request_id,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}

#[tokio::test]
async fn authentication_failures_answer_as_aws_does() {
    let server = Server::start();
    let target = Some("TrentService.ListKeys");

    let r = send(&server, target, "{}", None).await;
    assert_eq!(
        (r.status, r.json["__type"].as_str()),
        (400, Some("MissingAuthenticationTokenException"))
    );
    assert!(
        r.request_id.is_some(),
        "every response carries a request id"
    );

    let r = send(
        &server,
        target,
        "{}",
        Some(("AKIAUNKNOWN000000000", "x", 0)),
    )
    .await;
    assert_eq!(r.json["__type"], "UnrecognizedClientException");
    assert_eq!(
        r.json["message"],
        "The security token included in the request is invalid."
    );

    let r = send(&server, target, "{}", Some((AKID_A, "wrong-secret", 0))).await;
    assert_eq!(r.json["__type"], "InvalidSignatureException");
    assert!(!r.json["message"].as_str().unwrap().contains("secret-1"));

    let r = send(&server, target, "{}", Some((AKID_A, SECRET_A, -6 * 60))).await;
    assert_eq!(r.json["__type"], "InvalidSignatureException");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired"),
        "{}",
        r.json
    );

    let r = send(&server, target, "{}", Some((AKID_A, SECRET_A, 6 * 60))).await;
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature not yet current"),
        "{}",
        r.json
    );

    let r = send(&server, target, "{}", Some((AKID_A, SECRET_A, 0))).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.json["Keys"].is_array());
}

/// A signature that covers only `host` and `x-amz-date` cannot carry an operation: replaying it
/// with any `X-Amz-Target` (the attack was a signed DescribeKey turned into DisableKey and
/// ScheduleKeyDeletion) is refused before anything runs.
#[tokio::test]
async fn the_operation_headers_must_be_signed() {
    let server = Server::start();
    let host = server.endpoint.trim_start_matches("http://").to_string();
    let created = send(
        &server,
        Some("TrentService.CreateKey"),
        "{}",
        Some((AKID_A, SECRET_A, 0)),
    )
    .await;
    let key_id = created.json["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let body = format!(r#"{{"KeyId":"{key_id}"}}"#);
    // Signed with no header but host and x-amz-date, then given a target it did not sign.
    let auth = trent_sigv4::sign(
        "POST",
        "/",
        "",
        &host,
        &[],
        body.as_bytes(),
        AKID_A,
        SECRET_A,
        None,
        "us-east-1",
        "kms",
        now(),
    );
    for (unsigned, expected_name) in [
        (
            vec![("x-amz-target", "TrentService.DisableKey")],
            "x-amz-target",
        ),
        (
            vec![
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "TrentService.DisableKey"),
            ],
            "content-type",
        ),
    ] {
        let mut req = hyper::Request::post("/").header("host", &host);
        for (k, v) in &auth {
            req = req.header(k, v);
        }
        for (k, v) in &unsigned {
            req = req.header(*k, *v);
        }
        let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body.clone()))).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["__type"], "InvalidSignatureException", "{json}");
        assert_eq!(
            json["message"],
            format!("'{expected_name}' must be a 'SignedHeader' in the AWS Authorization.")
        );
    }
    // The key is untouched.
    let described = send(
        &server,
        Some("TrentService.DescribeKey"),
        &body,
        Some((AKID_A, SECRET_A, 0)),
    )
    .await;
    assert_eq!(described.json["KeyMetadata"]["KeyState"], "Enabled");
}

/// A root key file other users can read is refused at start, naming the file; restricted
/// again, the same data directory starts.
#[test]
fn a_root_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    // SIGTERM at once after the "serving" line is a clean stop (the handler is installed
    // before the line is printed).
    let mut server = Server::start_in(&data_dir, true);
    assert!(server.terminate().success());
    let root_key = data_dir.join("root.key");
    std::fs::set_permissions(&root_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env_remove("TRENT_ROOT_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "root key {} is accessible to other users (mode 644)",
            root_key.display()
        )),
        "{stderr}"
    );
    std::fs::set_permissions(&root_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut again = Server::start_in(&data_dir, true);
    again.kill_9();
}

#[tokio::test]
async fn protocol_errors_are_typed() {
    let server = Server::start();
    let signed = Some((AKID_A, SECRET_A, 0));
    let r = send(&server, Some("TrentService.NoSuchOperation"), "{}", signed).await;
    assert_eq!(r.json["__type"], "UnknownOperationException");
    let r = send(&server, None, "{}", signed).await;
    assert_eq!(r.json["__type"], "UnknownOperationException");
    let r = send(&server, Some("TrentService.Encrypt"), "{not json", signed).await;
    assert_eq!(r.json["__type"], "SerializationException");
    let r = send(
        &server,
        Some("TrentService.Encrypt"),
        r#"{"KeyId": 5}"#,
        signed,
    )
    .await;
    assert_eq!(r.json["__type"], "SerializationException");
    let r = send(
        &server,
        Some("TrentService.Encrypt"),
        r#"{"KeyId": "alias/x", "Plaintext": "***"}"#,
        signed,
    )
    .await;
    assert_eq!(
        r.json["__type"], "SerializationException",
        "invalid base64 is a serialization error"
    );
    let r = send(
        &server,
        Some("TrentService.Encrypt"),
        r#"{"Plaintext": "aGk="}"#,
        signed,
    )
    .await;
    assert_eq!(r.json["__type"], "ValidationException");
    assert_eq!(
        r.json["message"],
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"
    );
    // An operation's required members are checked before anything else (UpdatePrimaryRegion
    // needs KeyId and PrimaryRegion).
    let r = send(
        &server,
        Some("TrentService.UpdatePrimaryRegion"),
        "{}",
        signed,
    )
    .await;
    assert_eq!(r.json["__type"], "ValidationException", "{}", r.json);
    assert!(
        r.json["message"]
            .as_str()
            .is_some_and(|m| m.contains("validation error") && m.contains("'keyId'")),
        "{}",
        r.json
    );
    // Garbage never panics the server: it still answers afterwards.
    let r = send(&server, Some("TrentService.ListKeys"), "{}", signed).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn state_survives_kill_9_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut server = Server::start_in(&data_dir, true);
    let kms = server.kms_a();
    let key = kms
        .create_key()
        .description("durable")
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    kms.create_alias()
        .alias_name("alias/durable")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    kms.disable_key().key_id(&key).send().await.unwrap();
    kms.enable_key().key_id(&key).send().await.unwrap();
    let blob = kms
        .encrypt()
        .key_id("alias/durable")
        .plaintext(Blob::new(b"survive".to_vec()))
        .send()
        .await
        .unwrap();
    server.kill_9();

    let server = Server::start_in(&data_dir, true);
    let kms = server.kms_a();
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"survive");
    let d = kms
        .describe_key()
        .key_id("alias/durable")
        .send()
        .await
        .unwrap();
    assert_eq!(d.key_metadata().unwrap().description(), Some("durable"));
    assert_eq!(d.key_metadata().unwrap().key_id(), key);
    assert!(
        kms.list_keys()
            .send()
            .await
            .unwrap()
            .keys()
            .iter()
            .any(|k| k.key_id() == Some(key.as_str()))
    );
}

#[tokio::test]
async fn key_material_is_not_stored_in_the_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut server = Server::start_in(&data_dir, true);
    let kms = server.kms_a();
    kms.create_key().send().await.unwrap();
    let ciphertext = kms
        .generate_data_key()
        .key_id(
            kms.list_keys().send().await.unwrap().keys()[0]
                .key_id()
                .unwrap(),
        )
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    assert!(ciphertext.plaintext().is_some());
    server.terminate();
    let root_key = std::fs::read_to_string(data_dir.join("root.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(data_dir.join("root.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The database holds secrets only wrapped: neither the account secret nor anything that
    // decodes as the root key appears in it.
    let mut db = Vec::new();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("trent.db")
        {
            db.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!db.is_empty());
    let contains = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(SECRET_A.as_bytes()),
        "account secret stored in the clear"
    );
    assert!(!contains(root_key.trim().as_bytes()));
    assert!(!contains(&hex::decode(root_key.trim()).unwrap()));
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly() {
    let mut server = Server::start();
    server.kms_a().list_keys().send().await.unwrap();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

/// AWS fidelity (issue 11): a KMS operation signed for another service is AWS's
/// InvalidSignatureException, not an unknown operation.
#[tokio::test]
async fn a_kms_request_scoped_to_another_service_is_an_invalid_signature() {
    let server = Server::start();
    let signed = Some((AKID_A, SECRET_A, 0));
    let r = send_scoped(&server, Some("TrentService.ListKeys"), "{}", signed, "s3").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json["__type"], "InvalidSignatureException", "{}", r.json);
    assert_eq!(
        r.json["message"],
        "Credential should be scoped to correct service: 'kms'."
    );
}

/// AWS fidelity (issue 11): AWS sends no `message` member in InvalidCiphertextException,
/// KMSInvalidSignatureException and KMSInvalidMacException (recorded: `decrypt_response_with_invalid_ciphertext`,
/// `bad-signature`, `test_invalid_verify_mac`).
#[tokio::test]
async fn detail_free_errors_have_no_message_member() {
    let server = Server::start();
    let signed = Some((AKID_A, SECRET_A, 0));
    let create = |body: &'static str| send(&server, Some("TrentService.CreateKey"), body, signed);
    let symmetric = create("{}").await.json["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let rsa = create(r#"{"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}"#)
        .await
        .json["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let hmac = create(r#"{"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}"#)
        .await
        .json["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(
        &server,
        Some("TrentService.Decrypt"),
        &format!(
            r#"{{"KeyId": "{symmetric}", "CiphertextBlob": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#
        ),
        signed,
    )
    .await;
    assert_eq!(
        r.json,
        serde_json::json!({"__type": "InvalidCiphertextException"})
    );
    let r = send(
        &server,
        Some("TrentService.Verify"),
        &format!(
            r#"{{"KeyId": "{rsa}", "Message": "aGk=", "Signature": "{}", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}}"#,
            "A".repeat(344)
        ),
        signed,
    )
    .await;
    assert_eq!(
        r.json,
        serde_json::json!({"__type": "KMSInvalidSignatureException"})
    );
    let r = send(
        &server,
        Some("TrentService.VerifyMac"),
        &format!(
            r#"{{"KeyId": "{hmac}", "Message": "aGk=", "Mac": "{}", "MacAlgorithm": "HMAC_SHA_256"}}"#,
            "A".repeat(44)
        ),
        signed,
    )
    .await;
    assert_eq!(
        r.json,
        serde_json::json!({"__type": "KMSInvalidMacException"})
    );
}

/// AWS fidelity (issue 11): key material ids only where AWS sends them — `CurrentKeyMaterialId`
/// on symmetric encryption keys only (recorded `test_hmac_create_key`,
/// `test_import_key_asymmetric`), and ReEncrypt/Decrypt between RSA keys without
/// Source/DestinationKeyMaterialId or KeyMaterialId (recorded
/// `test_re_encrypt[RSA_2048-RSAES_OAEP_SHA_256]`).
#[tokio::test]
async fn key_material_ids_only_on_symmetric_keys() {
    let server = Server::start();
    let signed = Some((AKID_A, SECRET_A, 0));
    let create = |body: &'static str| send(&server, Some("TrentService.CreateKey"), body, signed);
    let meta = create("{}").await.json["KeyMetadata"].clone();
    assert!(meta["CurrentKeyMaterialId"].is_string(), "{meta}");
    for body in [
        r#"{"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}"#,
        r#"{"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}"#,
        r#"{"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}"#,
    ] {
        let meta = create(body).await.json["KeyMetadata"].clone();
        assert!(meta.get("CurrentKeyMaterialId").is_none(), "{meta}");
        let id = meta["KeyId"].as_str().unwrap();
        let described = send(
            &server,
            Some("TrentService.DescribeKey"),
            &format!(r#"{{"KeyId": "{id}"}}"#),
            signed,
        )
        .await
        .json["KeyMetadata"]
            .clone();
        assert!(
            described.get("CurrentKeyMaterialId").is_none(),
            "{described}"
        );
    }

    let rsa = |body: &'static str| async move {
        create(body).await.json["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let source = rsa(r#"{"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}"#).await;
    let destination = rsa(r#"{"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}"#).await;
    let blob = send(
        &server,
        Some("TrentService.Encrypt"),
        &format!(
            r#"{{"KeyId": "{source}", "Plaintext": "aGk=", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}"#
        ),
        signed,
    )
    .await
    .json["CiphertextBlob"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(
        &server,
        Some("TrentService.Decrypt"),
        &format!(
            r#"{{"KeyId": "{source}", "CiphertextBlob": "{blob}", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}"#
        ),
        signed,
    )
    .await;
    assert_eq!(r.json["Plaintext"], "aGk=", "{}", r.json);
    assert!(r.json.get("KeyMaterialId").is_none(), "{}", r.json);
    let r = send(
        &server,
        Some("TrentService.ReEncrypt"),
        &format!(
            r#"{{"CiphertextBlob": "{blob}", "SourceKeyId": "{source}", "DestinationKeyId": "{destination}", "SourceEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "DestinationEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}"#
        ),
        signed,
    )
    .await;
    let mut members: Vec<&str> = r
        .json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(
        members,
        [
            "CiphertextBlob",
            "DestinationEncryptionAlgorithm",
            "KeyId",
            "SourceEncryptionAlgorithm",
            "SourceKeyId"
        ],
        "{}",
        r.json
    );
}
