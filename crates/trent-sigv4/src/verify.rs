//! Step 2: decide whether a parsed signature is genuine, current and covers this request.
//!
//! The checks run cheapest first, and everything that needs no HMAC (date, clock, host,
//! headers, payload hash) is checked before the signature itself.

use aws_lc_rs::constant_time::verify_slices_are_equal;

use crate::canonical::{self, CanonicalHeader};
use crate::error::SigV4Error;
use crate::time::{format_amz_date, parse_amz_date};
use crate::{MAX_CLOCK_SKEW_SECS, ParsedSignature, RequestParts, SigningKey};

/// The payload hash S3 accepts in place of the body's SHA-256.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

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
    parsed: &ParsedSignature,
    key: &SigningKey,
    now_unix: i64,
) -> Result<(), SigV4Error> {
    // `parsed`'s fields are public, so re-check what `parse` established instead of trusting it.
    let Some(signed_at) = parse_amz_date(&parsed.amz_date) else {
        return Err(SigV4Error::MalformedDate {
            date: parsed.amz_date.clone(),
        });
    };
    if parsed.amz_date.get(..8) != Some(parsed.scope_date.as_str()) {
        return Err(SigV4Error::DateScopeMismatch {
            scope_date: parsed.scope_date.clone(),
            amz_date: parsed.amz_date.clone(),
        });
    }
    check_clock(parsed, signed_at, now_unix)?;
    if !parsed.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::HostNotSigned);
    }

    let headers = signed_header_values(req, &parsed.signed_headers)?;
    let payload_hash = payload_hash(req, parsed)?;
    let query =
        canonical::canonical_query(req.uri.query().unwrap_or_default(), parsed.is_presigned());
    let creq = canonical::canonical_request(
        req.method.as_str(),
        &canonical::canonical_uri(req.uri.path(), &parsed.service),
        &query,
        &headers,
        &payload_hash,
    );
    let string_to_sign = canonical::string_to_sign(
        &parsed.amz_date,
        &parsed.scope_date,
        &parsed.region,
        &parsed.service,
        &creq,
    );
    let expected = key.signature_hex(&string_to_sign);
    verify_slices_are_equal(expected.as_bytes(), parsed.signature.as_bytes())
        .map_err(|_| SigV4Error::SignatureMismatch)
}

/// The replay window: KMS allows five minutes of skew either way. A presigned URL is instead
/// good from `X-Amz-Date` (less the skew, for clients whose clock runs ahead) until
/// `X-Amz-Date + X-Amz-Expires`.
fn check_clock(parsed: &ParsedSignature, signed_at: i64, now: i64) -> Result<(), SigV4Error> {
    let latest = now.saturating_add(MAX_CLOCK_SKEW_SECS);
    if signed_at > latest {
        return Err(SigV4Error::NotYetCurrent {
            amz_date: parsed.amz_date.clone(),
            latest: format_amz_date(latest),
            now: format_amz_date(now),
        });
    }
    match parsed.presigned.and_then(|p| p.expires) {
        Some(expires) => {
            let expired_at = signed_at.saturating_add(i64::from(expires));
            if now > expired_at {
                return Err(SigV4Error::PresignedExpired {
                    amz_date: parsed.amz_date.clone(),
                    expired_at: format_amz_date(expired_at),
                    now: format_amz_date(now),
                });
            }
        }
        None => {
            let earliest = now.saturating_sub(MAX_CLOCK_SKEW_SECS);
            if signed_at < earliest {
                return Err(SigV4Error::Expired {
                    amz_date: parsed.amz_date.clone(),
                    earliest: format_amz_date(earliest),
                    now: format_amz_date(now),
                });
            }
        }
    }
    Ok(())
}

/// The canonical value of every signed header, in `SignedHeaders` order.
fn signed_header_values<'p>(
    req: &RequestParts<'_>,
    signed_headers: &'p [String],
) -> Result<Vec<CanonicalHeader<'p>>, SigV4Error> {
    signed_headers
        .iter()
        .map(|name| {
            let mut value = Vec::new();
            let mut present = false;
            for (i, v) in req.headers.get_all(name.as_str()).iter().enumerate() {
                if i > 0 {
                    value.push(b',');
                }
                canonical::push_header_value(&mut value, v.as_bytes());
                present = true;
            }
            if !present && name == "host" {
                // HTTP/2 carries the host as `:authority`, which `http` puts in the URI.
                if let Some(authority) = authority_without_default_port(req.uri) {
                    canonical::push_header_value(&mut value, authority.as_bytes());
                    present = true;
                }
            }
            if present {
                Ok(CanonicalHeader {
                    name: name.as_str(),
                    value,
                })
            } else {
                Err(SigV4Error::MissingSignedHeader { name: name.clone() })
            }
        })
        .collect()
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
fn payload_hash(req: &RequestParts<'_>, parsed: &ParsedSignature) -> Result<String, SigV4Error> {
    let body_hash = canonical::sha256_hex(req.body);
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
            return Ok(UNSIGNED_PAYLOAD.to_owned());
        }
        return Ok(body_hash);
    };
    let declared = String::from_utf8_lossy(declared.as_bytes());
    let declared = declared.trim_matches([' ', '\t']);
    if declared.eq_ignore_ascii_case(&body_hash) {
        Ok(declared.to_owned())
    } else if declared == UNSIGNED_PAYLOAD && is_s3 {
        Ok(UNSIGNED_PAYLOAD.to_owned())
    } else if declared == UNSIGNED_PAYLOAD || declared.starts_with("STREAMING-") {
        Err(SigV4Error::UnsignedPayloadNotAllowed {
            value: declared.to_owned(),
        })
    } else {
        Err(SigV4Error::ContentSha256Mismatch)
    }
}
