//! End to end: what an operator sees — `/health`, `/ready`, `/metrics` (on the API port or a
//! separate one) and one structured log line per request that never holds a secret.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::io::{Read, Write};

use aws_sdk_kms::primitives::Blob;
use common::*;

/// `GET path` on `host`; the status line and the body.
fn get(host: &str, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the metric line starting with `series ` (labels included).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

async fn key_and_ciphertext(kms: &aws_sdk_kms::Client) -> (String, Vec<u8>) {
    let key_id = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let ciphertext = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"top secret plaintext".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();
    (key_id, ciphertext)
}

#[tokio::test]
async fn health_ready_and_metrics_count_requests_and_errors() {
    let server = Server::start();
    let host = server.host().to_string();
    assert_eq!(
        get(&host, "/health"),
        ("HTTP/1.1 200 OK".into(), "ok\n".into())
    );
    assert_eq!(
        get(&host, "/ready"),
        ("HTTP/1.1 200 OK".into(), "ready\n".into())
    );

    let kms = server.kms(AKID_A, SECRET_A);
    let (key_id, mut ciphertext) = key_and_ciphertext(&kms).await;
    for _ in 0..2 {
        kms.encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap();
    }
    let last = ciphertext.len() - 1;
    ciphertext[last] ^= 1;
    let tampered = kms
        .decrypt()
        .ciphertext_blob(Blob::new(ciphertext))
        .send()
        .await;
    assert!(tampered.is_err());

    let (status, text) = get(&host, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let kms_series =
        |op: &str| format!("trent_requests_total{{service=\"kms\",operation=\"{op}\"}}");
    assert_eq!(metric(&text, &kms_series("Encrypt")), Some(3.0));
    assert_eq!(metric(&text, &kms_series("CreateKey")), Some(1.0));
    assert_eq!(metric(&text, &kms_series("Decrypt")), Some(1.0));
    assert_eq!(
        metric(
            &text,
            "trent_request_errors_total{service=\"kms\",operation=\"Decrypt\",code=\"InvalidCiphertextException\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "trent_request_duration_seconds_count{service=\"kms\",operation=\"Encrypt\"}"
        ),
        Some(3.0)
    );
    assert!(metric(&text, "trent_connections_open").unwrap() >= 1.0);
    assert!(metric(&text, "trent_cache_keys").unwrap() >= 1.0);
    assert_eq!(metric(&text, "trent_accounts"), Some(2.0));
    assert!(
        !text.contains(&key_id) && !text.contains(ACCOUNT_A),
        "metrics name no key or account"
    );
}

#[tokio::test]
async fn operator_endpoints_move_to_ops_listen_when_configured() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::start_with_config(&format!("ops_listen = \"127.0.0.1:{port}\"\n"));
    let ops = format!("127.0.0.1:{port}");
    assert_eq!(get(&ops, "/health").0, "HTTP/1.1 200 OK");
    assert!(get(&ops, "/metrics").1.contains("trent_connections_open"));
    assert_eq!(get(&ops, "/").0, "HTTP/1.1 404 Not Found");
    // The API port no longer answers them without a signature.
    let (status, body) = get(server.host(), "/metrics");
    assert!(status.starts_with("HTTP/1.1 4"), "{status}");
    assert!(body.contains("MissingAuthenticationToken"), "{body}");
}

#[tokio::test]
async fn one_json_log_line_per_request_without_secrets() {
    let server = Server::start_logging("");
    let kms = server.kms(AKID_A, SECRET_A);
    let (key_id, _) = key_and_ciphertext(&kms).await;
    let denied = server
        .kms(AKID_B, SECRET_B)
        .describe_key()
        .key_id(format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:key/{key_id}"))
        .send()
        .await;
    assert!(denied.is_err());
    let unknown = server
        .kms("AKIAUNKNOWN000000000", "nope")
        .list_keys()
        .send()
        .await;
    assert!(unknown.is_err());

    // The log is written as requests finish; wait until the last one is there.
    let mut lines = Vec::new();
    for _ in 0..50 {
        let text = std::fs::read_to_string(server.log_file()).unwrap();
        assert!(
            !text.contains(SECRET_A) && !text.contains(SECRET_B),
            "a secret was logged"
        );
        assert!(
            !text.contains("top secret plaintext") && !text.contains("dG9wIHNlY3JldCBwbGFpbnRleHQ")
        );
        lines = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "trent::request")
            .collect();
        if lines.len() >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let find = |op: &str| {
        lines
            .iter()
            .find(|l| l["operation"] == op)
            .unwrap_or_else(|| panic!("no log line for {op}: {lines:?}"))
            .clone()
    };
    let encrypt = find("Encrypt");
    assert_eq!(encrypt["service"], "kms");
    assert_eq!(encrypt["account"], ACCOUNT_A);
    assert_eq!(
        encrypt["principal"],
        format!("arn:aws:iam::{ACCOUNT_A}:root")
    );
    assert_eq!(encrypt["access_key_id"], AKID_A);
    assert_eq!(encrypt["status"], 200);
    assert_eq!(encrypt["error_code"], "");
    assert!(encrypt["latency_us"].as_u64().is_some());
    assert_eq!(encrypt["request_id"].as_str().unwrap().len(), 36);
    assert_eq!(
        encrypt["key_arn"],
        format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:key/{key_id}")
    );
    // Why it was allowed: the statement, never the policy text (issue 17).
    assert_eq!(
        encrypt["decision"],
        "allowed by key policy statement 1 (Sid \"Enable IAM User Permissions\")"
    );

    let describe = find("DescribeKey");
    assert_eq!(describe["account"], ACCOUNT_B);
    assert_eq!(describe["error_code"], "AccessDeniedException");
    assert_eq!(
        describe["decision"],
        "implicit deny: no key policy statement allows kms:DescribeKey for this caller"
    );
    // Denied, but the operator still sees which key was asked for.
    assert_eq!(
        describe["key_arn"],
        format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:key/{key_id}")
    );

    let refused = lines
        .iter()
        .find(|l| l["error_code"] == "UnrecognizedClientException")
        .expect("an authentication failure is logged");
    assert_eq!(refused["status"], 400);
}

/// `TRENT_LOG=info` logs start-up (where it listens) and a clean shutdown, each one JSON line.
#[tokio::test]
async fn start_up_and_shutdown_are_logged() {
    let mut server = Server::start_logging("");
    let kms = server.kms(AKID_A, SECRET_A);
    kms.list_keys().send().await.unwrap();
    assert!(server.terminate().success());
    let text = std::fs::read_to_string(server.log_file()).unwrap();
    let messages: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect();
    let message = |m: &str| {
        messages
            .iter()
            .position(|l| l["message"] == m)
            .unwrap_or_else(|| panic!("no {m:?} line in {text}"))
    };
    let (started, stopped) = (message("trent started"), message("trent stopped"));
    assert!(started < stopped);
    assert_eq!(messages[started]["level"], "INFO");
    let listen = messages[started]["listen"].as_str().unwrap();
    assert!(listen.starts_with("127.0.0.1:"), "{listen}");
}
