//! The web console's files through the real router: `/console/` and its assets are served
//! without a signature, with the strict security headers, and nothing else under `/console/`
//! (or outside it) changes — the API still refuses unsigned requests.

#![allow(
    clippy::expect_used,
    reason = "test code: a failed expect is a failed test"
)]

use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use tower::ServiceExt;
use trent_core::memory_store::MemoryStore;
use trent_core::{Kms, SystemClock};
use trent_crypto::RootKey;
use trent_server::AppState;

async fn router() -> axum::Router {
    let (root, _) = RootKey::generate().expect("root key");
    let kms = Kms::open(
        Arc::new(MemoryStore::new()),
        root,
        Arc::new(SystemClock::default()),
    )
    .await
    .expect("kms");
    trent_server::router(Arc::new(AppState::new(Arc::new(kms), false)))
}

async fn get(router: &axum::Router, method: Method, path: &str) -> http::Response<Body> {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("request");
    router.clone().oneshot(request).await.expect("response")
}

fn header<'a>(response: &'a http::Response<Body>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn assert_security_headers(response: &http::Response<Body>) {
    let csp = header(response, "content-security-policy");
    assert_eq!(csp, trent_server::console::CONTENT_SECURITY_POLICY);
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp} lacks {part}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(header(response, "x-frame-options"), "DENY");
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
}

async fn body_text(response: http::Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn the_console_page_and_assets_are_served_with_security_headers() {
    let router = router().await;
    let page = get(&router, Method::GET, "/console/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers(&page);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    let html = body_text(page).await;
    // No inline script or style: the page only loads its files.
    assert!(html.contains(r#"<script type="module" src="app.js"></script>"#));
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains("<style") && !html.contains("style="));

    for (asset, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("sigv4.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
    ] {
        let response = get(&router, Method::GET, &format!("/console/{asset}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert_security_headers(&response);
        assert_eq!(header(&response, "content-type"), content_type);
        assert!(!body_text(response).await.is_empty());
    }
}

#[tokio::test]
async fn unknown_console_paths_and_other_methods_are_refused() {
    let router = router().await;
    let missing = get(&router, Method::GET, "/console/../credentials").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&missing);
    let missing = get(&router, Method::GET, "/console/nope.js").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let post = get(&router, Method::POST, "/console/").await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bare = get(&router, Method::GET, "/console").await;
    assert_eq!(bare.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(header(&bare, "location"), "/console/");
    // The API itself still wants a signature.
    let api = get(&router, Method::POST, "/").await;
    assert_eq!(api.status(), StatusCode::BAD_REQUEST);
    assert!(body_text(api).await.contains("MissingAuthenticationToken"));
}
