//! Why a request failed SigV4, and the AWS error code and message each failure maps to.
//!
//! The texts returned by [`SigV4Error::message`] copy what AWS's own front end (Coral) sends
//! wherever AWS has a fixed text, because SDKs and people compare them. Variants without an
//! AWS counterpart say so in their doc. No variant ever holds a secret: only values the client
//! itself sent (header text, dates, names) or the server clock.

use std::fmt::Write as _;

/// A required part of the `Authorization` header, listed in an incomplete-signature error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPart {
    /// `Credential=AKID/date/region/service/aws4_request`.
    Credential,
    /// `Signature=<64 hex digits>`.
    Signature,
    /// `SignedHeaders=host;x-amz-date;…`.
    SignedHeaders,
    /// The `X-Amz-Date` header (AWS would also take `Date`; this crate does not).
    Date,
}

/// A SigV4 verification failure. Map it to the wire with [`aws_code`](Self::aws_code) and
/// [`message`](Self::message); `Display` is a short lower-case form for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("request is not signed")]
    MissingAuthentication,

    /// The `Authorization` header lacks required parts (empty values count as missing).
    #[error("authorization header is missing {missing:?}")]
    IncompleteAuthorization {
        /// The missing parts, in AWS's order.
        missing: Vec<AuthPart>,
        /// The header as received, echoed by AWS at the end of its message.
        authorization: String,
    },

    /// A presigned URL lacks required `X-Amz-*` query parameters.
    #[error("presigned query is missing {missing:?}")]
    IncompleteQuery {
        /// The missing parameter names, in AWS's order.
        missing: Vec<&'static str>,
    },

    /// An `Authorization` component without `=`.
    #[error("authorization header component `{pair}` has no `=`")]
    MalformedAuthorizationPair {
        /// The offending component.
        pair: String,
        /// The header as received.
        authorization: String,
    },

    /// An algorithm other than `AWS4-HMAC-SHA256` (for example SigV4a).
    #[error("unsupported signing algorithm `{algorithm}`")]
    UnsupportedAlgorithm {
        /// The algorithm the client named.
        algorithm: String,
    },

    /// `Credential` is not five `/`-separated elements.
    #[error("credential `{credential}` is not five slash-delimited elements")]
    MalformedCredential {
        /// The credential as received.
        credential: String,
    },

    /// The credential scope does not end in `aws4_request`.
    #[error("credential scope terminator `{terminator}` is not `aws4_request`")]
    InvalidTerminator {
        /// The terminator as received.
        terminator: String,
    },

    /// `X-Amz-Date` is not `yyyymmddThhmmssZ` or not a real date and time.
    #[error("date `{date}` is not ISO-8601 basic format")]
    MalformedDate {
        /// The date as received.
        date: String,
    },

    /// `SignedHeaders` names something that is not an HTTP header name. No AWS counterpart.
    #[error("signed headers `{signed_headers}` contain an invalid header name")]
    InvalidSignedHeaders {
        /// The `SignedHeaders` value as received.
        signed_headers: String,
    },

    /// A presigned-URL auth parameter appears more than once. No AWS counterpart.
    #[error("query parameter `{name}` appears more than once")]
    DuplicateQueryParameter {
        /// The parameter name.
        name: &'static str,
    },

    /// `X-Amz-Expires` is not a whole number of seconds in 1..=604800.
    #[error("X-Amz-Expires `{expires}` is out of range")]
    InvalidExpires {
        /// The value as received.
        expires: String,
    },

    /// The credential's region is not one this server answers for (raised by
    /// [`ParsedSignature::check_scope`](crate::ParsedSignature::check_scope)).
    #[error("credential scoped to region `{region}`")]
    WrongRegion {
        /// The region the client signed for.
        region: String,
    },

    /// The credential's service is not the one the request was routed to (raised by
    /// [`ParsedSignature::check_scope`](crate::ParsedSignature::check_scope)).
    #[error("credential scoped to the wrong service, expected `{expected}`")]
    WrongService {
        /// The service the server expected.
        expected: String,
    },

    /// The credential scope date is not the day of `X-Amz-Date`.
    #[error("scope date `{scope_date}` is not the day of `{amz_date}`")]
    DateScopeMismatch {
        /// `yyyymmdd` from the credential.
        scope_date: String,
        /// `X-Amz-Date` as received.
        amz_date: String,
    },

    /// `X-Amz-Date` is more than five minutes before the server clock.
    #[error("signature expired: {amz_date} is earlier than {earliest}")]
    Expired {
        /// `X-Amz-Date` as received.
        amz_date: String,
        /// The earliest accepted time (now − 5 min).
        earliest: String,
        /// The server clock.
        now: String,
    },

    /// `X-Amz-Date` is more than five minutes after the server clock.
    #[error("signature not yet current: {amz_date} is later than {latest}")]
    NotYetCurrent {
        /// `X-Amz-Date` as received.
        amz_date: String,
        /// The latest accepted time (now + 5 min).
        latest: String,
        /// The server clock.
        now: String,
    },

    /// A presigned URL used after `X-Amz-Date + X-Amz-Expires`. AWS's text differs by service;
    /// this one follows the shape of the header-form message.
    #[error("presigned request expired at {expired_at}")]
    PresignedExpired {
        /// `X-Amz-Date` as received.
        amz_date: String,
        /// `X-Amz-Date + X-Amz-Expires`.
        expired_at: String,
        /// The server clock.
        now: String,
    },

    /// `host` is not in `SignedHeaders`, so the signature could be replayed to another host.
    #[error("host is not a signed header")]
    HostNotSigned,

    /// A header that selects or changes the operation (`content-type`, any `x-amz-*`) is in the
    /// request but not in `SignedHeaders`: the signature would not bind it, so it could be
    /// swapped on replay (a signed DescribeKey turned into ScheduleKeyDeletion).
    #[error("header `{name}` is not signed")]
    HeaderNotSigned {
        /// The lower-case header name.
        name: String,
    },

    /// A header named in `SignedHeaders` is absent from the request (for `host`: no `Host`
    /// header and no URI authority). AWS reports this as a plain signature mismatch; the name
    /// is given here because a proxy stripping a header is the usual cause.
    #[error("signed header `{name}` is missing from the request")]
    MissingSignedHeader {
        /// The lower-case header name.
        name: String,
    },

    /// `x-amz-content-sha256` was signed but is not the SHA-256 of the body.
    #[error("x-amz-content-sha256 does not match the body")]
    ContentSha256Mismatch,

    /// `x-amz-content-sha256` is `UNSIGNED-PAYLOAD` or `STREAMING-…` on a service other than
    /// S3 (or streaming on S3, which this crate does not verify). No AWS counterpart.
    #[error("payload hash `{value}` is not accepted")]
    UnsignedPayloadNotAllowed {
        /// The header value as received.
        value: String,
    },

    /// The signature does not match (wrong secret, or anything signed was altered).
    #[error("signature does not match")]
    SignatureMismatch,
}

impl SigV4Error {
    /// The AWS error code (`__type` for awsJson) the server sends for this failure.
    pub fn aws_code(&self) -> &'static str {
        match self {
            Self::MissingAuthentication => "MissingAuthenticationTokenException",
            Self::IncompleteAuthorization { .. }
            | Self::IncompleteQuery { .. }
            | Self::MalformedAuthorizationPair { .. }
            | Self::UnsupportedAlgorithm { .. }
            | Self::MalformedCredential { .. }
            | Self::MalformedDate { .. }
            | Self::InvalidSignedHeaders { .. }
            | Self::DuplicateQueryParameter { .. }
            | Self::InvalidExpires { .. } => "IncompleteSignatureException",
            // KMS reports an expired or not-yet-current signature as an invalid one.
            Self::InvalidTerminator { .. }
            | Self::WrongRegion { .. }
            | Self::WrongService { .. }
            | Self::DateScopeMismatch { .. }
            | Self::Expired { .. }
            | Self::NotYetCurrent { .. }
            | Self::PresignedExpired { .. }
            | Self::HostNotSigned
            | Self::HeaderNotSigned { .. }
            | Self::MissingSignedHeader { .. }
            | Self::ContentSha256Mismatch
            | Self::UnsignedPayloadNotAllowed { .. }
            | Self::SignatureMismatch => "InvalidSignatureException",
        }
    }

    /// The human-readable message the server sends with [`aws_code`](Self::aws_code).
    pub fn message(&self) -> String {
        match self {
            Self::MissingAuthentication => "Missing Authentication Token".to_owned(),
            Self::IncompleteAuthorization {
                missing,
                authorization,
            } => {
                let mut msg = String::new();
                for part in missing {
                    msg.push_str(match part {
                        AuthPart::Credential => "Authorization header requires 'Credential' parameter. ",
                        AuthPart::Signature => "Authorization header requires 'Signature' parameter. ",
                        AuthPart::SignedHeaders => {
                            "Authorization header requires 'SignedHeaders' parameter. "
                        }
                        AuthPart::Date => {
                            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                        }
                    });
                }
                msg.push_str("Authorization=");
                msg.push_str(authorization);
                msg
            }
            Self::IncompleteQuery { missing } => {
                let mut msg = String::new();
                for name in missing {
                    let _ = write!(msg, "AWS query-string parameters must include '{name}'. ");
                }
                msg.push_str("Re-examine the query-string parameters.");
                msg
            }
            Self::MalformedAuthorizationPair {
                pair,
                authorization,
            } => format!(
                "'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: '{authorization}'."
            ),
            Self::UnsupportedAlgorithm { algorithm } => format!(
                "Unsupported AWS 'algorithm': '{algorithm}' (only AWS4-HMAC-SHA256 for now)."
            ),
            Self::MalformedCredential { credential } => format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            ),
            Self::InvalidTerminator { terminator } => format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
            ),
            Self::MalformedDate { date } => format!(
                "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ),
            Self::InvalidSignedHeaders { signed_headers } => format!(
                "SignedHeaders must be a ';'-separated list of header names, got '{signed_headers}'."
            ),
            Self::DuplicateQueryParameter { name } => {
                format!("AWS query-string parameter '{name}' must appear only once.")
            }
            Self::InvalidExpires { expires } => format!(
                "X-Amz-Expires must be a number of seconds between 1 and 604800, got '{expires}'."
            ),
            Self::WrongRegion { region } => {
                format!("Credential should be scoped to a valid region, not '{region}'.")
            }
            Self::WrongService { expected } => {
                format!("Credential should be scoped to correct service: '{expected}'.")
            }
            Self::DateScopeMismatch {
                scope_date,
                amz_date,
            } => {
                let day = amz_date.get(..8).unwrap_or(amz_date);
                format!(
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{day}', from '{amz_date}'."
                )
            }
            Self::Expired {
                amz_date,
                earliest,
                now,
            } => format!(
                "Signature expired: {amz_date} is now earlier than {earliest} ({now} - 5 min.)"
            ),
            Self::NotYetCurrent {
                amz_date,
                latest,
                now,
            } => format!(
                "Signature not yet current: {amz_date} is still later than {latest} ({now} + 5 min.)"
            ),
            Self::PresignedExpired {
                amz_date,
                expired_at,
                now,
            } => format!(
                "Signature expired: {expired_at} is now earlier than {now} (X-Amz-Date {amz_date} + X-Amz-Expires)."
            ),
            Self::HostNotSigned => {
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
                    .to_owned()
            }
            Self::HeaderNotSigned { name } => {
                format!("'{name}' must be a 'SignedHeader' in the AWS Authorization.")
            }
            Self::MissingSignedHeader { name } => format!(
                "The request signature we calculated does not match the signature you provided. Signed header '{name}' is not present in the request."
            ),
            Self::ContentSha256Mismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_owned()
            }
            Self::UnsignedPayloadNotAllowed { value } => format!(
                "The 'x-amz-content-sha256' header must be the SHA-256 of the payload; '{value}' is not accepted by this service."
            ),
            Self::SignatureMismatch => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".to_owned(),
        }
    }
}
