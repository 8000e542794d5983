//! What a client without credentials (or a slow one) can make the server hold: connection
//! slots, time and request-body memory. Raw TCP connections play the attacker; a real AWS SDK
//! client plays the legitimate user who must keep being served.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_kms::primitives::Blob;
use common::*;

/// A server with small limits, so the test can reach them quickly.
fn small_server() -> Server {
    Server::start_with_config(
        "[limits]\nmax_connections = 60\nheader_timeout_secs = 2\nbody_timeout_secs = 2\n",
    )
}

/// The signed headers of an Encrypt request whose body is `body_len` bytes, as raw HTTP.
fn signed_request_head(
    host: &str,
    akid: &str,
    secret: &str,
    body: &[u8],
    body_len: usize,
) -> String {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.Encrypt"),
    ];
    let auth = trent_sigv4::sign(
        "POST",
        "/",
        "",
        host,
        &headers,
        body,
        akid,
        secret,
        None,
        "us-east-1",
        "kms",
        now,
    );
    let mut head = format!("POST / HTTP/1.1\r\nhost: {host}\r\ncontent-length: {body_len}\r\n");
    for (name, value) in headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .chain(auth)
    {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Reads what the server sends until it closes the connection or `wait` passes.
fn read_for(stream: &mut TcpStream, wait: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false, // timed out: still open
        }
    };
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

async fn encrypt_once(kms: &aws_sdk_kms::Client, key_id: &str) -> Result<(), String> {
    kms.encrypt()
        .key_id(key_id)
        .plaintext(Blob::new(b"still served".to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?}", e.into_service_error()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_neither_lock_out_clients_nor_stay_open() {
    let server = small_server();
    let host = server.host().to_string();
    let kms = server.kms(AKID_A, SECRET_A);
    let key_id = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;

    // More attackers than the server has connection slots: idle connections, half-sent
    // headers, and signed requests whose body never finishes.
    let mut attackers = Vec::new();
    for i in 0..90 {
        let mut stream = TcpStream::connect(&host).unwrap();
        match i % 3 {
            0 => {}
            1 => stream
                .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: applic")
                .unwrap(),
            _ => {
                let head = signed_request_head(&host, AKID_A, SECRET_A, b"{}", 2048);
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(b"{\"KeyId\":").unwrap();
            }
        }
        attackers.push((i % 3, stream));
    }

    // The legitimate client is served while every attacker is still connected. It connects
    // afresh once the server has taken in the attackers: admitting them evicts the oldest idle
    // connections, which would include a pooled connection of the set-up above, and a request
    // sent on a connection at the moment it is closed fails with a reset (a client retries
    // that; this one is asked to succeed first time).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kms = server.kms(AKID_A, SECRET_A);
    let started = Instant::now();
    for _ in 0..20 {
        encrypt_once(&kms, &key_id)
            .await
            .expect("a legitimate request under attack");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served before any attacker timed out (took {:?})",
        started.elapsed()
    );

    // Every attacker is cut off: evicted, timed out on its headers, or answered 408 for the
    // body that did not arrive.
    let mut timed_out_bodies = 0;
    for (kind, mut stream) in attackers {
        let (received, closed) = read_for(&mut stream, Duration::from_secs(6));
        assert!(closed, "attacker of kind {kind} still connected");
        if kind == 2 && received.starts_with("HTTP/1.1 408") {
            assert!(received.contains("RequestTimeoutException"), "{received}");
            timed_out_bodies += 1;
        }
    }
    assert!(timed_out_bodies > 0, "no half-sent body was answered 408");

    // And the server is still fine.
    encrypt_once(&kms, &key_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_not_waited_for_when_the_headers_already_fail() {
    let server = small_server();
    let host = server.host().to_string();
    let cases = [
        // Unknown access key.
        (
            signed_request_head(&host, "AKIAUNKNOWN000000000", "x", b"{}", 200_000),
            "UnrecognizedClientException",
        ),
        // No signature at all.
        (
            format!(
                "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: TrentService.ListKeys\r\ncontent-length: 200000\r\n\r\n"
            ),
            "MissingAuthenticationTokenException",
        ),
        // A known key, but a body over the maximum.
        (
            signed_request_head(&host, AKID_A, SECRET_A, b"{}", 300_000),
            "SerializationException",
        ),
    ];
    for (head, code) in cases {
        let mut stream = TcpStream::connect(&host).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        // Not a byte of the body is sent: the answer comes anyway, and the connection closes.
        let (received, closed) = read_for(&mut stream, Duration::from_secs(1));
        assert!(received.contains(code), "expected {code}: {received}");
        assert!(
            received.to_ascii_lowercase().contains("connection: close"),
            "{received}"
        );
        assert!(closed, "connection left open after an unread body");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_with_a_complete_body_is_served_over_raw_http() {
    // The raw requests above fail for the reasons they claim, not because of how they are
    // built: the same construction with its whole body succeeds.
    let server = small_server();
    let host = server.host().to_string();
    let kms = server.kms(AKID_A, SECRET_A);
    let key_id = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let body = format!("{{\"KeyId\":\"{key_id}\",\"Plaintext\":\"aGVsbG8=\"}}");
    let head = signed_request_head(&host, AKID_A, SECRET_A, body.as_bytes(), body.len());
    let mut stream = TcpStream::connect(&host).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let (received, _) = read_for(&mut stream, Duration::from_secs(1));
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.contains("CiphertextBlob"), "{received}");
}

/// The client preface of HTTP/2 with prior knowledge, then an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Whether the server answered the preface with an HTTP/2 SETTINGS frame (type 4).
fn answers_http2(host: &str) -> bool {
    let mut stream = TcpStream::connect(host).unwrap();
    stream.write_all(H2_PREFACE).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut frame_header = [0u8; 9];
    match stream.read_exact(&mut frame_header) {
        Ok(()) => frame_header[3] == 0x04,
        Err(_) => false,
    }
}

#[test]
fn http2_is_served_only_when_configured() {
    let http1_only = small_server();
    assert!(!answers_http2(http1_only.host()));
    let with_http2 = Server::start_with_config("[limits]\nhttp2 = true\nhttp2_max_streams = 4\n");
    assert!(answers_http2(with_http2.host()));
}
