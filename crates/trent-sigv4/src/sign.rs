//! A minimal client-side signer for Trent's own tools (the load generator), built on the same
//! canonicalisation code the verifier uses.

use crate::canonical::{self, CanonicalHeader};
use crate::time::format_amz_date;
use crate::{ALGORITHM, SigningKey};

/// Headers taken from the caller's list and signed when present (besides `host`,
/// `x-amz-date` and `x-amz-security-token`, which `sign` supplies itself).
const SIGNED_FROM_CALLER: [&str; 2] = ["content-type", "x-amz-target"];

/// Produces the headers a client adds to sign a request: `x-amz-date`, then
/// `x-amz-security-token` if `session_token` is given, then `authorization`.
///
/// `path` and `query` are as they will go on the wire (already percent-encoded; `query`
/// without `?`). Signs `host` (from `host`), `x-amz-date` (from `now_unix`),
/// `x-amz-security-token`, and `content-type` and `x-amz-target` if `headers` has them (names
/// matched case-insensitively). Other entries of `headers`, including any `host` or
/// `x-amz-date`, are not signed. Matches what the AWS SDK's signer produces for the same
/// header set.
#[expect(
    clippy::too_many_arguments,
    reason = "the signature fixed by the project's API brief; every argument is a distinct input of SigV4"
)]
pub fn sign(
    method: &str,
    path: &str,
    query: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
    region: &str,
    service: &str,
    now_unix: i64,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(now_unix);
    let scope_date = amz_date.get(..8).unwrap_or_default();

    let mut values: Vec<(&str, &str)> = vec![("host", host), ("x-amz-date", &amz_date)];
    if let Some(token) = session_token {
        values.push(("x-amz-security-token", token));
    }
    for wanted in SIGNED_FROM_CALLER {
        // Several entries with one name are joined with ',' like repeated headers.
        let mut found = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(wanted));
        if let Some(&(_, first)) = found.next() {
            values.push((wanted, first));
            values.extend(found.map(|&(_, v)| (wanted, v)));
        }
    }
    values.sort_by_key(|&(name, _)| name);

    let mut canonical_headers: Vec<CanonicalHeader<'_>> = Vec::with_capacity(values.len());
    for (name, value) in values {
        match canonical_headers.last_mut() {
            Some(last) if last.name == name => {
                last.value.push(b',');
                canonical::push_header_value(&mut last.value, value.as_bytes());
            }
            _ => {
                let mut canon = Vec::with_capacity(value.len());
                canonical::push_header_value(&mut canon, value.as_bytes());
                canonical_headers.push(CanonicalHeader { name, value: canon });
            }
        }
    }
    let signed_headers = canonical_headers
        .iter()
        .map(|h| h.name)
        .collect::<Vec<_>>()
        .join(";");

    let creq = canonical::canonical_request(
        method,
        &canonical::canonical_uri(path, service),
        &canonical::canonical_query(query, false),
        &canonical_headers,
        &canonical::sha256_hex(body),
    );
    let string_to_sign = canonical::string_to_sign(&amz_date, scope_date, region, service, &creq);
    let signature = SigningKey::derive(secret_access_key, scope_date, region, service)
        .signature_hex(&string_to_sign);

    let mut out = vec![("x-amz-date".to_owned(), amz_date.clone())];
    if let Some(token) = session_token {
        out.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    out.push((
        "authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={access_key_id}/{scope_date}/{region}/{service}/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
        ),
    ));
    out
}
