//! Robustness of `parse` and `verify` on untrusted requests (the stable-toolchain companion of
//! `fuzz/fuzz_targets/sigv4_request.rs`, run by CI): arbitrary `Authorization` headers, dates,
//! query strings and paths, and mutations of validly signed requests, never panic; every
//! failure is a typed [`SigV4Error`] with an AWS code and a message; a changed body or a changed
//! signed header never verifies.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use proptest::prelude::*;
use trent_sigv4::{RequestParts, SigV4Error, SigningKey, parse, sign, verify};

const AKID: &str = "AKIDROBUSTNESS000001";
const SECRET: &str = "robustnessEXAMPLEsecret/K7MDENG+bPxRfiCY";
/// 2026-11-23T01:00:00Z.
const NOW: i64 = 1_795_395_600;
const HOST: &str = "127.0.0.1:8080";

struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// A KMS request signed by `trent_sigv4::sign` at [`NOW`].
fn signed(body: &[u8], query: &str) -> Req {
    let extra = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.Encrypt"),
    ];
    let auth = sign(
        "POST",
        "/",
        query,
        HOST,
        &extra,
        body,
        AKID,
        SECRET,
        None,
        "us-east-1",
        "kms",
        NOW,
    );
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static(HOST));
    for (name, value) in extra {
        headers.insert(name, HeaderValue::from_static(value));
    }
    for (name, value) in auth {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    let uri = if query.is_empty() {
        Uri::from_static("/")
    } else {
        format!("/?{query}").parse().unwrap()
    };
    Req {
        method: Method::POST,
        uri,
        headers,
        body: body.to_vec(),
    }
}

/// Runs the server's sequence (parse, derive the key from the parsed scope, verify) and checks
/// that every error is typed and renders. Returns whether the request verified.
fn check(req: &Req) -> Result<(), SigV4Error> {
    let result = parse(&req.parts()).and_then(|parsed| {
        let _ = format!("{parsed:?}");
        let _ = parsed.check_scope("us-east-1", "kms");
        let key = SigningKey::derive(SECRET, &parsed.scope_date, &parsed.region, &parsed.service);
        for now in [i64::MIN, 0, i64::MAX] {
            let _ = verify(&req.parts(), &parsed, &key, now);
        }
        verify(&req.parts(), &parsed, &key, NOW)
    });
    if let Err(e) = &result {
        assert!(!e.aws_code().is_empty());
        assert!(!e.message().is_empty());
    }
    result
}

/// Header-value text mixing SigV4 tokens, separators and arbitrary characters.
fn auth_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("AWS4-HMAC-SHA256".to_owned()),
        Just("Credential=".to_owned()),
        Just("SignedHeaders=".to_owned()),
        Just("Signature=".to_owned()),
        Just("/".to_owned()),
        Just(",".to_owned()),
        Just(" ".to_owned()),
        Just("=".to_owned()),
        Just(";".to_owned()),
        Just("aws4_request".to_owned()),
        Just("20261123".to_owned()),
        Just("host".to_owned()),
        "[ -~]{0,12}",
        // Non-ASCII reaches the header as obs-text bytes.
        "\\PC{0,3}",
    ];
    prop::collection::vec(token, 0..16).prop_map(|parts| parts.concat())
}

fn query_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("X-Amz-Algorithm=".to_owned()),
        Just("X-Amz-Credential=".to_owned()),
        Just("X-Amz-Signature=".to_owned()),
        Just("X-Amz-SignedHeaders=".to_owned()),
        Just("X-Amz-Date=".to_owned()),
        Just("X-Amz-Expires=".to_owned()),
        Just("X-Amz-Security-Token=".to_owned()),
        Just("AWS4-HMAC-SHA256".to_owned()),
        Just("20261123T010000Z".to_owned()),
        Just("&".to_owned()),
        Just("%".to_owned()),
        Just("%2F".to_owned()),
        Just("+".to_owned()),
        "[a-zA-Z0-9=&%+._~-]{0,10}",
    ];
    prop::collection::vec(token, 0..14).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn arbitrary_header_form_never_panics(
        auth in auth_text(),
        date in prop_oneof![Just("20261123T010000Z".to_owned()), "[0-9TZ]{0,18}"],
        token in prop::option::of("[ -~]{0,20}"),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut req = signed(b"{}", "");
        if let Ok(v) = HeaderValue::from_bytes(auth.as_bytes()) {
            req.headers.insert("authorization", v);
        }
        req.headers.insert("x-amz-date", HeaderValue::from_str(&date).unwrap());
        if let Some(token) = token.and_then(|t| HeaderValue::from_str(&t).ok()) {
            req.headers.insert("x-amz-security-token", token);
        }
        req.body = body;
        // A random Authorization header cannot carry our HMAC.
        prop_assert!(check(&req).is_err());
    }

    #[test]
    fn arbitrary_presigned_query_and_path_never_panic(
        query in query_text(),
        path in "(/|\\.|\\.\\.|%2F|%|[a-z]){0,12}",
    ) {
        let Ok(uri) = format!("/{path}?{query}").parse::<Uri>() else {
            return Ok(());
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static(HOST));
        let req = Req { method: Method::GET, uri, headers, body: Vec::new() };
        prop_assert!(check(&req).is_err());
    }

    #[test]
    fn mutated_authorization_never_panics(
        at in any::<prop::sample::Index>(),
        replacement in prop_oneof![Just(' '), Just(','), Just('='), Just('/'), Just(';'), "[ -~]".prop_map(|s| s.chars().next().unwrap())],
        delete in any::<bool>(),
    ) {
        let mut req = signed(br#"{"KeyId":"alias/a","Plaintext":"eA=="}"#, "");
        prop_assert!(check(&req).is_ok());
        let auth = req.headers["authorization"].to_str().unwrap().to_owned();
        let mut chars: Vec<char> = auth.chars().collect();
        let i = at.index(chars.len());
        if delete {
            chars.remove(i);
        } else {
            chars[i] = replacement;
        }
        let mutated: String = chars.into_iter().collect();
        req.headers.insert("authorization", HeaderValue::from_str(&mutated).unwrap());
        // Some edits are harmless (an extra space or comma between components); the rest fail typed.
        let _ = check(&req);
    }

    #[test]
    fn changed_body_or_signed_header_never_verifies(
        body in prop::collection::vec(any::<u8>(), 0..64),
        other_body in prop::collection::vec(any::<u8>(), 0..64),
        target in "[A-Za-z.]{1,20}",
        query in "[a-z]{1,5}=[a-z0-9]{0,5}",
    ) {
        let req = signed(&body, &query);
        prop_assert!(check(&req).is_ok());

        let mut changed = signed(&body, &query);
        changed.body = other_body.clone();
        if other_body != body {
            prop_assert!(matches!(check(&changed), Err(SigV4Error::SignatureMismatch)));
        }

        let mut changed = signed(&body, &query);
        changed.headers.insert("x-amz-target", HeaderValue::from_str(&target).unwrap());
        if target != "TrentService.Encrypt" {
            prop_assert!(matches!(check(&changed), Err(SigV4Error::SignatureMismatch)));
        }

        if query != "other=1" {
            let mut changed = signed(&body, &query);
            changed.uri = "/?other=1".parse().unwrap();
            prop_assert!(matches!(check(&changed), Err(SigV4Error::SignatureMismatch)));
        }
    }
}
