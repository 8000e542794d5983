//! Step 1: find the signature in a request and parse it, before any secret is known.
//!
//! Checks here are structural only (parts present, credential shape, date format). Whether the
//! request is genuine, current and addressed to this server is decided in
//! [`verify`](crate::verify) and by the server with [`ParsedSignature::check_scope`].

use std::borrow::Cow;

use http::header::AUTHORIZATION;

use crate::canonical::query_pairs;
use crate::error::{AuthPart, SigV4Error};
use crate::time::parse_amz_date;
use crate::{ALGORITHM, RequestParts};

/// The longest `X-Amz-Expires` AWS accepts: seven days.
const MAX_EXPIRES_SECS: u32 = 604_800;

/// The credential scope and signature metadata of one request.
///
/// Its text borrows from the request wherever the request holds it as is (the common header
/// form: no copies), and owns what had to be decoded.
///
/// `Debug` redacts the session token and the signature (both let a holder replay or act).
#[derive(Clone)]
pub struct ParsedSignature<'a> {
    /// The access key id the client signed with.
    pub access_key_id: Cow<'a, str>,
    /// `yyyymmdd` from the credential scope.
    pub scope_date: Cow<'a, str>,
    /// The region from the credential scope.
    pub region: Cow<'a, str>,
    /// The service from the credential scope (`kms`, `sts`, `iam`, …): route on it.
    pub service: Cow<'a, str>,
    /// `X-Amz-Date` (header form) or the `X-Amz-Date` query parameter (presigned form),
    /// `yyyymmddThhmmssZ`.
    pub amz_date: Cow<'a, str>,
    /// The lower-cased `SignedHeaders` list, in the order the client gave it.
    pub signed_headers: Vec<Cow<'a, str>>,
    /// `X-Amz-Security-Token` from the header or else the query, signed or not. The server must
    /// check it against the temporary credential of `access_key_id`.
    pub security_token: Option<Cow<'a, str>>,
    /// The signature as sent (hex); compared in constant time by `verify`.
    pub(crate) signature: Cow<'a, str>,
    /// `amz_date` as Unix seconds (parsed once, here).
    pub(crate) signed_at: i64,
    /// `None` for the header form; the presigned form carries its `X-Amz-Expires` (if any).
    pub(crate) presigned: Option<Presigned>,
}

/// What only a presigned (query-string) signature has.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Presigned {
    /// `X-Amz-Expires` in seconds; without it the ordinary clock-skew window applies.
    pub expires: Option<u32>,
}

impl ParsedSignature<'_> {
    /// The same signature owning all its text (to keep it beyond the request).
    pub fn into_owned(self) -> ParsedSignature<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        ParsedSignature {
            access_key_id: own(self.access_key_id),
            scope_date: own(self.scope_date),
            region: own(self.region),
            service: own(self.service),
            amz_date: own(self.amz_date),
            signed_headers: self.signed_headers.into_iter().map(own).collect(),
            security_token: self.security_token.map(own),
            signature: own(self.signature),
            signed_at: self.signed_at,
            presigned: self.presigned,
        }
    }

    /// Whether the signature came from presigned query parameters rather than `Authorization`.
    pub fn is_presigned(&self) -> bool {
        self.presigned.is_some()
    }

    /// Checks the credential scope against what this server answers: `region` is the server's
    /// region and `service` the one the request was routed to. The service is checked first,
    /// as AWS does.
    pub fn check_scope(&self, region: &str, service: &str) -> Result<(), SigV4Error> {
        if self.service != service {
            return Err(SigV4Error::WrongService {
                expected: service.to_owned(),
            });
        }
        if self.region != region {
            return Err(SigV4Error::WrongRegion {
                region: self.region.clone().into_owned(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Debug for ParsedSignature<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedSignature")
            .field("access_key_id", &self.access_key_id)
            .field("scope_date", &self.scope_date)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("amz_date", &self.amz_date)
            .field("signed_headers", &self.signed_headers)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .field("signature", &"<redacted>")
            .field("presigned", &self.presigned)
            .finish()
    }
}

/// Finds and parses the request's signature: the `Authorization` header if there is one
/// (AWS gives it precedence), else presigned `X-Amz-*` query parameters, else
/// [`SigV4Error::MissingAuthentication`].
pub fn parse<'a>(req: &RequestParts<'a>) -> Result<ParsedSignature<'a>, SigV4Error> {
    if let Some(authorization) = req.headers.get(AUTHORIZATION) {
        return match std::str::from_utf8(authorization.as_bytes()) {
            Ok(text) => parse_header_form(req, text, Cow::Borrowed),
            // Not UTF-8: parsed from a lossy copy, whose parts are then copied out.
            Err(_) => {
                let lossy = String::from_utf8_lossy(authorization.as_bytes()).into_owned();
                parse_header_form(req, &lossy, |s: &str| Cow::Owned(s.to_owned()))
                    .map(ParsedSignature::into_owned)
            }
        };
    }
    let query = req.uri.query().unwrap_or_default();
    let pairs = query_pairs(query);
    let has = |name: &str| pairs.iter().any(|(k, _)| k.as_slice() == name.as_bytes());
    if has("X-Amz-Algorithm") || has("X-Amz-Credential") || has("X-Amz-Signature") {
        return parse_query_form(req, &pairs);
    }
    Err(SigV4Error::MissingAuthentication)
}

/// `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
fn parse_header_form<'a, 'h>(
    req: &RequestParts<'a>,
    header: &'h str,
    text: impl Fn(&'h str) -> Cow<'a, str>,
) -> Result<ParsedSignature<'a>, SigV4Error> {
    // AWS splits on commas and spaces alike; the first word is the algorithm.
    let mut words = header.split([',', ' ']).filter(|w| !w.is_empty());
    let algorithm = words.next().unwrap_or_default();
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(SigV4Error::MalformedAuthorizationPair {
                pair: word.to_owned(),
                authorization: header.to_owned(),
            });
        };
        // The first occurrence wins; unknown components are ignored, as AWS does.
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        slot.get_or_insert(value);
    }
    let amz_date = req
        .headers
        .get("x-amz-date")
        .map(|v| header_text(v.as_bytes()));

    let mut missing = Vec::new();
    let credential = credential.filter(|c| !c.is_empty());
    let signature = signature.filter(|s| !s.is_empty());
    if credential.is_none() {
        missing.push(AuthPart::Credential);
    }
    if signature.is_none() {
        missing.push(AuthPart::Signature);
    }
    if signed_headers.is_none() {
        missing.push(AuthPart::SignedHeaders);
    }
    if amz_date.is_none() {
        missing.push(AuthPart::Date);
    }
    let (Some(credential), Some(signature), Some(signed_headers), Some(amz_date)) =
        (credential, signature, signed_headers, amz_date)
    else {
        return Err(SigV4Error::IncompleteAuthorization {
            missing,
            authorization: header.to_owned(),
        });
    };

    let signed_at = check_date_format(&amz_date)?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm {
            algorithm: algorithm.to_owned(),
        });
    }
    let scope = parse_credential(credential)?;
    let security_token = token_from_header(req).or_else(|| {
        let query = req.uri.query().filter(|q| !q.is_empty())?;
        token_from_query(&query_pairs(query))
    });
    Ok(ParsedSignature {
        access_key_id: text(scope.access_key_id),
        scope_date: text(scope.scope_date),
        region: text(scope.region),
        service: text(scope.service),
        amz_date,
        signed_headers: parse_signed_headers(signed_headers)?
            .into_iter()
            .map(|name| match name {
                Cow::Borrowed(n) => text(n),
                Cow::Owned(n) => Cow::Owned(n),
            })
            .collect(),
        security_token,
        signature: text(signature),
        signed_at,
        presigned: None,
    })
}

/// `?X-Amz-Algorithm=…&X-Amz-Credential=…&X-Amz-Date=…&X-Amz-SignedHeaders=…&X-Amz-Signature=…`
/// (optionally `X-Amz-Expires`, `X-Amz-Security-Token`).
fn parse_query_form<'a>(
    req: &RequestParts<'a>,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> Result<ParsedSignature<'a>, SigV4Error> {
    // A repeated auth parameter would make "which one was signed" ambiguous: refuse it.
    let param = |name: &'static str| -> Result<Option<String>, SigV4Error> {
        let mut values = pairs
            .iter()
            .filter(|(k, _)| k.as_slice() == name.as_bytes());
        let first = values.next();
        if values.next().is_some() {
            return Err(SigV4Error::DuplicateQueryParameter { name });
        }
        Ok(first
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .filter(|v| !v.is_empty()))
    };
    let algorithm = param("X-Amz-Algorithm")?;
    let credential = param("X-Amz-Credential")?;
    let signature = param("X-Amz-Signature")?;
    let signed_headers = param("X-Amz-SignedHeaders")?;
    let amz_date = param("X-Amz-Date")?;
    let expires = param("X-Amz-Expires")?;

    let (Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(amz_date)) = (
        &algorithm,
        &credential,
        &signature,
        &signed_headers,
        &amz_date,
    ) else {
        let missing = [
            ("X-Amz-Algorithm", algorithm.is_none()),
            ("X-Amz-Credential", credential.is_none()),
            ("X-Amz-Signature", signature.is_none()),
            ("X-Amz-SignedHeaders", signed_headers.is_none()),
            ("X-Amz-Date", amz_date.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, is_missing)| is_missing.then_some(name))
        .collect();
        return Err(SigV4Error::IncompleteQuery { missing });
    };

    let signed_at = check_date_format(amz_date)?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm {
            algorithm: algorithm.clone(),
        });
    }
    let scope = parse_credential(credential)?;
    let expires = expires
        .map(|e| match e.parse::<u32>() {
            Ok(secs) if (1..=MAX_EXPIRES_SECS).contains(&secs) => Ok(secs),
            _ => Err(SigV4Error::InvalidExpires { expires: e }),
        })
        .transpose()?;
    let owned = |s: &str| Cow::Owned(s.to_owned());
    Ok(ParsedSignature {
        access_key_id: owned(scope.access_key_id),
        scope_date: owned(scope.scope_date),
        region: owned(scope.region),
        service: owned(scope.service),
        amz_date: owned(amz_date),
        signed_headers: parse_signed_headers(signed_headers)?
            .into_iter()
            .map(|n| Cow::Owned(n.into_owned()))
            .collect(),
        security_token: token_from_header(req).or_else(|| token_from_query(pairs)),
        signature: owned(signature),
        signed_at,
        presigned: Some(Presigned { expires }),
    })
}

/// The Unix time of a well-formed `X-Amz-Date`.
fn check_date_format(amz_date: &str) -> Result<i64, SigV4Error> {
    parse_amz_date(amz_date).ok_or_else(|| SigV4Error::MalformedDate {
        date: amz_date.to_owned(),
    })
}

struct Scope<'h> {
    access_key_id: &'h str,
    scope_date: &'h str,
    region: &'h str,
    service: &'h str,
}

/// `AKID/yyyymmdd/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<Scope<'_>, SigV4Error> {
    let malformed = || SigV4Error::MalformedCredential {
        credential: credential.to_owned(),
    };
    let mut parts = credential.split('/');
    let (Some(akid), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(malformed());
    };
    if terminator != "aws4_request" {
        return Err(SigV4Error::InvalidTerminator {
            terminator: terminator.to_owned(),
        });
    }
    Ok(Scope {
        access_key_id: akid,
        scope_date: date,
        region,
        service,
    })
}

/// `host;x-amz-date;…` lower-cased, order kept. An empty value is an empty list (rejected
/// later because `host` is not signed); an empty or invalid name is an error.
/// Lower-cased header names, borrowed when already lower case (as every SDK sends them).
fn parse_signed_headers(value: &str) -> Result<Vec<Cow<'_, str>>, SigV4Error> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(';')
        .map(|name| {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid {
                return Err(SigV4Error::InvalidSignedHeaders {
                    signed_headers: value.to_owned(),
                });
            }
            Ok(if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            })
        })
        .collect()
}

/// A header value as text: borrowed when it is UTF-8, else a lossy copy.
fn header_text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn token_from_header<'a>(req: &RequestParts<'a>) -> Option<Cow<'a, str>> {
    req.headers
        .get("x-amz-security-token")
        .map(|v| header_text(v.as_bytes()))
}

fn token_from_query(pairs: &[(Vec<u8>, Vec<u8>)]) -> Option<Cow<'static, str>> {
    pairs
        .iter()
        .find(|(k, _)| k.as_slice() == b"X-Amz-Security-Token")
        .map(|(_, v)| Cow::Owned(String::from_utf8_lossy(v).into_owned()))
}
