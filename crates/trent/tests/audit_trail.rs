//! End to end: the audit trail of the real server, driven with the AWS SDK and read back
//! through CloudTrail's LookupEvents (hand-signed awsJson requests, SigV4 service
//! `cloudtrail`), the raw files and `trent audit verify`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

const LOOKUP_TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";

/// LookupEvents with `body`, signed with (`akid`, `secret`); (status, JSON answer).
async fn lookup(server: &Server, akid: &str, secret: &str, body: &Value) -> (u16, Value) {
    let host = server.host().to_string();
    let body = body.to_string();
    let content_type = "application/x-amz-json-1.1";
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let mut req = hyper::Request::post("/")
        .header("host", &host)
        .header("content-type", content_type)
        .header("x-amz-target", LOOKUP_TARGET);
    for (k, v) in trent_sigv4::sign(
        "POST",
        "/",
        "",
        &host,
        &[
            ("content-type", content_type),
            ("x-amz-target", LOOKUP_TARGET),
        ],
        body.as_bytes(),
        akid,
        secret,
        None,
        "us-east-1",
        "cloudtrail",
        now,
    ) {
        req = req.header(k, v);
    }
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The CloudTrail records LookupEvents returns for `attribute` = `value` (all pages).
async fn records(
    server: &Server,
    akid: &str,
    secret: &str,
    attribute: &str,
    value: &str,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({
            "LookupAttributes": [{"AttributeKey": attribute, "AttributeValue": value}],
            "MaxResults": 3,
        });
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let (status, answer) = lookup(server, akid, secret, &body).await;
        assert_eq!(status, 200, "{answer}");
        for event in answer["Events"].as_array().unwrap() {
            let record: Value =
                serde_json::from_str(event["CloudTrailEvent"].as_str().unwrap()).unwrap();
            assert_eq!(event["EventId"], record["eventID"]);
            assert_eq!(event["EventName"], record["eventName"]);
            out.push(record);
        }
        match answer["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

/// Every stored line of the trail, as text.
fn raw_trail(server: &Server) -> String {
    let mut text = String::new();
    let dir = server.data_dir.join("audit");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.extension().is_some_and(|e| e == "jsonl") {
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    text
}

fn cross_account_policy() -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Owner","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"B may decrypt","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_B}:root"}},"Action":["kms:Decrypt"],"Resource":"*"}}]}}"#
    )
}

#[tokio::test]
async fn cross_account_decrypt_is_in_both_accounts_and_a_denied_call_only_in_the_callers() {
    let server = Server::start();
    let a = server.kms_a();
    let key = a
        .create_key()
        .policy(cross_account_policy())
        .send()
        .await
        .unwrap();
    let key_arn = key.key_metadata().unwrap().arn().unwrap().to_string();
    let ciphertext = a
        .encrypt()
        .key_id(&key_arn)
        .plaintext(Blob::new(b"shared secret".to_vec()))
        .encryption_context("purpose", "audit-test")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let b = server.kms_b();
    let decrypted = b
        .decrypt()
        .ciphertext_blob(ciphertext)
        .encryption_context("purpose", "audit-test")
        .send()
        .await
        .unwrap();
    let request_id = decrypted.request_id().unwrap().to_string();
    // Encrypt is not in the key policy for B: denied, recorded only in B's account.
    let denied = b
        .encrypt()
        .key_id(&key_arn)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await;
    assert_eq!(code(denied), "AccessDeniedException");

    let in_a = records(&server, AKID_A, SECRET_A, "EventName", "Decrypt").await;
    let in_b = records(&server, AKID_B, SECRET_B, "EventName", "Decrypt").await;
    assert_eq!((in_a.len(), in_b.len()), (1, 1), "{in_a:?} {in_b:?}");
    let (owner, caller) = (&in_a[0], &in_b[0]);
    assert_eq!(owner["recipientAccountId"], ACCOUNT_A);
    assert_eq!(caller["recipientAccountId"], ACCOUNT_B);
    assert!(owner["sharedEventID"].is_string());
    assert_eq!(owner["sharedEventID"], caller["sharedEventID"]);
    assert_ne!(owner["eventID"], caller["eventID"]);
    assert_eq!(caller["requestID"], request_id.as_str());
    assert_eq!(owner["requestID"], request_id.as_str());
    assert_eq!(caller["userIdentity"]["type"], "Root");
    assert_eq!(caller["userIdentity"]["accountId"], ACCOUNT_B);
    assert_eq!(owner["userIdentity"]["type"], "AWSAccount");
    assert_eq!(owner["userIdentity"]["accountId"], ACCOUNT_B);
    assert_eq!(caller["resources"][0]["ARN"], key_arn.as_str());
    assert_eq!(caller["resources"][0]["accountId"], ACCOUNT_A);
    assert_eq!(
        caller["requestParameters"]["encryptionContext"]["purpose"],
        "audit-test"
    );
    assert_eq!(caller["eventSource"], "kms.amazonaws.com");
    assert_eq!(caller["readOnly"], true);
    assert_eq!(caller["eventType"], "AwsApiCall");
    assert!(caller.get("errorCode").is_none());

    let denied_in_b = records(&server, AKID_B, SECRET_B, "EventName", "Encrypt").await;
    assert_eq!(denied_in_b.len(), 1, "{denied_in_b:?}");
    assert_eq!(denied_in_b[0]["errorCode"], "AccessDeniedException");
    assert!(
        denied_in_b[0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("kms:Encrypt"),
        "{}",
        denied_in_b[0]
    );
    assert!(denied_in_b[0].get("sharedEventID").is_none());
    let encrypts_in_a = records(&server, AKID_A, SECRET_A, "EventName", "Encrypt").await;
    assert_eq!(
        encrypts_in_a.len(),
        1,
        "only A's own Encrypt: {encrypts_in_a:?}"
    );
    assert_eq!(encrypts_in_a[0]["userIdentity"]["accountId"], ACCOUNT_A);

    // Other attributes, and each account sees only its own events.
    let by_resource = records(&server, AKID_A, SECRET_A, "ResourceName", &key_arn).await;
    let names: Vec<_> = by_resource
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Decrypt", "Encrypt", "CreateKey"], "newest first");
    let by_id = records(
        &server,
        AKID_B,
        SECRET_B,
        "EventId",
        owner["eventID"].as_str().unwrap(),
    )
    .await;
    assert!(by_id.is_empty(), "B cannot see A's copy");
    let by_key = records(&server, AKID_B, SECRET_B, "AccessKeyId", AKID_B).await;
    assert!(by_key.len() >= 2);
    let bad = lookup(
        &server,
        AKID_A,
        SECRET_A,
        &json!({"LookupAttributes": [{"AttributeKey": "Nope", "AttributeValue": "x"}]}),
    )
    .await;
    assert_eq!(bad.0, 400);
    assert_eq!(bad.1["__type"], "InvalidLookupAttributesException");
}

#[tokio::test]
async fn lookup_events_needs_cloudtrail_permission_and_grants_are_recorded() {
    let server = Server::start();
    let iam = server.iam(AKID_A, SECRET_A);
    let (alice_akid, alice_secret, alice_arn) = new_iam_user(&iam, "alice").await;
    let (status, answer) = lookup(&server, &alice_akid, &alice_secret, &json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(answer["__type"], "AccessDeniedException", "{answer}");

    let a = server.kms_a();
    let key_id = new_key_id(&a).await;
    let grant = a
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&alice_arn)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    let grant_id = grant.grant_id().unwrap().to_string();
    let key_arn = format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:key/{key_id}");
    server
        .kms(&alice_akid, &alice_secret)
        .encrypt()
        .key_id(&key_arn)
        .plaintext(Blob::new(b"by grant".to_vec()))
        .send()
        .await
        .unwrap();
    iam.put_user_policy()
        .user_name("alice")
        .policy_name("trail")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudtrail:LookupEvents","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let mine = records(&server, &alice_akid, &alice_secret, "Username", "alice").await;
    let encrypt = mine
        .iter()
        .find(|r| r["eventName"] == "Encrypt")
        .expect("alice's Encrypt");
    assert_eq!(encrypt["additionalEventData"]["grantId"], grant_id.as_str());
    assert_eq!(encrypt["userIdentity"]["type"], "IAMUser");
    assert_eq!(encrypt["userIdentity"]["userName"], "alice");
    // The denied LookupEvents is there too, with its error code.
    let lookups = records(
        &server,
        AKID_A,
        SECRET_A,
        "EventSource",
        "cloudtrail.amazonaws.com",
    )
    .await;
    assert!(
        lookups
            .iter()
            .any(|r| r["errorCode"] == "AccessDeniedException"
                && r["userIdentity"]["userName"] == "alice"),
        "{lookups:?}"
    );
    // IAM calls are recorded, without the access key's secret.
    let iam_calls = records(
        &server,
        AKID_A,
        SECRET_A,
        "EventSource",
        "iam.amazonaws.com",
    )
    .await;
    assert!(
        iam_calls.iter().any(|r| r["eventName"] == "CreateAccessKey"
            && r["requestParameters"]["userName"] == "alice")
    );
    assert!(!raw_trail(&server).contains(&alice_secret));
}

#[tokio::test]
async fn no_plaintext_or_data_key_is_ever_stored() {
    let server = Server::start();
    let a = server.kms_a();
    let key_id = new_key_id(&a).await;
    let plaintext = b"the-plaintext-that-must-never-be-logged-7d1f";
    let encrypted = a
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(plaintext.to_vec()))
        .send()
        .await
        .unwrap();
    let ciphertext = encrypted.ciphertext_blob().unwrap().clone();
    a.decrypt()
        .ciphertext_blob(ciphertext.clone())
        .send()
        .await
        .unwrap();
    let data_key = a
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let random = a
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let trail = raw_trail(&server);
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let secrets = [
        String::from_utf8(plaintext.to_vec()).unwrap(),
        b64(plaintext),
        b64(ciphertext.as_ref()),
        b64(data_key.plaintext().unwrap().as_ref()),
        b64(data_key.ciphertext_blob().unwrap().as_ref()),
        b64(random.plaintext().unwrap().as_ref()),
        SECRET_A.to_string(),
    ];
    for secret in &secrets {
        assert!(!trail.contains(secret.as_str()), "{secret} is in the trail");
    }
    for name in ["Encrypt", "Decrypt", "GenerateDataKey", "GenerateRandom"] {
        assert!(
            trail.contains(&format!("\"eventName\":\"{name}\"")),
            "{name} recorded"
        );
    }
    assert!(trail.contains("\"keySpec\":\"AES_256\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_after_a_burst_loses_no_acknowledged_event() {
    // The default durability ("write": answers wait for their batch's write, not its fsync).
    burst_then_kill_9(Server::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_event_when_answers_wait_for_the_fsync() {
    burst_then_kill_9(Server::start_with_config(
        "[audit]\ndurability = \"sync\"\n",
    ))
    .await;
}

async fn burst_then_kill_9(mut server: Server) {
    let a = server.kms_a();
    let key_id = new_key_id(&a).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let client = a.clone();
        let key_id = key_id.clone();
        tasks.push(tokio::spawn(async move {
            let out = client
                .encrypt()
                .key_id(&key_id)
                .plaintext(Blob::new(format!("burst {i}").into_bytes()))
                .send()
                .await
                .unwrap();
            out.request_id().unwrap().to_string()
        }));
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.push(t.await.unwrap());
    }
    server.kill_9();
    let trail = raw_trail(&server);
    for id in &acknowledged {
        assert!(
            trail.contains(&format!("\"requestID\":\"{id}\"")),
            "the event of {id} was lost"
        );
    }
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

#[tokio::test]
async fn trent_audit_verify_catches_a_modified_event() {
    let mut server = Server::start();
    let a = server.kms_a();
    let key_id = new_key_id(&a).await;
    for _ in 0..3 {
        a.describe_key().key_id(&key_id).send().await.unwrap();
    }
    server.terminate();
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_trent"))
            .args(["audit", "verify", "--data-dir"])
            .arg(&server.data_dir)
            .output()
            .unwrap()
    };
    let intact = verify();
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stdout)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("intact"));

    let segment = std::fs::read_dir(server.data_dir.join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let original = std::fs::read_to_string(&segment).unwrap();
    // A changed event: the caller's address rewritten.
    let changed = original.replacen(
        "\"sourceIPAddress\":\"127.0.0.1\"",
        "\"sourceIPAddress\":\"10.9.9.9\"",
        1,
    );
    assert_ne!(changed, original);
    std::fs::write(&segment, &changed).unwrap();
    let tampered = verify();
    assert!(!tampered.status.success());
    assert!(String::from_utf8_lossy(&tampered.stdout).contains("does not match its digest"));

    // A removed event line.
    let lines: Vec<&str> = original.lines().collect();
    let first_event = lines
        .iter()
        .position(|l| l.contains("\"eventName\":\"DescribeKey\""))
        .unwrap();
    let removed: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first_event)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&segment, removed).unwrap();
    assert!(!verify().status.success());

    // Exported per account, Region and day.
    std::fs::write(&segment, &original).unwrap();
    let out = server.data_dir.parent().unwrap().join("export");
    let exported = std::process::Command::new(env!("CARGO_BIN_EXE_trent"))
        .args(["audit", "export", "--data-dir"])
        .arg(&server.data_dir)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(exported.status.success());
    let account_dir = out.join(ACCOUNT_A).join("us-east-1");
    assert!(
        account_dir.is_dir(),
        "{}",
        String::from_utf8_lossy(&exported.stdout)
    );
}

#[tokio::test]
async fn background_work_is_recorded_as_service_events() {
    let server = Server::start();
    let a = server.kms_a();
    let new_key = || async {
        a.create_key()
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .arn()
            .unwrap()
            .to_string()
    };
    let rotated = new_key().await;
    let deleted = new_key().await;
    a.enable_key_rotation()
        .key_id(&rotated)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    a.schedule_key_deletion()
        .key_id(&deleted)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    server.advance_clock(91 * 86_400);
    // Service events are appended after the step, without holding up the lifecycle task.
    let mut found = (Vec::new(), Vec::new());
    for _ in 0..50 {
        found = (
            records(&server, AKID_A, SECRET_A, "EventName", "RotateKey").await,
            records(&server, AKID_A, SECRET_A, "EventName", "DeleteKey").await,
        );
        if !found.0.is_empty() && !found.1.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for (events, arn) in [(&found.0, &rotated), (&found.1, &deleted)] {
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!(e["eventType"], "AwsServiceEvent");
        assert_eq!(e["userIdentity"]["invokedBy"], "kms.amazonaws.com");
        assert_eq!(e["resources"][0]["ARN"], arn.as_str());
        assert_eq!(e["additionalEventData"]["keyId"], arn.as_str());
        assert_eq!(e["recipientAccountId"], ACCOUNT_A);
    }
    // Account B sees none of A's service events.
    assert!(
        records(&server, AKID_B, SECRET_B, "EventName", "RotateKey")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn get_key_last_usage_reports_the_last_cryptographic_call_and_survives_a_restart() {
    let mut server = Server::start();
    let a = server.kms_a();
    let key_id = new_key_id(&a).await;
    let unused = a.get_key_last_usage().key_id(&key_id).send().await.unwrap();
    assert!(unused.key_last_usage().is_none());
    assert!(unused.tracking_start_date().is_some());
    assert!(unused.key_creation_date().is_some());
    a.describe_key().key_id(&key_id).send().await.unwrap();
    let encrypted = a
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"usage".to_vec()))
        .send()
        .await
        .unwrap();
    let request_id = encrypted.request_id().unwrap().to_string();
    // A failed call does not count.
    let failed = a
        .decrypt()
        .key_id(&key_id)
        .ciphertext_blob(Blob::new(vec![1u8; 64]))
        .send()
        .await;
    assert_eq!(code(failed), "InvalidCiphertextException");
    let used = a.get_key_last_usage().key_id(&key_id).send().await.unwrap();
    let last = used.key_last_usage().unwrap();
    assert_eq!(last.operation().unwrap().as_str(), "Encrypt");
    assert_eq!(last.kms_request_id(), Some(request_id.as_str()));
    let encrypt_events = records(&server, AKID_A, SECRET_A, "EventName", "Encrypt").await;
    assert_eq!(
        last.cloud_trail_event_id(),
        encrypt_events[0]["eventID"].as_str()
    );

    // Persisted every few seconds: after a clean stop and a restart it is still known.
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    server.terminate();
    let restarted = Server::start_in(&server.data_dir, true);
    let again = restarted
        .kms_a()
        .get_key_last_usage()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.key_last_usage().unwrap().kms_request_id(),
        Some(request_id.as_str())
    );
    // Another account may not ask.
    assert_eq!(
        code(
            restarted
                .kms_b()
                .get_key_last_usage()
                .key_id(format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:key/{key_id}"))
                .send()
                .await
        ),
        "AccessDeniedException"
    );
}

/// `Mon d, yyyy, h:mm:ss AM` (CloudTrail's date form in KMS's `responseElements`).
fn is_response_date(value: &Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let parts: Vec<&str> = text.split(' ').collect();
    parts.len() == 5
        && parts[0].len() == 3
        && parts[1].ends_with(',')
        && parts[2].len() == 5
        && parts[3].split(':').count() == 3
        && (parts[4] == "AM" || parts[4] == "PM")
}

#[tokio::test]
async fn management_calls_record_response_elements_and_data_calls_record_none() {
    use aws_sdk_kms::types::GrantOperation;
    let server = Server::start();
    let a = server.kms_a();
    let created = a.create_key().description("elements").send().await.unwrap();
    let meta = created.key_metadata().unwrap();
    let (key_id, arn) = (meta.key_id().to_string(), meta.arn().unwrap().to_string());
    a.create_alias()
        .alias_name("alias/elements")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let grant = a
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(format!("arn:aws:iam::{ACCOUNT_A}:root"))
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    a.encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"elements".to_vec()))
        .send()
        .await
        .unwrap();
    a.describe_key().key_id(&key_id).send().await.unwrap();
    a.disable_key().key_id(&key_id).send().await.unwrap();
    a.schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    // A failed management call records no answer.
    let failed = a.enable_key().key_id(&key_id).send().await;
    assert_eq!(code(failed), "KMSInvalidStateException");

    let one = |name: &'static str| {
        let server = &server;
        async move {
            let mut found = records(server, AKID_A, SECRET_A, "EventName", name).await;
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            found.remove(0)["responseElements"].clone()
        }
    };
    let create = one("CreateKey").await;
    let metadata = &create["keyMetadata"];
    assert_eq!(metadata["AWSAccountId"], ACCOUNT_A);
    assert_eq!(metadata["keyId"], key_id.as_str());
    assert_eq!(metadata["arn"], arn.as_str());
    assert_eq!(metadata["description"], "elements");
    assert_eq!(metadata["keyState"], "Enabled");
    assert_eq!(metadata["keyUsage"], "ENCRYPT_DECRYPT");
    assert!(is_response_date(&metadata["creationDate"]), "{metadata}");
    assert_eq!(one("CreateAlias").await, Value::Null);
    assert_eq!(
        one("CreateGrant").await,
        json!({"grantId": grant.grant_id().unwrap(), "keyId": arn})
    );
    assert_eq!(one("Encrypt").await, Value::Null);
    assert_eq!(one("DescribeKey").await, Value::Null);
    assert_eq!(one("DisableKey").await, json!({ "keyId": arn }));
    let scheduled = one("ScheduleKeyDeletion").await;
    assert_eq!(scheduled["keyId"], arn.as_str());
    assert_eq!(scheduled["keyState"], "PendingDeletion");
    assert_eq!(scheduled["pendingWindowInDays"], 7);
    assert!(is_response_date(&scheduled["deletionDate"]), "{scheduled}");
    assert_eq!(one("EnableKey").await, Value::Null);
    // The grant token of the answer is never recorded.
    assert!(!raw_trail(&server).contains(grant.grant_token().unwrap()));
}

#[tokio::test]
async fn lookup_events_and_get_key_last_usage_are_throttled_at_their_quotas() {
    let server = Server::start_with_config("[quotas.rates]\nGetKeyLastUsage = 1\n");
    let a = server.kms_a();
    let key_id = new_key_id(&a).await;
    let mut throttled = 0;
    for _ in 0..4 {
        let answer = a.get_key_last_usage().key_id(&key_id).send().await;
        if answer.is_err() {
            assert_eq!(code(answer), "ThrottlingException");
            throttled += 1;
        }
    }
    // Four calls span at most two one-second windows of one call each.
    assert!(throttled >= 2, "only {throttled} GetKeyLastUsage throttled");

    // CloudTrail's quota: 2 LookupEvents per second per account and Region.
    let mut throttled = 0;
    for _ in 0..6 {
        let (status, answer) = lookup(&server, AKID_A, SECRET_A, &json!({})).await;
        if status != 200 {
            assert_eq!(status, 400, "{answer}");
            assert_eq!(answer["__type"], "ThrottlingException");
            assert_eq!(answer["message"], "Rate exceeded");
            throttled += 1;
        }
    }
    assert!(throttled >= 2, "only {throttled} LookupEvents throttled");
    // Another account's window is its own.
    let (status, answer) = lookup(&server, AKID_B, SECRET_B, &json!({})).await;
    assert_eq!(status, 200, "{answer}");
}
