//! The web console: static files under `/console/`, served on the API port without
//! authentication.
//!
//! The console is a client of the public AWS API only. Its pages sign every request in the
//! browser with the user's own access key (SigV4, WebCrypto) and send it to `POST /` like any
//! SDK, so it can never do what the user's policies do not allow; this module only hands out
//! the files. They are plain ES modules and CSS committed in `crates/trent-server/console/`
//! and embedded in the binary (no build step, nothing read from disk at run time).
//!
//! Every answer carries strict security headers: a Content-Security-Policy that allows only
//! this origin's scripts, styles and connections (no inline script or style, no framing), and
//! the headers that stop MIME sniffing, framing and referrer leaks. The console handles
//! secrets (the user's secret access key), so nothing else may run in its origin's pages.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, Uri, header};

/// Where the console lives.
pub const PREFIX: &str = "/console/";

/// The Content-Security-Policy of every console response. `connect-src 'self'`: the pages
/// talk only to this server's API; `frame-ancestors 'none'`: no clickjacking; no
/// `'unsafe-inline'` anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The embedded files: name under `/console/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_bytes!("../console/index.html"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/console.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/app.js"),
    ),
    (
        "aws.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/aws.js"),
    ),
    (
        "sigv4.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/sigv4.js"),
    ),
    (
        "policy.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/policy.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/pages.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/ui.js"),
    ),
];

/// The answer to a console request, or `None` when `uri` is not under the console (then the
/// request goes on to the signed API).
pub fn answer(method: &Method, uri: &Uri) -> Option<Response> {
    let path = uri.path();
    if path != "/console" && !path.starts_with(PREFIX) {
        return None;
    }
    // Only reads: a POST to /console/… is not an API call either, so it ends here.
    if method != Method::GET && method != Method::HEAD {
        return Some(with_headers(
            (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response(),
            "text/plain; charset=utf-8",
        ));
    }
    if path == "/console" {
        let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
        response
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static(PREFIX));
        return Some(with_headers(response, "text/plain; charset=utf-8"));
    }
    let name = path.strip_prefix(PREFIX).unwrap_or_default();
    let found = ASSETS.iter().find(|(asset, _, _)| *asset == name);
    Some(match found {
        Some((_, content_type, bytes)) => {
            with_headers((StatusCode::OK, *bytes).into_response(), content_type)
        }
        None => with_headers(
            (StatusCode::NOT_FOUND, "not found\n").into_response(),
            "text/plain; charset=utf-8",
        ),
    })
}

fn with_headers(mut response: Response, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    let pairs: [(header::HeaderName, &'static str); 9] = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        // The files change with the binary; revalidating is cheap and never serves a stale
        // script against a newer server.
        (header::CACHE_CONTROL, "no-cache"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
    ];
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
