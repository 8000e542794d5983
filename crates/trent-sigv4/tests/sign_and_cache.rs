//! The client-side `sign` must agree byte for byte with the AWS SDK's signer and pass `verify`;
//! the signing-key cache must return the right key and stay bounded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions: a failed unwrap is a failed test"
)]

mod common;

use std::sync::Arc;

use common::*;
use http::{HeaderMap, HeaderValue, Method, Uri};
use trent_sigv4::{SigningKeyCache, sign};

/// Signs with `trent_sigv4::sign` and builds the request the load tool would send.
fn trent_signed(
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    token: Option<&str>,
    service: &'static str,
    now: i64,
) -> (Req, Vec<(String, String)>) {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let host = "kms.us-east-1.amazonaws.com";
    let added = sign(
        "POST",
        path,
        query,
        host,
        headers,
        body,
        AKID,
        SECRET,
        token,
        "us-east-1",
        service,
        now,
    );
    let mut map = HeaderMap::new();
    map.insert("host", HeaderValue::from_static(host));
    for (name, value) in headers
        .iter()
        .copied()
        .chain(added.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let req = Req {
        method: Method::POST,
        uri: path_and_query.parse::<Uri>().unwrap(),
        headers: map,
        body: body.to_vec(),
    };
    (req, added)
}

fn oracle_headers(
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    token: Option<&str>,
    service: &'static str,
    now: i64,
) -> Req {
    aws_sign(&Spec {
        url: format!("https://kms.us-east-1.amazonaws.com{path_and_query}"),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_vec(),
        token: token.map(str::to_owned),
        service,
        time: now,
        ..kms_spec()
    })
}

#[test]
fn sign_matches_aws_sigv4_byte_for_byte() {
    let body = br#"{"KeyId":"alias/trent-test","Plaintext":"aGVsbG8="}"#;
    let kms_headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.Encrypt"),
    ];
    for (path, headers, token, service) in [
        ("/", &kms_headers[..], None, "kms"),
        ("/", &kms_headers[..], Some(TOKEN), "kms"),
        ("/", &kms_headers[..1], Some(TOKEN), "sts"),
        ("/", &[][..], None, "kms"),
        (
            "/a%3Ab/./c//?z=1&a=x%20y&k",
            &kms_headers[..],
            None,
            "lambda",
        ),
    ] {
        let (_, ours) = trent_signed(path, headers, body, token, service, T0 + 12_345);
        let theirs = oracle_headers(path, headers, body, token, service, T0 + 12_345);
        let ours_get = |name: &str| ours.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(
            ours_get("authorization").unwrap(),
            theirs.header("authorization"),
            "{path} {service}"
        );
        assert_eq!(ours_get("x-amz-date").unwrap(), theirs.header("x-amz-date"));
        assert_eq!(ours_get("x-amz-security-token").as_deref(), token);
    }
}

#[test]
fn sign_output_verifies() {
    let body = b"{}";
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "TrentService.ListKeys"),
        ("User-Agent", "trent-load/0.1"),
    ];
    let (req, added) = trent_signed("/", &headers, body, Some(TOKEN), "kms", T0);
    assert_eq!(
        added.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["x-amz-date", "x-amz-security-token", "authorization"]
    );
    let parsed = check(&req, T0 + 60).unwrap();
    assert_eq!(
        parsed.signed_headers,
        [
            "content-type",
            "host",
            "x-amz-date",
            "x-amz-security-token",
            "x-amz-target"
        ]
    );
    assert_eq!(parsed.security_token.as_deref(), Some(TOKEN));

    // And a tampered copy does not.
    let (mut req, _) = trent_signed("/", &headers, body, None, "kms", T0);
    req.body = b"{ }".to_vec();
    assert!(check(&req, T0).is_err());
}

#[test]
fn cache_returns_one_key_per_scope_and_secret() {
    let cache = SigningKeyCache::new(16);
    assert!(cache.is_empty());
    let parsed = check(&aws_sign(&kms_spec()), T0).unwrap();

    let owner = Arc::new(SECRET);
    let a = cache.get_or_derive(&owner, SECRET, &parsed);
    let b = cache.get_or_derive(&owner, SECRET, &parsed);
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(cache.len(), 1);

    // The cached key verifies the request.
    let req = aws_sign(&kms_spec());
    trent_sigv4::verify(&req.parts(), &parsed, &a, T0).unwrap();

    // A rotated secret for the same access key (a new owner) must not reuse the old key.
    let rotated_owner = Arc::new("rotated-secret");
    let rotated = cache.get_or_derive(&rotated_owner, "rotated-secret", &parsed);
    assert!(!Arc::ptr_eq(&a, &rotated));
    assert_eq!(
        trent_sigv4::verify(&req.parts(), &parsed, &rotated, T0).unwrap_err(),
        trent_sigv4::SigV4Error::SignatureMismatch
    );
    assert_eq!(cache.len(), 1, "the old owner's keys are gone");
    let back = cache.get_or_derive(&owner, SECRET, &parsed);
    assert!(
        !Arc::ptr_eq(&a, &back),
        "re-derived: the rotated owner replaced it"
    );
    trent_sigv4::verify(&req.parts(), &parsed, &back, T0).unwrap();

    // Another day, region or service is another key.
    for spec in [
        Spec {
            time: T0 + 86_400,
            ..kms_spec()
        },
        Spec {
            region: "eu-west-1",
            ..kms_spec()
        },
        Spec {
            service: "sts",
            ..kms_spec()
        },
    ] {
        let other = check(&aws_sign(&spec), spec.time).unwrap();
        let key = cache.get_or_derive(&owner, SECRET, &other);
        assert!(!Arc::ptr_eq(&a, &key));
        trent_sigv4::verify(&aws_sign(&spec).parts(), &other, &key, spec.time).unwrap();
    }
    assert_eq!(cache.len(), 4);
    assert!(!format!("{cache:?}").contains(SECRET));
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn cache_stays_bounded() {
    let cache = SigningKeyCache::new(3);
    let parsed = check(&aws_sign(&kms_spec()), T0).unwrap();
    for i in 0..10 {
        let mut other = parsed.clone();
        other.access_key_id = format!("AKIDEXAMPLE{i}").into();
        cache.get_or_derive(&Arc::new(i), SECRET, &other);
        assert!(cache.len() <= 3, "len {}", cache.len());
    }
    let disabled = SigningKeyCache::new(0);
    let owner = Arc::new(0);
    let a = disabled.get_or_derive(&owner, SECRET, &parsed);
    let b = disabled.get_or_derive(&owner, SECRET, &parsed);
    assert!(!Arc::ptr_eq(&a, &b));
    assert_eq!(disabled.len(), 0);
}

#[test]
fn cache_is_shared_across_threads() {
    let cache = Arc::new(SigningKeyCache::new(64));
    let owner = Arc::new(SECRET);
    let parsed = check(&aws_sign(&kms_spec()), T0).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cache = Arc::clone(&cache);
            let parsed = parsed.clone();
            let owner = Arc::clone(&owner);
            std::thread::spawn(move || {
                let req = aws_sign(&kms_spec());
                for _ in 0..50 {
                    let key = cache.get_or_derive(&owner, SECRET, &parsed);
                    trent_sigv4::verify(&req.parts(), &parsed, &key, T0).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(cache.len(), 1);
}
