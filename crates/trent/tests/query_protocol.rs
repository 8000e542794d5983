//! End to end: the Query protocol (IAM, STS) refuses requests that do not mean one thing — a
//! parameter given twice, list member indices out of 1..=1000 or with gaps — with AWS's
//! common `InvalidQueryParameter` (400), through the real server with hand-signed requests
//! (an SDK would never send them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// Posts a form `body` to IAM (or STS), signed as account A's root; (status, XML body).
async fn post(server: &Server, service: &str, body: &str) -> (u16, String) {
    let host = server.endpoint.trim_start_matches("http://").to_string();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let mut req = hyper::Request::post("/")
        .header("host", &host)
        .header("content-type", content_type);
    for (k, v) in trent_sigv4::sign(
        "POST",
        "/",
        "",
        &host,
        &[("content-type", content_type)],
        body.as_bytes(),
        AKID_A,
        SECRET_A,
        None,
        "us-east-1",
        service,
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
        .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn ambiguous_query_requests_are_refused() {
    let server = Server::start();
    let (status, xml) = post(&server, "iam", "Action=ListUsers&Version=2010-05-08").await;
    assert_eq!(status, 200, "{xml}");

    for (service, body) in [
        // The attack: a second Action (which one would run?).
        (
            "iam",
            "Action=ListUsers&Version=2010-05-08&Action=CreateUser&UserName=mallory",
        ),
        (
            "iam",
            "Action=GetUser&Version=2010-05-08&UserName=a&UserName=b",
        ),
        (
            "iam",
            "Action=CreateUser&Version=2010-05-08&UserName=mallory&Tags.member.99999999.Key=k&Tags.member.99999999.Value=v",
        ),
        (
            "iam",
            "Action=CreateUser&Version=2010-05-08&UserName=mallory&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.3.Key=c&Tags.member.3.Value=3",
        ),
        (
            "sts",
            "Action=GetCallerIdentity&Version=2011-06-15&Action=GetSessionToken",
        ),
    ] {
        let (status, xml) = post(&server, service, body).await;
        assert_eq!(status, 400, "{body}: {xml}");
        assert!(
            xml.contains("<Code>InvalidQueryParameter</Code>"),
            "{body}: {xml}"
        );
    }
    // Nothing was created by the refused requests.
    let (_, xml) = post(
        &server,
        "iam",
        "Action=GetUser&Version=2010-05-08&UserName=mallory",
    )
    .await;
    assert!(xml.contains("NoSuchEntity"), "{xml}");
}
