//! Step 2: decide whether a parsed signature is genuine, current and covers this request.
//!
//! The checks run cheapest first, and everything that needs no HMAC (date, clock, host,
//! headers, payload hash) is checked before the signature itself.

use aws_lc_rs::constant_time::verify_slices_are_equal;

use std::borrow::Cow;

use crate::canonical::{self, ByteSink};
use crate::error::SigV4Error;
use crate::time::{format_amz_date, parse_amz_date};
use crate::{MAX_CLOCK_SKEW_SECS, ParsedSignature, RequestParts, SigningKey};

/// The payload hash S3 accepts in place of the body's SHA-256.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The checks [`verify`] makes that need neither the body nor the secret: `X-Amz-Date`
/// well-formed and on the scope date, within the replay window, `host` and every header that
/// selects the operation signed. A server runs them as soon as the headers have arrived, so a
/// request that cannot succeed is refused before its body is read; [`verify`] repeats them.
pub fn check_before_body(
    req: &RequestParts<'_>,
    parsed: &ParsedSignature<'_>,
    now_unix: i64,
) -> Result<(), SigV4Error> {
    // `parsed`'s fields are public, so re-check what `parse` established instead of trusting it.
    let signed_at = match parse_amz_date(&parsed.amz_date) {
        Some(t) if t == parsed.signed_at => t,
        _ => {
            return Err(SigV4Error::MalformedDate {
                date: parsed.amz_date.clone().into_owned(),
            });
        }
    };
    if parsed.amz_date.get(..8) != Some(&*parsed.scope_date) {
        return Err(SigV4Error::DateScopeMismatch {
            scope_date: parsed.scope_date.clone().into_owned(),
            amz_date: parsed.amz_date.clone().into_owned(),
        });
    }
    check_clock(parsed, signed_at, now_unix)?;
    if !parsed.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::HostNotSigned);
    }
    check_operation_headers_signed(req, parsed)
}

/// Verifies `req` against `parsed` (from [`parse`](crate::parse) of the same request) with the
/// signing key derived from the caller's stored secret. `now_unix` is the server clock in
/// seconds since the epoch.
///
/// Checks, in order: `X-Amz-Date` well-formed and on the scope date; within ±5 minutes of now
/// (presigned: not before `X-Amz-Date` − 5 min, not after `X-Amz-Date + X-Amz-Expires`);
/// `host` signed; every signed header present; `x-amz-content-sha256`, if signed, matches the
/// body; the signature, compared in constant time.
///
/// Not checked here: whether the scope's region and service are this server's
/// ([`ParsedSignature::check_scope`]) and whether the security token is valid (the server's
/// credential store).
pub fn verify(
    req: &RequestParts<'_>,
    parsed: &ParsedSignature<'_>,
    key: &SigningKey,
    now_unix: i64,
) -> Result<(), SigV4Error> {
    check_before_body(req, parsed, now_unix)?;

    // The canonical request is fed to SHA-256 as it is produced and the string to sign to the
    // HMAC piece by piece: nothing is built. The signature is compared as raw bytes.
    let mut creq = canonical::Hashing::new();
    creq.extend_from_slice(req.method.as_str().as_bytes());
    creq.push(b'\n');
    canonical::push_canonical_uri(&mut creq, req.uri.path(), &parsed.service);
    creq.push(b'\n');
    if let Some(query) = req.uri.query().filter(|q| !q.is_empty()) {
        creq.extend_from_slice(canonical::canonical_query(query, parsed.is_presigned()).as_bytes());
    }
    creq.push(b'\n');
    push_signed_headers(&mut creq, req, &parsed.signed_headers)?;
    creq.push(b'\n');
    for (i, name) in parsed.signed_headers.iter().enumerate() {
        if i > 0 {
            creq.push(b';');
        }
        creq.extend_from_slice(name.as_bytes());
    }
    creq.push(b'\n');
    push_payload_hash(&mut creq, req, parsed)?;

    let creq_hash = creq.finish_hex();
    let expected = key.signature(&[
        crate::ALGORITHM.as_bytes(),
        b"\n",
        parsed.amz_date.as_bytes(),
        b"\n",
        parsed.scope_date.as_bytes(),
        b"/",
        parsed.region.as_bytes(),
        b"/",
        parsed.service.as_bytes(),
        b"/aws4_request\n",
        &creq_hash,
    ]);
    // SigV4 signatures are lower-case hex; anything else cannot match.
    let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    let mut sent = [0u8; 32];
    if !parsed.signature.as_bytes().iter().all(lower_hex)
        || hex::decode_to_slice(parsed.signature.as_bytes(), &mut sent).is_err()
    {
        return Err(SigV4Error::SignatureMismatch);
    }
    verify_slices_are_equal(expected.as_ref(), &sent).map_err(|_| SigV4Error::SignatureMismatch)
}

/// Every header that selects or changes what the request does — `content-type` and any
/// `x-amz-*` (`x-amz-target`, `x-amz-date`, …) — must be signed, as AWS requires, so a captured
/// signature cannot be replayed with another operation. Every SDK signs them. The one
/// exception is `x-amz-security-token`, which AWS's own test suite adds after signing
/// (`post-sts-header-after`): it selects nothing, and is checked against the credential.
fn check_operation_headers_signed(
    req: &RequestParts<'_>,
    parsed: &ParsedSignature<'_>,
) -> Result<(), SigV4Error> {
    for name in req.headers.keys() {
        let name = name.as_str();
        let binding = name == "content-type"
            || (name.starts_with("x-amz-") && name != "x-amz-security-token");
        if binding && !parsed.signed_headers.iter().any(|h| h == name) {
            return Err(SigV4Error::HeaderNotSigned {
                name: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// The replay window: KMS allows five minutes of skew either way. A presigned URL is instead
/// good from `X-Amz-Date` (less the skew, for clients whose clock runs ahead) until
/// `X-Amz-Date + X-Amz-Expires`.
fn check_clock(parsed: &ParsedSignature<'_>, signed_at: i64, now: i64) -> Result<(), SigV4Error> {
    let latest = now.saturating_add(MAX_CLOCK_SKEW_SECS);
    if signed_at > latest {
        return Err(SigV4Error::NotYetCurrent {
            amz_date: parsed.amz_date.clone().into_owned(),
            latest: format_amz_date(latest),
            now: format_amz_date(now),
        });
    }
    match parsed.presigned.and_then(|p| p.expires) {
        Some(expires) => {
            let expired_at = signed_at.saturating_add(i64::from(expires));
            if now > expired_at {
                return Err(SigV4Error::PresignedExpired {
                    amz_date: parsed.amz_date.clone().into_owned(),
                    expired_at: format_amz_date(expired_at),
                    now: format_amz_date(now),
                });
            }
        }
        None => {
            let earliest = now.saturating_sub(MAX_CLOCK_SKEW_SECS);
            if signed_at < earliest {
                return Err(SigV4Error::Expired {
                    amz_date: parsed.amz_date.clone().into_owned(),
                    earliest: format_amz_date(earliest),
                    now: format_amz_date(now),
                });
            }
        }
    }
    Ok(())
}

/// `name:value\n` for every signed header, in `SignedHeaders` order, canonical values.
fn push_signed_headers(
    out: &mut canonical::Hashing,
    req: &RequestParts<'_>,
    signed_headers: &[Cow<'_, str>],
) -> Result<(), SigV4Error> {
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut present = false;
        for (i, v) in req.headers.get_all(&**name).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            canonical::push_header_value(out, v.as_bytes());
            present = true;
        }
        if !present && name == "host" {
            // HTTP/2 carries the host as `:authority`, which `http` puts in the URI.
            if let Some(authority) = authority_without_default_port(req.uri) {
                canonical::push_header_value(out, authority.as_bytes());
                present = true;
            }
        }
        if !present {
            return Err(SigV4Error::MissingSignedHeader {
                name: name.clone().into_owned(),
            });
        }
        out.push(b'\n');
    }
    Ok(())
}

/// The URI's authority as a client's signer would have written the host: SDKs leave out the
/// scheme's default port (`:443`, `:80`) even when the connection URL names it.
fn authority_without_default_port(uri: &http::Uri) -> Option<&str> {
    let authority = uri.authority()?;
    let default_port = match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    if authority.port_u16().is_some() && authority.port_u16() == default_port {
        Some(authority.host())
    } else {
        Some(authority.as_str())
    }
}

/// The payload hash line of the canonical request. Normally the hex SHA-256 of the body; if the
/// client signed an `x-amz-content-sha256` header, its value, after checking that it really is
/// the body's hash (`UNSIGNED-PAYLOAD` only for S3; `STREAMING-…` never).
fn push_payload_hash(
    out: &mut canonical::Hashing,
    req: &RequestParts<'_>,
    parsed: &ParsedSignature<'_>,
) -> Result<(), SigV4Error> {
    let mut body_hash = [0u8; 64];
    canonical::sha256_hex_into(req.body, &mut body_hash);
    let is_s3 = parsed.service == "s3";
    let declared = parsed
        .signed_headers
        .iter()
        .any(|h| h == "x-amz-content-sha256")
        .then(|| req.headers.get("x-amz-content-sha256"))
        .flatten();
    let Some(declared) = declared else {
        // S3 presigned URLs sign the literal UNSIGNED-PAYLOAD; every other service the body.
        if is_s3 && parsed.is_presigned() {
            out.extend_from_slice(UNSIGNED_PAYLOAD.as_bytes());
        } else {
            out.extend_from_slice(&body_hash);
        }
        return Ok(());
    };
    let declared = String::from_utf8_lossy(declared.as_bytes());
    let declared = declared.trim_matches([' ', '\t']);
    if declared.as_bytes().eq_ignore_ascii_case(&body_hash) {
        out.extend_from_slice(declared.as_bytes());
        Ok(())
    } else if declared == UNSIGNED_PAYLOAD && is_s3 {
        out.extend_from_slice(UNSIGNED_PAYLOAD.as_bytes());
        Ok(())
    } else if declared == UNSIGNED_PAYLOAD || declared.starts_with("STREAMING-") {
        Err(SigV4Error::UnsignedPayloadNotAllowed {
            value: declared.to_owned(),
        })
    } else {
        Err(SigV4Error::ContentSha256Mismatch)
    }
}
