//! Step 1: find the signature in a request and parse it, before any secret is known.
//!
//! Checks here are structural only (parts present, credential shape, date format). Whether the
//! request is genuine, current and addressed to this server is decided in
//! [`verify`](crate::verify) and by the server with [`ParsedSignature::check_scope`].

use http::header::AUTHORIZATION;

use crate::canonical::query_pairs;
use crate::error::{AuthPart, SigV4Error};
use crate::time::parse_amz_date;
use crate::{ALGORITHM, RequestParts};

/// The longest `X-Amz-Expires` AWS accepts: seven days.
const MAX_EXPIRES_SECS: u32 = 604_800;

/// The credential scope and signature metadata of one request.
///
/// `Debug` redacts the session token and the signature (both let a holder replay or act).
#[derive(Clone)]
pub struct ParsedSignature {
    /// The access key id the client signed with.
    pub access_key_id: String,
    /// `yyyymmdd` from the credential scope.
    pub scope_date: String,
    /// The region from the credential scope.
    pub region: String,
    /// The service from the credential scope (`kms`, `sts`, `iam`, …): route on it.
    pub service: String,
    /// `X-Amz-Date` (header form) or the `X-Amz-Date` query parameter (presigned form),
    /// `yyyymmddThhmmssZ`.
    pub amz_date: String,
    /// The lower-cased `SignedHeaders` list, in the order the client gave it.
    pub signed_headers: Vec<String>,
    /// `X-Amz-Security-Token` from the header or else the query, signed or not. The server must
    /// check it against the temporary credential of `access_key_id`.
    pub security_token: Option<String>,
    /// The signature as sent (hex); compared in constant time by `verify`.
    pub(crate) signature: String,
    /// `None` for the header form; the presigned form carries its `X-Amz-Expires` (if any).
    pub(crate) presigned: Option<Presigned>,
}

/// What only a presigned (query-string) signature has.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Presigned {
    /// `X-Amz-Expires` in seconds; without it the ordinary clock-skew window applies.
    pub expires: Option<u32>,
}

impl ParsedSignature {
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
                region: self.region.clone(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Debug for ParsedSignature {
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
pub fn parse(req: &RequestParts<'_>) -> Result<ParsedSignature, SigV4Error> {
    if let Some(authorization) = req.headers.get(AUTHORIZATION) {
        return parse_header_form(req, authorization.as_bytes());
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
fn parse_header_form(
    req: &RequestParts<'_>,
    authorization: &[u8],
) -> Result<ParsedSignature, SigV4Error> {
    let header = String::from_utf8_lossy(authorization).into_owned();
    // AWS splits on commas and spaces alike; the first word is the algorithm.
    let mut words = header.split([',', ' ']).filter(|w| !w.is_empty());
    let algorithm = words.next().unwrap_or_default();
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(SigV4Error::MalformedAuthorizationPair {
                pair: word.to_owned(),
                authorization: header.clone(),
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
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());

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
            authorization: header,
        });
    };

    check_date_format(&amz_date)?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm {
            algorithm: algorithm.to_owned(),
        });
    }
    let scope = parse_credential(credential)?;
    let security_token = token_from_header(req).or_else(|| {
        let query = req.uri.query().unwrap_or_default();
        token_from_query(&query_pairs(query))
    });
    Ok(ParsedSignature {
        access_key_id: scope.access_key_id,
        scope_date: scope.scope_date,
        region: scope.region,
        service: scope.service,
        amz_date,
        signed_headers: parse_signed_headers(signed_headers)?,
        security_token,
        signature: signature.to_owned(),
        presigned: None,
    })
}

/// `?X-Amz-Algorithm=…&X-Amz-Credential=…&X-Amz-Date=…&X-Amz-SignedHeaders=…&X-Amz-Signature=…`
/// (optionally `X-Amz-Expires`, `X-Amz-Security-Token`).
fn parse_query_form(
    req: &RequestParts<'_>,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> Result<ParsedSignature, SigV4Error> {
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

    check_date_format(amz_date)?;
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
    Ok(ParsedSignature {
        access_key_id: scope.access_key_id,
        scope_date: scope.scope_date,
        region: scope.region,
        service: scope.service,
        amz_date: amz_date.clone(),
        signed_headers: parse_signed_headers(signed_headers)?,
        security_token: token_from_header(req).or_else(|| token_from_query(pairs)),
        signature: signature.clone(),
        presigned: Some(Presigned { expires }),
    })
}

fn check_date_format(amz_date: &str) -> Result<(), SigV4Error> {
    match parse_amz_date(amz_date) {
        Some(_) => Ok(()),
        None => Err(SigV4Error::MalformedDate {
            date: amz_date.to_owned(),
        }),
    }
}

struct Scope {
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
}

/// `AKID/yyyymmdd/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<Scope, SigV4Error> {
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
        access_key_id: akid.to_owned(),
        scope_date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    })
}

/// `host;x-amz-date;…` lower-cased, order kept. An empty value is an empty list (rejected
/// later because `host` is not signed); an empty or invalid name is an error.
fn parse_signed_headers(value: &str) -> Result<Vec<String>, SigV4Error> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(';')
        .map(|name| {
            let name = name.to_ascii_lowercase();
            match http::HeaderName::from_bytes(name.as_bytes()) {
                Ok(_) => Ok(name),
                Err(_) => Err(SigV4Error::InvalidSignedHeaders {
                    signed_headers: value.to_owned(),
                }),
            }
        })
        .collect()
}

fn token_from_header(req: &RequestParts<'_>) -> Option<String> {
    req.headers
        .get("x-amz-security-token")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn token_from_query(pairs: &[(Vec<u8>, Vec<u8>)]) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k.as_slice() == b"X-Amz-Security-Token")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}
