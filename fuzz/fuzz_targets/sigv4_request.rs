//! Fuzz target: SigV4 `parse` then `check_scope` and `verify` on an arbitrary HTTP request
//! (decoded by `trent_fuzz::Request::decode`). Every outcome must be `Ok` or a typed
//! `SigV4Error` whose AWS code and message can be rendered; a panic is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trent_fuzz::{NOW_UNIX, REGION, Request, SECRET, SERVICE};
use trent_sigv4::{RequestParts, SigningKey, parse, verify};

fuzz_target!(|data: &[u8]| {
    let req = Request::decode(data);
    let parts = RequestParts {
        method: &req.method,
        uri: &req.uri,
        headers: &req.headers,
        body: &req.body,
    };
    let parsed = match parse(&parts) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = (e.aws_code(), e.message());
            return;
        }
    };
    let _ = format!("{parsed:?}");
    if let Err(e) = parsed.check_scope(REGION, SERVICE) {
        let _ = (e.aws_code(), e.message());
    }
    // Derive from the parsed scope (whatever it says) so verification runs to the HMAC compare.
    let key = SigningKey::derive(SECRET, &parsed.scope_date, &parsed.region, &parsed.service);
    match verify(&parts, &parsed, &key, NOW_UNIX) {
        Ok(()) => assert!(parsed.signed_headers.iter().any(|h| h == "host")),
        Err(e) => {
            let _ = (e.aws_code(), e.message());
        }
    }
    // Extreme clocks must not overflow.
    for now in [i64::MIN, -1, 0, i64::MAX] {
        let _ = verify(&parts, &parsed, &key, now);
    }
});
