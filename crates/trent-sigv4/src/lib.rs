//! Server-side verification of AWS Signature Version 4 (`AWS4-HMAC-SHA256`), plus a small
//! client-side signer for Trent's own tools.
//!
//! # Design
//!
//! Verification is split in two steps so the server can route and look up the secret between
//! them:
//!
//! ```text
//!   request ──parse()──▶ ParsedSignature ──(server: route by service, look up secret of
//!                          (no secret)       access_key_id, check region/service, token)
//!                                                   │
//!            SigningKeyCache::get_or_derive() ◀─────┘
//!                          │ Arc<SigningKey>
//!                          ▼
//!   request ──verify(parsed, key, now)──▶ Ok(()) or SigV4Error (aws_code() + message())
//! ```
//!
//! Both the `Authorization` header form and the presigned query-string form
//! (`X-Amz-Algorithm=…&X-Amz-Signature=…`) are understood.
//!
//! What this crate does **not** do:
//! - No networking, no async, no clock: the caller passes the request parts and `now_unix`.
//! - It does not know which access keys or session tokens exist; the server looks the secret
//!   up and validates `X-Amz-Security-Token` (signed or not) against the temporary credential.
//! - It does not decide which region or service a server answers for; see
//!   [`ParsedSignature::check_scope`].
//! - No SigV4a (ECDSA), no SigV2, no `Date`-header fallback for `X-Amz-Date`, no S3 chunked
//!   (`STREAMING-…`) payloads, no auth parameters inside a form-encoded POST body.
//!
//! Secrets never reach `Debug` output or error messages: [`SigningKey`] is opaque and
//! [`ParsedSignature`]'s `Debug` redacts the session token and the signature.
//!
//! The public interface is: [`RequestParts`], [`parse`], [`ParsedSignature`], [`SigningKey`],
//! [`SigningKeyCache`], [`check_before_body`], [`verify`], [`SigV4Error`], [`AuthPart`], [`sign`], [`format_amz_date`]
//! and the constants below.

mod cache;
mod canonical;
mod error;
mod key;
mod parse;
mod sign;
mod time;
mod verify;

pub use cache::SigningKeyCache;
pub use error::{AuthPart, SigV4Error};
pub use key::SigningKey;
pub use parse::{ParsedSignature, parse};
pub use sign::sign;
pub use time::format_amz_date;
pub use verify::{check_before_body, verify};

/// The only signing algorithm this crate accepts or produces.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far `X-Amz-Date` may be from the server clock, either way, in seconds. KMS uses five
/// minutes (other AWS services use fifteen); a narrower window shortens the replay window.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

/// What the server needs from one request to verify it. Borrowed, so the HTTP layer keeps
/// ownership and nothing is copied on the hot path.
///
/// Deliberately not `Debug`: the headers hold the `Authorization` header and session token.
#[derive(Clone, Copy)]
pub struct RequestParts<'a> {
    /// The request method, signed as its upper-case name.
    pub method: &'a http::Method,
    /// Path and query as received (origin form), or the absolute form. When there is no `Host`
    /// header (HTTP/2), the authority of this URI (`:authority`) is used as the host.
    pub uri: &'a http::Uri,
    /// All request headers as received.
    pub headers: &'a http::HeaderMap,
    /// The complete request body.
    pub body: &'a [u8],
}
